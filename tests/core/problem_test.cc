#include "convguard/problem.h"

#include <gtest/gtest.h>

#include <string>

#include "support/seed_problems.h"

namespace convguard {
namespace {

using testing_support::SeedConv;

TEST(ProblemTest, SeedProblemsDerivedQuantities) {
  for (int64_t hw : {32, 48, 64}) {
    Problem p = SeedConv(16, 32, hw);
    ASSERT_TRUE(Validate(p).ok()) << hw;
    EXPECT_EQ(p.out_h(), hw);
    EXPECT_EQ(p.out_w(), hw);
    EXPECT_EQ(p.macs(), hw * hw * 32 * 16 * 9);
    EXPECT_EQ(p.flops(), 2 * hw * hw * 32 * 16 * 9);
    EXPECT_EQ(p.input_bytes(), 16 * hw * hw * 4);
    EXPECT_EQ(p.weight_bytes(), 32 * 16 * 9 * 4);
    EXPECT_EQ(p.output_bytes(), 32 * hw * hw * 4);
  }
  Problem rgb = SeedConv(3, 16, 224);
  ASSERT_TRUE(Validate(rgb).ok());
  EXPECT_EQ(rgb.accumulation_length(), 27);
}

TEST(ProblemTest, OutputShapeWithStrideDilationAndAsymmetricPads) {
  Problem p;
  p.n = 2;
  p.c = 4;
  p.h = 10;
  p.w = 7;
  p.k = 6;
  p.r = 3;
  p.s = 2;
  p.pad_top = 0;
  p.pad_bottom = 2;
  p.pad_left = 1;
  p.pad_right = 0;
  p.stride_h = 2;
  p.stride_w = 3;
  p.dilation_h = 2;
  p.dilation_w = 1;
  p.groups = 2;
  ASSERT_TRUE(Validate(p).ok());
  // h: (10 + 0 + 2 - ((3-1)*2+1)) / 2 + 1 = (12 - 5) / 2 + 1 = 4
  EXPECT_EQ(p.out_h(), 4);
  // w: (7 + 1 + 0 - 2) / 3 + 1 = 3
  EXPECT_EQ(p.out_w(), 3);
  EXPECT_EQ(p.weight_elements(), 6 * 2 * 3 * 2);
  EXPECT_EQ(p.c_per_group(), 2);
  p.direction = Direction::kBackwardWeights;
  EXPECT_EQ(p.accumulation_length(), 2 * 4 * 3);
}

TEST(ProblemTest, BiasAddsOneFlopPerOutputForwardOnly) {
  Problem p = SeedConv(16, 32, 32);
  const int64_t without = p.flops();
  p.bias = true;
  EXPECT_EQ(p.flops(), without + p.output_elements());
  EXPECT_EQ(p.bias_bytes(), 32 * 4);
  p.direction = Direction::kBackwardData;
  EXPECT_EQ(p.flops(), without);
}

struct InvalidCase {
  std::string name;
  Problem problem;
  StatusCode code;
  std::string message_part;
};

Problem With(void (*edit)(Problem&)) {
  Problem p = SeedConv(16, 32, 64);
  edit(p);
  return p;
}

class ProblemValidationTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(ProblemValidationTest, RejectsWithNamedField) {
  const InvalidCase& tc = GetParam();
  Status s = Validate(tc.problem);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), tc.code) << s.ToString();
  EXPECT_NE(s.message().find(tc.message_part), std::string::npos) << s.message();
}

INSTANTIATE_TEST_SUITE_P(
    Table, ProblemValidationTest,
    ::testing::Values(
        InvalidCase{"ZeroBatch", With([](Problem& p) { p.n = 0; }), StatusCode::kInvalidArgument,
                    "n (batch) = 0 is out of range; allowed 1.."},
        InvalidCase{"NegativeChannels", With([](Problem& p) { p.c = -3; }),
                    StatusCode::kInvalidArgument, "c (input channels) = -3"},
        InvalidCase{"ZeroKernel", With([](Problem& p) { p.s = 0; }), StatusCode::kInvalidArgument,
                    "s (kernel width) = 0"},
        InvalidCase{"NegativePad", With([](Problem& p) { p.pad_right = -1; }),
                    StatusCode::kInvalidArgument, "pad right = -1"},
        InvalidCase{"ZeroStride", With([](Problem& p) { p.stride_h = 0; }),
                    StatusCode::kInvalidArgument, "stride h = 0"},
        InvalidCase{"ZeroDilation", With([](Problem& p) { p.dilation_w = 0; }),
                    StatusCode::kInvalidArgument, "dilation w = 0"},
        InvalidCase{"ChannelsNotDivisibleByGroups", With([](Problem& p) { p.groups = 3; }),
                    StatusCode::kInvalidArgument, "c = 16 must be divisible by groups = 3"},
        InvalidCase{"OutputChannelsNotDivisibleByGroups", With([](Problem& p) {
                      p.c = 30;
                      p.k = 24;
                      p.groups = 4;
                    }),
                    StatusCode::kInvalidArgument, "c = 30 must be divisible by groups = 4"},
        InvalidCase{"KNotDivisible", With([](Problem& p) {
                      p.c = 32;
                      p.k = 30;
                      p.groups = 4;
                    }),
                    StatusCode::kInvalidArgument, "k = 30 must be divisible by groups = 4"},
        InvalidCase{"DilatedKernelTallerThanPaddedInput", With([](Problem& p) {
                      p.h = 4;
                      p.dilation_h = 3;
                      p.pad_top = p.pad_bottom = 0;
                    }),
                    StatusCode::kInvalidArgument,
                    "exceeds padded input height h + pad_top + pad_bottom = 4"},
        InvalidCase{"KernelWiderThanPaddedInput", With([](Problem& p) {
                      p.w = 1;
                      p.pad_left = 0;
                      p.pad_right = 1;
                    }),
                    StatusCode::kInvalidArgument, "exceeds padded input width"},
        InvalidCase{"FieldAbove2To31", With([](Problem& p) { p.h = int64_t{1} << 40; }),
                    StatusCode::kInvalidArgument, "h (input height)"},
        InvalidCase{"ElementCountOverflows", With([](Problem& p) {
                      p.n = p.c = p.h = p.w = int64_t{1} << 30;
                      p.k = 1;
                    }),
                    StatusCode::kOutOfRange, "input n*c*h*w overflows"},
        InvalidCase{"OverMemoryCeiling", With([](Problem& p) {
                      p.n = 4096;
                      p.c = 256;
                      p.h = p.w = 256;
                    }),
                    StatusCode::kOutOfRange, "over the memory ceiling"}),
    [](const ::testing::TestParamInfo<InvalidCase>& info) { return info.param.name; });

TEST(ProblemTest, MemoryCeilingIsConfigurable) {
  Problem p = SeedConv(16, 32, 64);
  ValidationLimits tight;
  tight.max_total_bytes = p.total_bytes() - 1;
  EXPECT_EQ(Validate(p, tight).code(), StatusCode::kOutOfRange);
  tight.max_total_bytes = p.total_bytes();
  EXPECT_TRUE(Validate(p, tight).ok());
}

TEST(ProblemTest, NamesOfEnums) {
  EXPECT_EQ(DataTypeName(DataType::kBF16), "bf16");
  EXPECT_EQ(LayoutName(Layout::kNHWC), "nhwc");
  EXPECT_EQ(DirectionName(Direction::kBackwardWeights), "bwd-weights");
  EXPECT_EQ(DataTypeBytes(DataType::kF16), 2);
}

}  // namespace
}  // namespace convguard
