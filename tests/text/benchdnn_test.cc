// Tests for benchdnn convolution problems: benchdnn's defaults (mb 2, FWD_B = forward with
// bias), its derivations (output size from padding, padding from output size, end padding
// from the output size, square promotion, 1-D descriptors) and errors that name the field.
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

const Problem kSeed64 = Seed(16, 32, 64);

// c8 -> k8, 3x3 dilated 2, pad 2 on 32x32 (benchdnn writes the dilation as dh1).
Problem Dilated() {
  Problem p;
  p.c = p.k = 8;
  p.h = p.w = 32;
  p.r = p.s = 3;
  p.dilation_h = p.dilation_w = 2;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 2;
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

class BenchdnnPrintTest : public testing::TestWithParam<PrintCase> {};

TEST_P(BenchdnnPrintTest, PrintsExactly) {
  const PrintCase& c = GetParam();
  StatusOr<std::string> got = ToBenchdnn(c.problem);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, c.text);
  StatusOr<std::string> via_dispatch = PrintProblem(c.problem, TextForm::kBenchdnn);
  ASSERT_TRUE(via_dispatch.ok()) << via_dispatch.status().ToString();
  EXPECT_EQ(*via_dispatch, c.text);
}

TEST_P(BenchdnnPrintTest, ParsesBack) {
  const PrintCase& c = GetParam();
  StatusOr<Problem> got = ParseProblem(c.text, TextForm::kBenchdnn);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, c.problem) << ToCanonical(*got);
}

INSTANTIATE_TEST_SUITE_P(
    Benchdnn, BenchdnnPrintTest,
    testing::Values(
        PrintCase{"Seed16to32At32", Seed(16, 32, 32),
                  "--dir=FWD_D mb1ic16ih32iw32oc32oh32ow32kh3kw3sh1sw1ph1pw1dh0dw0"},
        PrintCase{"Seed16to32At48", Seed(16, 32, 48),
                  "--dir=FWD_D mb1ic16ih48iw48oc32oh48ow48kh3kw3sh1sw1ph1pw1dh0dw0"},
        PrintCase{"Seed16to32At64", kSeed64,
                  "--dir=FWD_D mb1ic16ih64iw64oc32oh64ow64kh3kw3sh1sw1ph1pw1dh0dw0"},
        PrintCase{"Seed3to16At64", Seed(3, 16, 64),
                  "--dir=FWD_D mb1ic3ih64iw64oc16oh64ow64kh3kw3sh1sw1ph1pw1dh0dw0"},
        PrintCase{"ForwardBiasF16NhwcGroups",
                  Make(Problem{},
                       [](Problem& p) {
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
                       }),
                  "--dir=FWD_B --dt=f16 --stag=axb --dtag=axb "
                  "g4mb2ic16ih8iw10oc32oh8ow10kh3kw1sh1sw1ph1pw0dh0dw0"},
        PrintCase{"BackwardWeightsBiasBf16Dilated",
                  Make(Dilated(),
                       [](Problem& p) {
                         p.bias = true;
                         p.dtype = DataType::kBF16;
                         p.direction = Direction::kBackwardWeights;
                       }),
                  "--dir=BWD_WB --dt=bf16 mb1ic8ih32iw32oc8oh32ow32kh3kw3sh1sw1ph2pw2dh1dw1"},
        PrintCase{"BackwardWeights",
                  Make(kSeed64, [](Problem& p) { p.direction = Direction::kBackwardWeights; }),
                  "--dir=BWD_W mb1ic16ih64iw64oc32oh64ow64kh3kw3sh1sw1ph1pw1dh0dw0"},
        PrintCase{"BackwardDataStrided",
                  Make(kSeed64,
                       [](Problem& p) {
                         p.stride_h = p.stride_w = 2;
                         p.direction = Direction::kBackwardData;
                       }),
                  "--dir=BWD_D mb1ic16ih64iw64oc32oh32ow32kh3kw3sh2sw2ph1pw1dh0dw0"},
        // Asymmetric pads are expressible when the output size pins the end padding.
        PrintCase{"EvenKernelSamePadding",
                  Make(kSeed64,
                       [](Problem& p) {
                         p.r = p.s = 4;
                         p.pad_bottom = p.pad_right = 2;
                       }),
                  "--dir=FWD_D mb1ic16ih64iw64oc32oh64ow64kh4kw4sh1sw1ph1pw1dh0dw0"},
        PrintCase{"TopAndRightOnly",
                  Make(kSeed64,
                       [](Problem& p) {
                         p.pad_top = 2;
                         p.pad_bottom = 0;
                         p.pad_left = 0;
                         p.pad_right = 2;
                       }),
                  "--dir=FWD_D mb1ic16ih64iw64oc32oh64ow64kh3kw3sh1sw1ph2pw0dh0dw0"},
        PrintCase{"StridedEndPaddingOnly",
                  Make(kSeed64,
                       [](Problem& p) {
                         p.stride_h = p.stride_w = 2;
                         p.pad_top = p.pad_left = 0;
                       }),
                  "--dir=FWD_D mb1ic16ih64iw64oc32oh32ow32kh3kw3sh2sw2ph0pw0dh0dw0"}),
    CaseName<PrintCase>);

