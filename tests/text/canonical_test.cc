// Tests for the canonical form: printing is exact and deterministic, parsing accepts any
// token order and omitted defaults, and every error names its token.
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "convguard/text_forms.h"

namespace convguard {
namespace {

// Conv2d(c, k, 3, padding=1) on an hw x hw input with batch 1: the seed problems.
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

// c16 h64 k32 r3 with every default.
Problem Minimal() {
  Problem p;
  p.c = 16;
  p.h = p.w = 64;
  p.k = 32;
  p.r = p.s = 3;
  return p;
}

template <typename T>
std::string CaseName(const testing::TestParamInfo<T>& info) {
  return info.param.name;
}

// ---- printing -------------------------------------------------------------------------

struct PrintCase {
  std::string name;
  Problem problem;
  std::string text;
};

// gtest prints a failing case's parameter; its name is what a reader needs.
void PrintTo(const PrintCase& c, std::ostream* os) { *os << c.name; }

class CanonicalPrintTest : public testing::TestWithParam<PrintCase> {};

TEST_P(CanonicalPrintTest, PrintsExactly) {
  const PrintCase& c = GetParam();
  EXPECT_EQ(ToCanonical(c.problem), c.text);
  StatusOr<std::string> via_dispatch = PrintProblem(c.problem, TextForm::kCanonical);
  ASSERT_TRUE(via_dispatch.ok()) << via_dispatch.status().ToString();
  EXPECT_EQ(*via_dispatch, c.text);
}

TEST_P(CanonicalPrintTest, ParsesBack) {
  const PrintCase& c = GetParam();
  StatusOr<Problem> parsed = ParseProblem(c.text, TextForm::kCanonical);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, c.problem) << ToCanonical(*parsed);
}

INSTANTIATE_TEST_SUITE_P(
    Canonical, CanonicalPrintTest,
    testing::Values(PrintCase{"Seed16to32At32", Seed(16, 32, 32),
                              "n1_c16_h32_w32_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd"},
                    PrintCase{"Seed16to32At48", Seed(16, 32, 48),
                              "n1_c16_h48_w48_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd"},
                    PrintCase{"Seed16to32At64", Seed(16, 32, 64),
                              "n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd"},
                    PrintCase{"Seed3to16At64", Seed(3, 16, 64),
                              "n1_c3_h64_w64_k16_r3_s3_p1_u1_d1_g1_f32_nchw_fwd"},
                    PrintCase{"DefaultsArePrinted", Minimal(),
                              "n1_c16_h64_w64_k32_r3_s3_p0_u1_d1_g1_f32_nchw_fwd"},
                    PrintCase{"PadsPerDimension",
                              Make(Minimal(),
                                   [](Problem& p) {
                                     p.pad_top = p.pad_bottom = 1;
                                     p.pad_left = p.pad_right = 2;
                                   }),
                              "n1_c16_h64_w64_k32_r3_s3_p1x2_u1_d1_g1_f32_nchw_fwd"},
                    PrintCase{"PadsFourSides",
                              Make(Minimal(),
                                   [](Problem& p) {
                                     p.pad_top = 1;
                                     p.pad_left = 2;
                                     p.pad_bottom = 3;
                                     p.pad_right = 4;
                                   }),
                              "n1_c16_h64_w64_k32_r3_s3_p1x2x3x4_u1_d1_g1_f32_nchw_fwd"},
                    PrintCase{"PadsOnlyTopDiffers",
                              Make(Minimal(),
                                   [](Problem& p) { p.pad_left = p.pad_bottom = p.pad_right = 1; }),
                              "n1_c16_h64_w64_k32_r3_s3_p0x1x1x1_u1_d1_g1_f32_nchw_fwd"},
                    PrintCase{"StrideAndDilationPairs",
                              Make(Minimal(),
                                   [](Problem& p) {
                                     p.stride_h = 2;
                                     p.dilation_w = 3;
                                   }),
                              "n1_c16_h64_w64_k32_r3_s3_p0_u2x1_d1x3_g1_f32_nchw_fwd"},
                    PrintCase{"EqualPairsCompress",
                              Make(Minimal(),
                                   [](Problem& p) {
                                     p.stride_h = p.stride_w = 2;
                                     p.dilation_h = p.dilation_w = 2;
                                   }),
                              "n1_c16_h64_w64_k32_r3_s3_p0_u2_d2_g1_f32_nchw_fwd"},
                    PrintCase{"BiasBeforeDtype", Make(Minimal(), [](Problem& p) { p.bias = true; }),
                              "n1_c16_h64_w64_k32_r3_s3_p0_u1_d1_g1_bias_f32_nchw_fwd"},
                    PrintCase{"EveryNonDefault",
                              Make(Minimal(),
                                   [](Problem& p) {
                                     p.n = 2;
                                     p.c = 4;
                                     p.h = 8;
                                     p.w = 10;
                                     p.k = 6;
                                     p.s = 1;
                                     p.groups = 2;
                                     p.bias = true;
                                     p.dtype = DataType::kF16;
                                     p.layout = Layout::kNHWC;
                                     p.direction = Direction::kBackwardWeights;
                                   }),
                              "n2_c4_h8_w10_k6_r3_s1_p0_u1_d1_g2_bias_f16_nhwc_bwd-weights"},
                    PrintCase{"Bf16BackwardData",
                              Make(Minimal(),
                                   [](Problem& p) {
                                     p.dtype = DataType::kBF16;
                                     p.direction = Direction::kBackwardData;
                                   }),
                              "n1_c16_h64_w64_k32_r3_s3_p0_u1_d1_g1_bf16_nchw_bwd-data"}),
    CaseName<PrintCase>);

// ---- parsing non-canonical spellings --------------------------------------------------

struct ParseCase {
  std::string name;
  std::string text;
  Problem want;
};

// gtest prints a failing case's parameter; its name is what a reader needs.
void PrintTo(const ParseCase& c, std::ostream* os) { *os << c.name; }

class CanonicalParseTest : public testing::TestWithParam<ParseCase> {};

TEST_P(CanonicalParseTest, Parses) {
  const ParseCase& c = GetParam();
  StatusOr<Problem> got = ParseProblem(c.text, TextForm::kCanonical);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, c.want) << "got " << ToCanonical(*got) << ", want " << ToCanonical(c.want);
}

