// Tests for MIOpen's problem key. The expected strings follow MIOpen's own
// ProblemDescription::Serialize: for B and W keys the output side (K, Ho, Wo) comes first,
// and an NHWC key lists the input, weights and output layouts.
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "convguard/text_forms.h"

namespace convguard {
namespace {

Problem Seed(int64_t c, int64_t k, int64_t hw) {
  Problem p;
  p.n = 1;
  p.c = c;
  p.k = k;
  p.h = p.w = hw;
  p.r = p.s = 3;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
  return p;
}

template <typename Fn>
Problem Make(Problem p, Fn edit) {
  edit(p);
  return p;
}

template <typename T>
std::string CaseName(const testing::TestParamInfo<T>& info) {
  return info.param.name;
}

// c16 -> k32, 3x3, pad 1, stride 2 on 64x64: the output is 32x32.
Problem Strided(Direction d) {
  return Make(Seed(16, 32, 64), [d](Problem& p) {
    p.stride_h = p.stride_w = 2;
    p.direction = d;
  });
}

// n2 c16 8x10, kernel 3x1, pad 1x0, groups 4, bias, fp16, NHWC: output 8x10.
Problem Nhwc() {
  Problem p;
  p.n = 2;
  p.c = 16;
  p.h = 8;
  p.w = 10;
  p.k = 32;
  p.r = 3;
  p.s = 1;
  p.pad_top = p.pad_bottom = 1;
  p.groups = 4;
  p.bias = true;
  p.dtype = DataType::kF16;
  p.layout = Layout::kNHWC;
  return p;
}

// c8 -> k8, 3x3 dilated 2 (5x5 footprint), pad 2, bf16 on 32x32: output 32x32.
Problem Dilated() {
  Problem p;
  p.c = p.k = 8;
  p.h = p.w = 32;
  p.r = p.s = 3;
  p.dilation_h = p.dilation_w = 2;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 2;
  p.dtype = DataType::kBF16;
  return p;
}

// ---- printing (and reading back what is printed) ---------------------------------------

struct PrintCase {
  std::string name;
  Problem problem;
  std::string text;
};

// gtest prints a failing case's parameter; its name is what a reader needs.
void PrintTo(const PrintCase& c, std::ostream* os) { *os << c.name; }

class MiopenKeyPrintTest : public testing::TestWithParam<PrintCase> {};

TEST_P(MiopenKeyPrintTest, PrintsExactly) {
  const PrintCase& c = GetParam();
  StatusOr<std::string> got = ToMiopenKey(c.problem);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, c.text);
  StatusOr<std::string> via_dispatch = PrintProblem(c.problem, TextForm::kMiopenKey);
  ASSERT_TRUE(via_dispatch.ok()) << via_dispatch.status().ToString();
  EXPECT_EQ(*via_dispatch, c.text);
}

TEST_P(MiopenKeyPrintTest, ParsesBack) {
  const PrintCase& c = GetParam();
  StatusOr<Problem> got = ParseProblem(c.text, TextForm::kMiopenKey);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, c.problem) << ToCanonical(*got);
}

INSTANTIATE_TEST_SUITE_P(
    MiopenKey, MiopenKeyPrintTest,
    testing::Values(PrintCase{"Seed16to32At32", Seed(16, 32, 32),
                              "16-32-32-3x3-32-32-32-1-1x1-1x1-1x1-0-NCHW-FP32-F"},
                    PrintCase{"Seed16to32At48", Seed(16, 32, 48),
                              "16-48-48-3x3-32-48-48-1-1x1-1x1-1x1-0-NCHW-FP32-F"},
                    PrintCase{"Seed16to32At64", Seed(16, 32, 64),
                              "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F"},
                    PrintCase{"Seed3to16At64", Seed(3, 16, 64),
                              "3-64-64-3x3-16-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F"},
                    PrintCase{"BackwardDataListsOutputFirst",
                              Make(Seed(16, 32, 64),
                                   [](Problem& p) { p.direction = Direction::kBackwardData; }),
                              "32-64-64-3x3-16-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-B"},
                    PrintCase{"ForwardStrided", Strided(Direction::kForward),
                              "16-64-64-3x3-32-32-32-1-1x1-2x2-1x1-0-NCHW-FP32-F"},
                    PrintCase{"BackwardDataStrided", Strided(Direction::kBackwardData),
                              "32-32-32-3x3-16-64-64-1-1x1-2x2-1x1-0-NCHW-FP32-B"},
                    PrintCase{"BackwardWeightsStrided", Strided(Direction::kBackwardWeights),
                              "32-32-32-3x3-16-64-64-1-1x1-2x2-1x1-0-NCHW-FP32-W"},
                    PrintCase{"NhwcFp16BiasGroups", Nhwc(),
                              "16-8-10-3x1-32-8-10-2-1x0-1x1-1x1-1-NHWC-NHWC-NHWC-FP16-F_g4"},
                    PrintCase{"Bf16Dilated", Dilated(),
                              "8-32-32-3x3-8-32-32-1-2x2-1x1-2x2-0-NCHW-BF16-F"},
                    PrintCase{"NonSquareStride",
                              Make(Seed(16, 32, 64),
                                   [](Problem& p) {
                                     p.w = 31;
                                     p.stride_w = 3;
                                     p.pad_left = p.pad_right = 0;
                                   }),
                              "16-64-31-3x3-32-64-10-1-1x0-1x3-1x1-0-NCHW-FP32-F"}),
    CaseName<PrintCase>);