// ---- other accepted spellings ----------------------------------------------------------

struct ParseCase {
  std::string name;
  std::string text;
  Problem want;
};

// gtest prints a failing case's parameter; its name is what a reader needs.
void PrintTo(const ParseCase& c, std::ostream* os) { *os << c.name; }

class BenchdnnParseTest : public testing::TestWithParam<ParseCase> {};

TEST_P(BenchdnnParseTest, Parses) {
  const ParseCase& c = GetParam();
  StatusOr<Problem> got = ParseProblem(c.text, TextForm::kBenchdnn);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, c.want) << "got " << ToCanonical(*got) << ", want " << ToCanonical(c.want);
}

INSTANTIATE_TEST_SUITE_P(
    Benchdnn, BenchdnnParseTest,
    testing::Values(
        // benchdnn's conv default direction is FWD_B and its default minibatch is 2.
        ParseCase{"BareDescriptorIsForwardWithBias", "mb2ic16ih64oc32oh64kh3ph1",
                  Make(kSeed64,
                       [](Problem& p) {
                         p.n = 2;
                         p.bias = true;
                       })},
        ParseCase{"DefaultMinibatch", "--dir=FWD_D ic16ih64oc32oh64kh3ph1",
                  Make(kSeed64, [](Problem& p) { p.n = 2; })},
        ParseCase{"ForwardNoBias", "--dir=FWD_D mb1ic16ih64oc32oh64kh3ph1", kSeed64},
        ParseCase{"DerivedOutput", "--dir=FWD_D mb1ic16ih64oc32kh3ph1", kSeed64},
        ParseCase{"DerivedPadding", "--dir=FWD_D mb1ic16ih64oc32oh64kh3", kSeed64},
        ParseCase{"DerivedAsymmetricPadding", "--dir=FWD_D mb1ic16ih64oc32oh64kh4",
                  Make(kSeed64,
                       [](Problem& p) {
                         p.r = p.s = 4;
                         p.pad_bottom = p.pad_right = 2;
                       })},
        // oh32 also fits ph1 on both sides: the unused bottom row stays as written.
        ParseCase{"StrideSlackKeepsSymmetry", "--dir=FWD_D mb1ic16ih64oc32oh32kh3sh2ph1",
                  Make(kSeed64, [](Problem& p) { p.stride_h = p.stride_w = 2; })},
        // benchdnn derives ph0 ((31*2 - 64 + 3) / 2) and an end padding of 1.
        ParseCase{"StrideSlackDerived", "--dir=FWD_D mb1ic16ih64oc32oh32kh3sh2",
                  Make(kSeed64,
                       [](Problem& p) {
                         p.stride_h = p.stride_w = 2;
                         p.pad_top = p.pad_left = 0;
                       })},
        ParseCase{"DilationCountsGaps", "--dir=FWD_D mb1ic8ih32oc8kh3ph2dh1", Dilated()},
        ParseCase{"GroupsUnderscoresAndName",
                  "--dir=FWD_D g2_mb1_ic16ih64_oc32oh64_kh3ph1_n\"my conv: 1\"",
                  Make(kSeed64, [](Problem& p) { p.groups = 2; })},
        ParseCase{"AlexnetConv1",
                  "--dir=FWD_D ic3ih227iw227_oc96oh55ow55_kh11kw11_sh4sw4ph0pw0_n\"alexnet:conv1\"",
                  Make(Problem{},
                       [](Problem& p) {
                         p.n = 2;
                         p.c = 3;
                         p.h = p.w = 227;
                         p.k = 96;
                         p.r = p.s = 11;
                         p.stride_h = p.stride_w = 4;
                       })},
        ParseCase{"OneDimensional", "--dir=FWD_D mb1ic16iw64oc32kw3pw1",
                  Make(kSeed64,
                       [](Problem& p) {
                         p.h = 1;
                         p.r = 1;
                         p.pad_top = p.pad_bottom = 0;
                       })},
        ParseCase{"SquarePromotionWithDefaultValuedW", "--dir=FWD_D mb1ic16ih64oc32kh3ph1sw1dw0",
                  kSeed64},
        ParseCase{"DtF16", "--dir=FWD_D --dt=f16 mb1ic16ih64oc32kh3ph1",
                  Make(kSeed64, [](Problem& p) { p.dtype = DataType::kF16; })},
        ParseCase{"DtTriple", "--dir=FWD_D --dt=bf16:bf16:bf16 mb1ic16ih64oc32kh3ph1",
                  Make(kSeed64, [](Problem& p) { p.dtype = DataType::kBF16; })},
        ParseCase{"CfgF16", "--cfg=f16 --dir=FWD_D mb1ic16ih64oc32kh3ph1",
                  Make(kSeed64, [](Problem& p) { p.dtype = DataType::kF16; })},
        ParseCase{"CfgBf16", "--cfg=bf16bf16bf16 --dir=FWD_D mb1ic16ih64oc32kh3ph1",
                  Make(kSeed64, [](Problem& p) { p.dtype = DataType::kBF16; })},
        ParseCase{"NhwcTags", "--dir=FWD_D --stag=axb --dtag=axb mb1ic16ih64oc32kh3ph1",
                  Make(kSeed64, [](Problem& p) { p.layout = Layout::kNHWC; })},
        ParseCase{"NhwcSourceTagOnly", "--dir=FWD_D --stag=nhwc --wtag=any mb1ic16ih64oc32kh3ph1",
                  Make(kSeed64, [](Problem& p) { p.layout = Layout::kNHWC; })},
        ParseCase{"PlainTags",
                  "--dir=FWD_D --stag=abx --wtag=abx --dtag=abcd mb1ic16ih64oc32kh3ph1", kSeed64},
        ParseCase{"BackwardData", "--dir=BWD_D mb1ic16ih64oc32kh3ph1",
                  Make(kSeed64, [](Problem& p) { p.direction = Direction::kBackwardData; })},
        ParseCase{"BackwardWeights", "--dir=BWD_W mb1ic16ih64oc32kh3ph1",
                  Make(kSeed64, [](Problem& p) { p.direction = Direction::kBackwardWeights; })},
        ParseCase{"BackwardWeightsBias", "--dir=BWD_WB mb1ic16ih64oc32kh3ph1",
                  Make(kSeed64,
                       [](Problem& p) {
                         p.direction = Direction::kBackwardWeights;
                         p.bias = true;
                       })},
        ParseCase{"InferenceIsForward", "--dir=FWD_I mb1ic16ih64oc32kh3ph1", kSeed64},
        ParseCase{"ProgramAndDriver", "./benchdnn --conv --dir=FWD_D mb1ic16ih64oc32kh3ph1",
                  kSeed64},
        ParseCase{"MinibatchOverride", "--mb=4 --dir=FWD_D mb1ic16ih64oc32kh3ph1",
                  Make(kSeed64, [](Problem& p) { p.n = 4; })},
        ParseCase{"MinibatchOverrideZeroKeepsDescriptor",
                  "--mb=0 --dir=FWD_D mb1ic16ih64oc32kh3ph1", kSeed64},
        ParseCase{"AlgorithmIgnored", "--alg=WINO --dir=FWD_D mb1ic16ih64oc32kh3ph1", kSeed64},
        ParseCase{"SurroundingWhitespace", "  --dir=FWD_D   mb1ic16ih64oc32kh3ph1 \n", kSeed64}),
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

class BenchdnnErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(BenchdnnErrorTest, Rejects) {
  const ErrorCase& c = GetParam();
  StatusOr<Problem> got = ParseProblem(c.text, TextForm::kBenchdnn);
  ASSERT_FALSE(got.ok()) << "parsed as " << ToCanonical(*got);
  EXPECT_EQ(got.status().code(), c.code) << got.status().ToString();
  EXPECT_NE(got.status().message().find(c.message_part), std::string::npos)
      << "message: " << got.status().message() << "\nwanted part: " << c.message_part;
  EXPECT_EQ(got.status().message().rfind("benchdnn: ", 0), 0u) << got.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Benchdnn, BenchdnnErrorTest,
    testing::Values(
        ErrorCase{"ThreeDimensional", "--dir=FWD_D mb1ic16id8ih64oc32kd3kh3",
                  StatusCode::kUnsupported, "field 'id8' describes a depth"},
        ErrorCase{"UnknownField", "mb1ic16ih64oc32kh3xx3", StatusCode::kInvalidArgument,
                  "unknown field at 'xx3'"},
        ErrorCase{"NegativeNumber", "mb1ic-16ih64oc32kh3", StatusCode::kInvalidArgument,
                  "field 'ic-16': negative numbers are not allowed"},
        ErrorCase{"MissingNumber", "mb1icih64oc32kh3", StatusCode::kInvalidArgument,
                  "field 'ic' at 'icih64oc32kh3' has no number"},
        ErrorCase{"RepeatedField", "mb1ic16ic8ih64oc32kh3", StatusCode::kInvalidArgument,
                  "field 'ic8' repeats 'ic16'"},
        ErrorCase{"Overflow", "mb1ic99999999999ih64oc32kh3", StatusCode::kOutOfRange,
                  "field 'ic99999999999' is too large"},
        ErrorCase{"ZeroOutput", "mb1ic16ih64oc32oh0kh3", StatusCode::kInvalidArgument,
                  "field 'oh0': oh must be at least 1"},
        ErrorCase{"ZeroStride", "mb1ic16ih64oc32kh3sh0", StatusCode::kInvalidArgument,
                  "field 'sh0': sh must be at least 1"},
        ErrorCase{"MissingKernel", "mb1ic16ih64oc32", StatusCode::kInvalidArgument, "missing 'kh'"},
        ErrorCase{"WidthWithoutKernelWidth", "mb1ic16ih64iw32oc32kh3", StatusCode::kInvalidArgument,
                  "missing 'kw'"},
        ErrorCase{"MissingInputChannels", "mb1ih64oc32kh3", StatusCode::kInvalidArgument,
                  "missing 'ic'"},
        ErrorCase{"NoSpatialSize", "mb1ic16oc32", StatusCode::kInvalidArgument,
                  "has no spatial size"},
        ErrorCase{"ConflictsWithSquarePromotion", "mb1ic16ih64oc32kh3ph1pw0",
                  StatusCode::kInvalidArgument, "field 'pw0' conflicts with square promotion"},
        ErrorCase{"NegativeDerivedPadding", "mb1ic16ih64oc32oh10kh3", StatusCode::kUnsupported,
                  "implies a negative padding ph-26"},
        ErrorCase{"NegativeEndPadding", "mb1ic16ih64oc32oh30kh3ph1", StatusCode::kUnsupported,
                  "'oh30' implies a negative bottom padding of -33"},
        ErrorCase{"KernelDoesNotFit", "mb1ic16ih2oc32kh5", StatusCode::kInvalidArgument,
                  "the kernel 'kh5' (5 with dilation) does not fit 'ih2'"},
        ErrorCase{"UnknownDirection", "--dir=FOO mb1ic16ih64oc32kh3", StatusCode::kInvalidArgument,
                  "unknown direction 'FOO' in --dir"},
        ErrorCase{"SeveralDirections", "--dir=FWD_B,BWD_D mb1ic16ih64oc32kh3",
                  StatusCode::kInvalidArgument, "lists several directions"},
        ErrorCase{"Int8", "--dt=s8 mb1ic16ih64oc32kh3", StatusCode::kUnsupported,
                  "--dt: data type 's8' is not one convguard runs"},
        ErrorCase{"MixedTypes", "--dt=f16:f16:f32 mb1ic16ih64oc32kh3", StatusCode::kUnsupported,
                  "--dt=f16:f16:f32 mixes data types"},
        ErrorCase{"UnknownType", "--dt=f31 mb1ic16ih64oc32kh3", StatusCode::kInvalidArgument,
                  "--dt: unknown data type 'f31'"},
        ErrorCase{"TwoTypes", "--dt=f16:f16 mb1ic16ih64oc32kh3", StatusCode::kInvalidArgument,
                  "takes one type or three"},
        ErrorCase{"QuantizedCfg", "--cfg=u8s8s32 mb1ic16ih64oc32kh3", StatusCode::kUnsupported,
                  "--cfg=u8s8s32 is not a configuration convguard runs"},
        ErrorCase{"DtAndCfg", "--dt=f16 --cfg=f16 mb1ic16ih64oc32kh3", StatusCode::kInvalidArgument,
                  "give --dt or --cfg, not both"},
        ErrorCase{"MixedTags", "--stag=axb --dtag=abx mb1ic16ih64oc32kh3", StatusCode::kUnsupported,
                  "name different layouts"},
        ErrorCase{"BlockedTag", "--stag=aBcd16b mb1ic16ih64oc32kh3", StatusCode::kUnsupported,
                  "--stag=aBcd16b is not a layout convguard runs"},
        ErrorCase{"PostOps", "--attr-post-ops=relu mb1ic16ih64oc32kh3", StatusCode::kUnsupported,
                  "option '--attr-post-ops=relu' adds attributes"},
        ErrorCase{"UnknownOption", "--foo=1 mb1ic16ih64oc32kh3", StatusCode::kInvalidArgument,
                  "unknown option '--foo=1'"},
        ErrorCase{"OptionWithoutValue", "--dir FWD_D mb1ic16ih64oc32kh3",
                  StatusCode::kInvalidArgument, "option '--dir' has no '=value'"},
        ErrorCase{"RepeatedOption", "--dir=FWD_D --dir=BWD_D mb1ic16ih64oc32kh3",
                  StatusCode::kInvalidArgument, "option '--dir=BWD_D' repeats '--dir'"},
        ErrorCase{"OptionAfterDescriptor", "mb1ic16ih64oc32kh3 --dir=FWD_D",
                  StatusCode::kInvalidArgument, "unexpected '--dir=FWD_D' after the descriptor"},
        ErrorCase{"TwoDescriptors", "mb1ic16ih64oc32kh3 mb1ic16ih64oc32kh3",
                  StatusCode::kInvalidArgument, "after the descriptor"},
        ErrorCase{"NoDescriptor", "--dir=FWD_D", StatusCode::kInvalidArgument, "no descriptor"},
        ErrorCase{"GroupsDoNotDivide", "g3mb1ic16ih64oc32kh3", StatusCode::kInvalidArgument,
                  "benchdnn: c = 16 must be divisible by groups = 3"}),
    CaseName<ErrorCase>);

// ---- problems benchdnn cannot express --------------------------------------------------

TEST(BenchdnnPrint, BackwardDataWithBiasIsUnsupported) {
  Problem p = kSeed64;
  p.direction = Direction::kBackwardData;
  p.bias = true;
  StatusOr<std::string> got = ToBenchdnn(p);
  ASSERT_FALSE(got.ok()) << *got;
  EXPECT_EQ(got.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(got.status().message().find("no backward-data direction with bias"), std::string::npos)
      << got.status().message();
}

TEST(BenchdnnPrint, EndPaddingTheStrideNeverReachesIsUnsupported) {
  // 65 rows, pad 1 on top and 2 at the bottom, stride 2: the output (33 rows) is the one
  // symmetric padding gives, so benchdnn's descriptor would read back as pad 1 / 1.
  Problem p = Seed(16, 32, 65);
  p.stride_h = p.stride_w = 2;
  p.pad_bottom = p.pad_right = 2;
  StatusOr<std::string> got = ToBenchdnn(p);
  ASSERT_FALSE(got.ok()) << *got;
  EXPECT_EQ(got.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(got.status().message().find("it reads as bottom 1 right 1, not 2 and 2"),
            std::string::npos)
      << got.status().message();
}

TEST(BenchdnnPrint, InvalidProblemIsRejectedNotPrinted) {
  Problem p = kSeed64;
  p.stride_w = 0;
  StatusOr<std::string> got = ToBenchdnn(p);
  ASSERT_FALSE(got.ok()) << *got;
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace convguard
