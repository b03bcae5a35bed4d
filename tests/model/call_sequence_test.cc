// Reading what an application ran as a sequence (convguard/sequence.h): MIOpen logs with
// their Finds, problem lists with repeats and algo=, and the bad inputs.
#include <gtest/gtest.h>

#include <string>

#include "convguard/sequence.h"
#include "convguard/text_forms.h"
#include "support/cli_runner.h"

namespace convguard {
namespace {

using testing_support::MakeTempDir;
using testing_support::WriteFile;

constexpr const char* kC3 = "n1_c3_h8_w8_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";
constexpr const char* kC16 = "n1_c16_h8_w8_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";

TEST(CallSequence, AListKeepsOrderRepeatsAndNamedAlgorithms) {
  const std::string dir = MakeTempDir("seq-list");
  WriteFile(dir + "/inner.list", std::string(kC16) + "\n");
  const std::string path = WriteFile(dir + "/a.list", std::string("# comment\n") + kC3 + "\n" +
                                                          kC3 + " algo=direct  # again\n" +
                                                          "include inner.list\n" + kC3 + "\n");
  StatusOr<CallSequence> seq = ReadCallSequence(path);
  ASSERT_TRUE(seq.ok()) << seq.status().ToString();
  EXPECT_EQ(seq->format, "list");
  ASSERT_EQ(seq->calls.size(), 4u);
  EXPECT_EQ(ToCanonical(seq->calls[0].problem), kC3);
  EXPECT_EQ(seq->calls[0].algorithm, "");
  EXPECT_EQ(seq->calls[1].algorithm, "direct");
  EXPECT_EQ(ToCanonical(seq->calls[2].problem), kC16);
  EXPECT_EQ(seq->calls[3].origin, path + ":5");
  EXPECT_FALSE(seq->calls[0].find);
}

TEST(CallSequence, ALogKeepsItsCommandsInOrderAndMarksFinds) {
  const std::string dir = MakeTempDir("seq-log");
  const std::string path = WriteFile(
      dir + "/app.log",
      "epoch 1\n"
      "MIOpen(HIP): Command [LogCmdFindConvolution] ./bin/MIOpenDriver conv -n 1 -c 16 -H 8 -W "
      "8 -k 4 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -m conv -g 1 -F 1 -t 1\n"
      "some print\n"
      "MIOpen(HIP): Command [LogCmdConvolution] ./bin/MIOpenDriver conv -n 1 -c 16 -H 8 -W 8 "
      "-k 4 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -m conv -g 1 -F 1 -t 1\n"
      "MIOpen(HIP): Command [LogCmdConvolution] ./bin/MIOpenDriver conv -n 1 -c 16 -H 8 -W 8 "
      "-k 4 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -m conv -g 1 -F 1 -t 1\n");
  StatusOr<CallSequence> seq = ReadCallSequence(path);
  ASSERT_TRUE(seq.ok()) << seq.status().ToString();
  EXPECT_EQ(seq->format, "miopen-log");
  ASSERT_EQ(seq->calls.size(), 3u);
  EXPECT_TRUE(seq->calls[0].find);
  EXPECT_FALSE(seq->calls[1].find);
  EXPECT_EQ(ToCanonical(seq->calls[2].problem), kC16);
  EXPECT_EQ(seq->calls[1].origin, path + ":4");
  EXPECT_EQ(SequenceCallKey(seq->calls[0]), std::string(kC16) + " find");
  EXPECT_EQ(SequenceCallKey(seq->calls[1]), std::string(kC16) + " default");
}

TEST(CallSequence, BadInputIsOneClearMessage) {
  const std::string dir = MakeTempDir("seq-bad");
  StatusOr<CallSequence> missing = ReadCallSequence(dir + "/nope.list");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);

  StatusOr<CallSequence> empty = ReadCallSequence(WriteFile(dir + "/empty.list", "# nothing\n\n"));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("holds no convolution call"), std::string::npos)
      << empty.status().message();

  StatusOr<CallSequence> chatter =
      ReadCallSequence(WriteFile(dir + "/chatter.log", "epoch 1\nloss 0.5\n"));
  ASSERT_FALSE(chatter.ok());
  EXPECT_NE(chatter.status().message().find("MIOpenDriver"), std::string::npos)
      << chatter.status().message();