// ---- other accepted spellings ----------------------------------------------------------

struct ParseCase {
  std::string name;
  std::string text;
  Problem want;
};

// gtest prints a failing case's parameter; its name is what a reader needs.
void PrintTo(const ParseCase& c, std::ostream* os) { *os << c.name; }

class MiopenKeyParseTest : public testing::TestWithParam<ParseCase> {};

TEST_P(MiopenKeyParseTest, Parses) {
  const ParseCase& c = GetParam();
  StatusOr<Problem> got = ParseProblem(c.text, TextForm::kMiopenKey);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, c.want) << "got " << ToCanonical(*got) << ", want " << ToCanonical(c.want);
}

INSTANTIATE_TEST_SUITE_P(
    MiopenKey, MiopenKeyParseTest,
    testing::Values(
        ParseCase{"SingleNhwcLayoutOfOlderMiopen",
                  "16-8-10-3x1-32-8-10-2-1x0-1x1-1x1-1-NHWC-FP16-F_g4", Nhwc()},
        ParseCase{"ThreeNchwLayouts", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-NCHW-NCHW-FP32-F",
                  Seed(16, 32, 64)},
        ParseCase{"GroupOneSuffix", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F_g1",
                  Seed(16, 32, 64)},
        ParseCase{"SurroundingWhitespace", " 16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F\n",
                  Seed(16, 32, 64)},
        ParseCase{"BiasOne", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-1-NCHW-FP32-F",
                  Make(Seed(16, 32, 64), [](Problem& p) { p.bias = true; })}),
    CaseName<ParseCase>);

// ---- errors ---------------------------------------------------------------------------

struct ErrorCase {
  std::string name;
  std::string text;
  StatusCode code;
  std::string message_part;
};