INSTANTIATE_TEST_SUITE_P(
    Canonical, CanonicalParseTest,
    testing::Values(ParseCase{"OnlyRequiredFields", "c16_h64_k32_r3", Minimal()},
                    ParseCase{"ShuffledOrder", "fwd_k32_p1_c16_r3_h64_n1", Seed(16, 32, 64)},
                    ParseCase{"KeywordsFirst", "nchw_f32_fwd_n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1",
                              Seed(16, 32, 64)},
                    ParseCase{"WidthDefaultsToHeight", "c3_h7_k5_r3",
                              Make(Minimal(),
                                   [](Problem& p) {
                                     p.c = 3;
                                     p.h = p.w = 7;
                                     p.k = 5;
                                   })},
                    ParseCase{"NonSquare", "c3_h7_w9_k5_r3_s2",
                              Make(Minimal(),
                                   [](Problem& p) {
                                     p.c = 3;
                                     p.h = 7;
                                     p.w = 9;
                                     p.k = 5;
                                     p.s = 2;
                                   })},
                    ParseCase{"PadsPerDimension", "c16_h64_k32_r3_p1x2",
                              Make(Minimal(),
                                   [](Problem& p) {
                                     p.pad_top = p.pad_bottom = 1;
                                     p.pad_left = p.pad_right = 2;
                                   })},
                    ParseCase{"PadsFourSides", "c16_h64_k32_r3_p1x2x3x4",
                              Make(Minimal(),
                                   [](Problem& p) {
                                     p.pad_top = 1;
                                     p.pad_left = 2;
                                     p.pad_bottom = 3;
                                     p.pad_right = 4;
                                   })},
                    ParseCase{"PadsSpelledOut", "n1_c16_h64_k32_r3_p1x1x1x1", Seed(16, 32, 64)},
                    ParseCase{"StridePair", "c16_h64_k32_r3_u2x1",
                              Make(Minimal(), [](Problem& p) { p.stride_h = 2; })},
                    ParseCase{"DilationOne", "c16_h64_k32_r3_d2",
                              Make(Minimal(), [](Problem& p) { p.dilation_h = p.dilation_w = 2; })},
                    ParseCase{"EveryKeyword", "n2_c16_h8_w10_k32_r3_s1_g4_bias_f16_nhwc_bwd-data",
                              Make(Minimal(),
                                   [](Problem& p) {
                                     p.n = 2;
                                     p.h = 8;
                                     p.w = 10;
                                     p.s = 1;
                                     p.groups = 4;
                                     p.bias = true;
                                     p.dtype = DataType::kF16;
                                     p.layout = Layout::kNHWC;
                                     p.direction = Direction::kBackwardData;
                                   })},
                    ParseCase{"Bf16BackwardWeights", "c4_h8_k4_r1_bf16_bwd-weights",
                              Make(Minimal(),
                                   [](Problem& p) {
                                     p.c = p.k = 4;
                                     p.h = p.w = 8;
                                     p.r = p.s = 1;
                                     p.dtype = DataType::kBF16;
                                     p.direction = Direction::kBackwardWeights;
                                   })},
                    ParseCase{"SurroundingWhitespace", "  c16_h64_k32_r3\n", Minimal()}),
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

class CanonicalErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(CanonicalErrorTest, Rejects) {
  const ErrorCase& c = GetParam();
  StatusOr<Problem> got = ParseProblem(c.text, TextForm::kCanonical);
  ASSERT_FALSE(got.ok()) << "parsed as " << ToCanonical(*got);
  EXPECT_EQ(got.status().code(), c.code) << got.status().ToString();
  EXPECT_NE(got.status().message().find(c.message_part), std::string::npos)
      << "message: " << got.status().message() << "\nwanted part: " << c.message_part;
  EXPECT_EQ(got.status().message().rfind("canonical: ", 0), 0u) << got.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Canonical, CanonicalErrorTest,
    testing::Values(
        ErrorCase{"UnknownField", "c16_h64_k32_r3_x3", StatusCode::kInvalidArgument,
                  "token 'x3' has unknown field 'x'"},
        ErrorCase{"UpperCaseField", "C16_h64_k32_r3", StatusCode::kInvalidArgument,
                  "token 'C16' has unknown field 'C'"},
        ErrorCase{"UnknownKeyword", "c16_h64_k32_r3_f64", StatusCode::kInvalidArgument,
                  "token 'f64' has unknown field 'f' (allowed fields: n c h w k r s p u d g; "
                  "keywords: f32 f16 bf16"},
        ErrorCase{"DuplicateField", "c16_h64_k32_r3_c8", StatusCode::kInvalidArgument,
                  "token 'c8' repeats field 'c' (already 'c16'"},
        ErrorCase{"DuplicateDtype", "c16_h64_k32_r3_f32_f16", StatusCode::kInvalidArgument,
                  "token 'f16' repeats the data type (already 'f32'"},
        ErrorCase{"DuplicateLayout", "c16_h64_k32_r3_nhwc_nchw", StatusCode::kInvalidArgument,
                  "token 'nchw' repeats the layout"},
        ErrorCase{"DuplicateDirection", "c16_h64_k32_r3_fwd_fwd", StatusCode::kInvalidArgument,
                  "token 'fwd' repeats the direction"},
        ErrorCase{"DuplicateBias", "c16_h64_k32_r3_bias_bias", StatusCode::kInvalidArgument,
                  "token 'bias' repeats the bias flag"},
        ErrorCase{"NegativeNumber", "c-16_h64_k32_r3", StatusCode::kInvalidArgument,
                  "token 'c-16': negative number '-16' is not allowed"},
        ErrorCase{"TrailingGarbage", "c16a_h64_k32_r3", StatusCode::kInvalidArgument,
                  "token 'c16a': '16a' is not a decimal number"},
        ErrorCase{"OverflowsInt64", "c99999999999999999999_h64_k32_r3", StatusCode::kOutOfRange,
                  "token 'c99999999999999999999': '99999999999999999999' is too large"},
        ErrorCase{"AboveFieldCeiling", "n3000000000_c16_h64_k32_r3", StatusCode::kOutOfRange,
                  "token 'n3000000000': '3000000000' is too large (at most 2147483648)"},
        ErrorCase{"EmptyToken", "c16__h64_k32_r3", StatusCode::kInvalidArgument, "empty token"},
        ErrorCase{"TrailingSeparator", "c16_h64_k32_r3_", StatusCode::kInvalidArgument,
                  "empty token"},
        ErrorCase{"MissingKernel", "c16_h64_k32", StatusCode::kInvalidArgument,
                  "missing required field 'r' (kernel height)"},
        ErrorCase{"MissingChannels", "h64_k32_r3", StatusCode::kInvalidArgument,
                  "missing required field 'c' (input channels)"},
        ErrorCase{"FieldWithoutValue", "c16_h64_k32_r3_n", StatusCode::kInvalidArgument,
                  "token 'n' has no value"},
        ErrorCase{"ThreePads", "c16_h64_k32_r3_p1x2x3", StatusCode::kInvalidArgument,
                  "token 'p1x2x3': '1x2x3' has 3 'x'-separated values; padding takes 1"},
        ErrorCase{"ThreeStrides", "c16_h64_k32_r3_u1x2x3", StatusCode::kInvalidArgument,
                  "token 'u1x2x3': '1x2x3' has 3 'x'-separated values; stride takes 1 value or 2"},
        ErrorCase{"DanglingX", "c16_h64_k32_r3_p1x", StatusCode::kInvalidArgument,
                  "token 'p1x' has no number"},
        ErrorCase{"PairForScalarField", "c16_h64x2_k32_r3", StatusCode::kInvalidArgument,
                  "token 'h64x2': '64x2' is not a decimal number"},
        ErrorCase{"GroupsDoNotDivide", "c16_h64_k30_r3_g4", StatusCode::kInvalidArgument,
                  "canonical: k = 30 must be divisible by groups = 4"},
        ErrorCase{"ZeroStride", "c16_h64_k32_r3_u0", StatusCode::kInvalidArgument,
                  "stride h = 0 is out of range"},
        ErrorCase{"ZeroChannels", "c0_h64_k32_r3", StatusCode::kInvalidArgument,
                  "c (input channels) = 0 is out of range"},
        ErrorCase{"KernelLargerThanInput", "c1_h2_k1_r5", StatusCode::kInvalidArgument,
                  "dilated kernel height"},
        ErrorCase{"EmptyText", "   ", StatusCode::kInvalidArgument, "empty text"}),
    CaseName<ErrorCase>);

}  // namespace
}  // namespace convguard