  StatusOr<CallSequence> algo =
      ReadCallSequence(WriteFile(dir + "/algo.list", std::string(kC3) + " algo=\n"));
  ASSERT_FALSE(algo.ok());
  EXPECT_NE(algo.status().message().find("algo= needs an algorithm name"), std::string::npos)
      << algo.status().message();

  // A 3-D command: refused unless asked to skip, then counted.
  const std::string log3d = WriteFile(
      dir + "/3d.log",
      "MIOpen(HIP): Command [LogCmdConvolution] ./bin/MIOpenDriver conv -n 1 -c 4 --in_d 8 -H "
      "16 -W 16 -k 8 --fil_d 3 -y 3 -x 3 --pad_d 1 -p 1 -q 1 --conv_stride_d 1 -u 1 -v 1 "
      "--dilation_d 1 -l 1 -j 1 --spatial_dim 3 -m conv -g 1 -F 1 -t 1\n"
      "MIOpen(HIP): Command [LogCmdConvolution] ./bin/MIOpenDriver conv -n 1 -c 16 -H 8 -W 8 "
      "-k 4 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -m conv -g 1 -F 1 -t 1\n");
  StatusOr<CallSequence> refused = ReadCallSequence(log3d);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find(":1: cannot replay"), std::string::npos)
      << refused.status().message();
  StatusOr<CallSequence> skipped = ReadCallSequence(log3d, /*skip_unreadable=*/true);
  ASSERT_TRUE(skipped.ok()) << skipped.status().ToString();
  EXPECT_EQ(skipped->calls.size(), 1u);
  EXPECT_EQ(skipped->skipped, 1);

  StatusOr<CallSequence> too_many = ReadCallSequence(
      WriteFile(dir + "/three.list", std::string(kC3) + "\n" + kC3 + "\n" + kC3 + "\n"), false, 2);
  EXPECT_EQ(too_many.status().code(), StatusCode::kOutOfRange);
}

TEST(CallSequence, TheDigestNamesTheCallsInOrderAndAWrittenListReadsBack) {
  const std::string dir = MakeTempDir("seq-digest");
  const std::string a = WriteFile(dir + "/a.list", std::string(kC3) + "\n" + kC16 + "\n");
  const std::string b = WriteFile(dir + "/b.list", std::string(kC16) + "\n" + kC3 + "\n");
  const std::string a2 =
      WriteFile(dir + "/a2.list", std::string("# same calls, other text\n") +
                                      "conv -n 1 -c 3 -H 8 -W 8 -k 4 -y 3 -x 3 -p 1 -q 1 -F 1\n" +
                                      kC16 + "\n");
  StatusOr<CallSequence> sa = ReadCallSequence(a), sb = ReadCallSequence(b),
                         sa2 = ReadCallSequence(a2);
  ASSERT_TRUE(sa.ok() && sb.ok() && sa2.ok()) << sa2.status().ToString();
  EXPECT_EQ(SequenceDigest(sa->calls), SequenceDigest(sa2->calls));
  EXPECT_NE(SequenceDigest(sa->calls), SequenceDigest(sb->calls));
  EXPECT_EQ(SequenceDigest(sa->calls).size(), 16u);

  std::vector<SequenceCall> calls = sa->calls;
  calls[1].algorithm = "direct";
  const std::string written =
      WriteFile(dir + "/written.list", FormatSequenceList(calls, {"a header", "repro: x"}));
  StatusOr<CallSequence> back = ReadCallSequence(written);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->calls.size(), 2u);
  EXPECT_EQ(SequenceCallKey(back->calls[0]), SequenceCallKey(calls[0]));
  EXPECT_EQ(SequenceCallKey(back->calls[1]), SequenceCallKey(calls[1]));

  const std::string driver = FormatSequenceDriverCommands(calls, {"h"});
  EXPECT_NE(driver.find("MIOpenDriver conv -n 1 -c 3 -H 8 -W 8 -k 4"), std::string::npos) << driver;
  EXPECT_NE(driver.find("# convguard algorithm: direct"), std::string::npos) << driver;
  EXPECT_EQ(driver.rfind("# h\n", 0), 0u) << driver;
}

}  // namespace
}  // namespace convguard
