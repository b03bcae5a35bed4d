// The describe command end to end: the real binary, its stdout, stderr and exit status.
#include <gtest/gtest.h>

#include "support/cli_runner.h"

namespace convguard {
namespace {

using testing_support::RunConvguard;

TEST(DescribeCli, SeedProblemInEveryForm) {
  const char* forms[] = {
      "n1_c16_h64_w64_k32_r3_s3_p1",
      "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F",
      "conv -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -g 1 -F 1",
      "--dir=FWD_D mb1ic16ih64oc32oh64kh3ph1",
  };
  for (const char* form : forms) {
    auto r = RunConvguard({"describe", form});
    ASSERT_TRUE(r.exited) << form;
    EXPECT_EQ(r.exit_code, 0) << form << "\n" << r.err;
    EXPECT_NE(r.out.find("problem      n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd"),
              std::string::npos)
        << form << "\n"
        << r.out;
    EXPECT_NE(r.out.find("miopen key   16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("output       1 x 32 x 64 x 64"), std::string::npos) << r.out;
    // 2 * 64*64 outputs * 32 * 16*3*3 = 37,748,736
    EXPECT_NE(r.out.find("flops        37748736"), std::string::npos) << r.out;
    EXPECT_TRUE(r.err.empty()) << r.err;
  }
}

TEST(DescribeCli, SeveralProblemsAreSeparatedByBlankLines) {
  auto r = RunConvguard({"describe", "c16_h32_k32_r3_p1", "c3_h64_k16_r3_p1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("n1_c16_h32_w32_k32"), std::string::npos);
  EXPECT_NE(r.out.find("n1_c3_h64_w64_k16"), std::string::npos);
  EXPECT_NE(r.out.find("\n\nproblem"), std::string::npos);
}

struct BadInput {
  std::string name;
  std::vector<std::string> args;
  std::string message_part;
};

class DescribeBadInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(DescribeBadInput, ExitsTwoWithOneClearLineAndNoOutput) {
  auto r = RunConvguard(GetParam().args);
  ASSERT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find(GetParam().message_part), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    Table, DescribeBadInput,
    ::testing::Values(
        BadInput{"NoProblem", {"describe"}, "no PROBLEM given"},
        BadInput{"UnknownCommand", {"frobnicate"}, "unknown command 'frobnicate'"},
        BadInput{
            "UnknownOption", {"describe", "--bogus", "c16_h32_k32_r3"}, "unknown option '--bogus'"},
        BadInput{"BadForm",
                 {"describe", "--form", "onnx", "c16_h32_k32_r3"},
                 "--form 'onnx' is not a form"},
        BadInput{"GroupsDoNotDivide", {"describe", "c16_h32_k30_r3_g4"}, "divisible by groups"},
        // One bad problem among good ones: nothing is printed for any of them.
        BadInput{
            "OneBadAmongGood", {"describe", "c16_h32_k32_r3", "c0_h32_k32_r3"}, "c0_h32_k32_r3"}),
    [](const ::testing::TestParamInfo<BadInput>& info) { return info.param.name; });

TEST(DescribeCli, HelpTellsTheFormsAndExitsZero) {
  auto r = RunConvguard({"describe", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* word : {"canonical", "miopen-key", "miopen-driver", "benchdnn", "exit status"}) {
    EXPECT_NE(r.out.find(word), std::string::npos) << word;
  }
  auto top = RunConvguard({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("describe"), std::string::npos);
  EXPECT_NE(top.out.find("sweep"), std::string::npos);
}

}  // namespace
}  // namespace convguard