// gtest prints a failing case's parameter; its name is what a reader needs.
void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class MiopenKeyErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(MiopenKeyErrorTest, Rejects) {
  const ErrorCase& c = GetParam();
  StatusOr<Problem> got = ParseProblem(c.text, TextForm::kMiopenKey);
  ASSERT_FALSE(got.ok()) << "parsed as " << ToCanonical(*got);
  EXPECT_EQ(got.status().code(), c.code) << got.status().ToString();
  EXPECT_NE(got.status().message().find(c.message_part), std::string::npos)
      << "message: " << got.status().message() << "\nwanted part: " << c.message_part;
  EXPECT_EQ(got.status().message().rfind("miopen-key: ", 0), 0u) << got.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    MiopenKey, MiopenKeyErrorTest,
    testing::Values(
        ErrorCase{"OutputHeightMismatch", "16-64-64-3x3-32-63-64-1-1x1-1x1-1x1-0-NCHW-FP32-F",
                  StatusCode::kInvalidArgument,
                  "field Ho = 63 does not match the output height 64"},
        ErrorCase{"OutputWidthMismatch", "16-64-64-3x3-32-64-65-1-1x1-1x1-1x1-0-NCHW-FP32-F",
                  StatusCode::kInvalidArgument, "field Wo = 65 does not match the output width 64"},
        // In a B key the first group is the output: 63 there is the wrong output height.
        ErrorCase{"BackwardOutputFirstMismatch",
                  "32-63-64-3x3-16-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-B", StatusCode::kInvalidArgument,
                  "field Hi = 63 does not match the output height 64"},
        // A forward key read with the sides swapped would make K=16 the input channels.
        ErrorCase{"BackwardKeyWithForwardSides",
                  "16-64-64-3x3-32-32-32-1-1x1-2x2-1x1-0-NCHW-FP32-B", StatusCode::kInvalidArgument,
                  "field Hi = 64 does not match the output height 16"},
        ErrorCase{"TooFewFields", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-FP32-F",
                  StatusCode::kInvalidArgument, "expected 15 '-'-separated fields"},
        ErrorCase{"EmptyField", "16--64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F",
                  StatusCode::kInvalidArgument, "field 2 of"},
        ErrorCase{"NotANumber", "16-6a-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F",
                  StatusCode::kInvalidArgument, "field Hi: '6a' is not a decimal number"},
        ErrorCase{"Overflow", "99999999999-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F",
                  StatusCode::kOutOfRange, "field C: '99999999999' is too large"},
        ErrorCase{"KernelNotAPair", "16-64-64-3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F",
                  StatusCode::kInvalidArgument, "field YxX: '3' has 1 'x'-separated values"},
        ErrorCase{"ThreeDimensionalKey",
                  "16-8-64-64-3x3x3-32-8-64-64-1-1x1x1-1x1x1-1x1x1-0-NCDHW-FP32-F",
                  StatusCode::kUnsupported, "3-D problem key"},
        ErrorCase{"Int8Precision", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-INT8-F",
                  StatusCode::kUnsupported, "precision 'INT8'"},
        ErrorCase{"MixedPrecision", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP16FP16FP32-F",
                  StatusCode::kUnsupported, "precision 'FP16FP16FP32'"},
        ErrorCase{"UnknownPrecision", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-fp32-F",
                  StatusCode::kInvalidArgument,
                  "unknown precision 'fp32' (allowed: FP32 FP16 BF16)"},
        ErrorCase{"UnknownLayout", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCWH-FP32-F",
                  StatusCode::kInvalidArgument, "unknown layout 'NCWH' (allowed: NCHW NHWC)"},
        ErrorCase{"MixedLayouts", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NHWC-NCHW-NCHW-FP32-F",
                  StatusCode::kUnsupported, "mixed layouts 'NHWC', 'NCHW', 'NCHW'"},
        ErrorCase{"ChwnLayout", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-CHWN-FP32-F",
                  StatusCode::kUnsupported, "layout 'CHWN'"},
        ErrorCase{"BiasTwo", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-2-NCHW-FP32-F",
                  StatusCode::kInvalidArgument, "field Bias is '2' (allowed: 0 or 1)"},
        ErrorCase{"UnknownDirection", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-X",
                  StatusCode::kInvalidArgument, "unknown direction 'X'"},
        ErrorCase{"CastSuffix", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F_ciFP16",
                  StatusCode::kUnsupported, "cast-type suffix '_ciFP16'"},
        ErrorCase{"UnknownSuffix", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F_z1",
                  StatusCode::kInvalidArgument, "unknown suffix '_z1'"},
        ErrorCase{"RepeatedGroups", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F_g2_g2",
                  StatusCode::kInvalidArgument, "suffix '_g2' repeats the group count"},
        ErrorCase{"GroupsDoNotDivide", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F_g3",
                  StatusCode::kInvalidArgument, "c = 16 must be divisible by groups = 3"},
        ErrorCase{"ZeroStride", "16-64-64-3x3-32-64-64-1-1x1-0x1-1x1-0-NCHW-FP32-F",
                  StatusCode::kInvalidArgument, "stride h = 0 is out of range"},
        ErrorCase{"EmptyText", "", StatusCode::kInvalidArgument, "empty text"}),
    CaseName<ErrorCase>);

// ---- problems MIOpen keys cannot express -----------------------------------------------

TEST(MiopenKeyPrint, AsymmetricPadsAreUnsupported) {
  Problem p = Seed(16, 32, 64);
  p.pad_bottom = 2;
  StatusOr<std::string> got = ToMiopenKey(p);
  ASSERT_FALSE(got.ok()) << *got;
  EXPECT_EQ(got.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(got.status().message().find("pads top/left/bottom/right = 1/1/2/1 are asymmetric"),
            std::string::npos)
      << got.status().message();
}

TEST(MiopenKeyPrint, InvalidProblemIsRejectedNotPrinted) {
  Problem p = Seed(16, 32, 64);
  p.stride_h = 0;  // out_h() would divide by zero
  StatusOr<std::string> got = ToMiopenKey(p);
  ASSERT_FALSE(got.ok()) << *got;
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find("miopen-key: stride h = 0"), std::string::npos)
      << got.status().message();
}

}  // namespace
}  // namespace convguard
