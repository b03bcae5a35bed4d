#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "convguard/problem.h"
#include "convguard/problem_source.h"
#include "convguard/text_forms.h"

namespace convguard {

// Failures print a Problem in its canonical form rather than as raw bytes. Internal
// linkage, and found by argument-dependent lookup from inside GoogleTest.
static void PrintTo(const Problem& p, std::ostream* os) { *os << ToCanonical(p); }

namespace {

// A problem built field by field, independently of the grid code.
Problem Conv(int64_t c, int64_t k, int64_t hw, int64_t r, int64_t pad) {
  Problem p;
  p.c = c;
  p.k = k;
  p.h = p.w = hw;
  p.r = p.s = r;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = pad;
  return p;
}

std::vector<int64_t> Heights(const GridExpansion& g) {
  std::vector<int64_t> out;
  for (const Problem& p : g.problems) out.push_back(p.h);
  return out;
}

TEST(GridTest, BriefExampleCountOrderFirstAndLast) {
  StatusOr<GridExpansion> g = ExpandGrid("c=3,16,32 k=16,32,64 hw=32..64:16 n=1 r=3");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->combinations, 27);
  EXPECT_EQ(g->skipped_invalid, 0);
  EXPECT_EQ(g->duplicates_removed, 0);
  ASSERT_EQ(g->problems.size(), 27u);
  EXPECT_EQ(g->problems.front(), Conv(3, 16, 32, 3, 0));
  EXPECT_EQ(g->problems.back(), Conv(32, 64, 64, 3, 0));
  // Canonical-form order n c h w k ...: k (after h) varies faster than hw.
  EXPECT_EQ(g->problems[1], Conv(3, 32, 32, 3, 0));
  EXPECT_EQ(g->problems[3], Conv(3, 16, 48, 3, 0));
  EXPECT_EQ(g->problems[9], Conv(16, 16, 32, 3, 0));
}

TEST(GridTest, SeedGridIsExactlyTheSeedProblems) {
  StatusOr<GridExpansion> g = ExpandGrid("c=16 k=32 hw=32,48,64 r=3 p=same");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const std::vector<Problem> expected = {Conv(16, 32, 32, 3, 1), Conv(16, 32, 48, 3, 1),
                                         Conv(16, 32, 64, 3, 1)};
  EXPECT_EQ(g->problems, expected);
  for (const Problem& p : g->problems) EXPECT_EQ(p.out_h(), p.h);  // 'same' keeps the size
}

TEST(GridTest, OrderIsByKeyNotByWriting) {
  StatusOr<GridExpansion> a = ExpandGrid("c=1,2 k=3,4 hw=5 r=1");
  StatusOr<GridExpansion> b = ExpandGrid("r=1 k=3,4 hw=5 c=1,2");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->problems, b->problems);
  ASSERT_EQ(a->problems.size(), 4u);
  EXPECT_EQ(a->problems[0], Conv(1, 3, 5, 1, 0));
  EXPECT_EQ(a->problems[1], Conv(1, 4, 5, 1, 0));
  EXPECT_EQ(a->problems[2], Conv(2, 3, 5, 1, 0));
  EXPECT_EQ(a->problems[3], Conv(2, 4, 5, 1, 0));
}

struct RangeCase {
  std::string name;
  std::string values;  // the value text of hw
  std::vector<int64_t> expected;
};

class GridRangeTest : public ::testing::TestWithParam<RangeCase> {};

TEST_P(GridRangeTest, ExpandsValues) {
  const RangeCase& tc = GetParam();
  StatusOr<GridExpansion> g = ExpandGrid("c=1 k=1 r=1 hw=" + tc.values);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(Heights(*g), tc.expected);
  EXPECT_EQ(g->combinations, static_cast<int64_t>(tc.expected.size()));
}

INSTANTIATE_TEST_SUITE_P(
    Forms, GridRangeTest,
    ::testing::Values(RangeCase{"Single", "8", {8}}, RangeCase{"List", "8,16,4", {8, 16, 4}},
                      RangeCase{"UnitRange", "5..8", {5, 6, 7, 8}},
                      RangeCase{"EqualEnds", "7..7", {7}},
                      RangeCase{"Step", "32..64:16", {32, 48, 64}},
                      RangeCase{"StepStopsBeforeEnd", "32..60:16", {32, 48}},
                      RangeCase{"Geometric", "8..64:*2", {8, 16, 32, 64}},
                      RangeCase{"GeometricStopsBeforeEnd", "3..50:*3", {3, 9, 27}},
                      RangeCase{"Mixed", "1,3,5..9:2", {1, 3, 5, 7, 9}},
                      RangeCase{"MixedRanges", "1..2,10..40:*2", {1, 2, 10, 20, 40}}),
    [](const ::testing::TestParamInfo<RangeCase>& info) { return info.param.name; });

struct KeyCase {
  std::string name;
  std::string spec;
  std::function<void(Problem&)> edit;  // applied to Conv(4, 8, 16, 3, 0)
};

class GridKeyTest : public ::testing::TestWithParam<KeyCase> {};

TEST_P(GridKeyTest, SetsFields) {
  const KeyCase& tc = GetParam();
  StatusOr<GridExpansion> g = ExpandGrid(tc.spec);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_EQ(g->problems.size(), 1u);
  Problem expected = Conv(4, 8, 16, 3, 0);
  tc.edit(expected);
  EXPECT_EQ(g->problems[0], expected);
}

INSTANTIATE_TEST_SUITE_P(
    Keys, GridKeyTest,
    ::testing::Values(
        KeyCase{"Defaults", "c=4 k=8 h=16 r=3", [](Problem&) {}},
        KeyCase{"HwSetsBoth", "c=4 k=8 hw=16 r=3", [](Problem&) {}},
        KeyCase{"Width", "c=4 k=8 h=16 w=20 r=3", [](Problem& p) { p.w = 20; }},
        KeyCase{"Batch", "n=2 c=4 k=8 h=16 r=3", [](Problem& p) { p.n = 2; }},
        KeyCase{"RsSetsBoth", "c=4 k=8 h=16 rs=5", [](Problem& p) { p.r = p.s = 5; }},
        KeyCase{"KernelWidth", "c=4 k=8 h=16 r=3 s=1", [](Problem& p) { p.s = 1; }},
        KeyCase{"PadAll", "c=4 k=8 h=16 r=3 p=2",
                [](Problem& p) { p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 2; }},
        KeyCase{"PadPerAxis", "c=4 k=8 h=16 r=3 ph=1 pw=2",
                [](Problem& p) {
                  p.pad_top = p.pad_bottom = 1;
                  p.pad_left = p.pad_right = 2;
                }},
        KeyCase{"PadEachSide", "c=4 k=8 h=16 r=3 pt=1 pl=2 pb=3 pr=4",
                [](Problem& p) {
                  p.pad_top = 1;
                  p.pad_left = 2;
                  p.pad_bottom = 3;
                  p.pad_right = 4;
                }},
        KeyCase{"SameDilated", "c=4 k=8 h=16 r=3 d=2 p=same",
                [](Problem& p) {
                  p.dilation_h = p.dilation_w = 2;
                  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 2;
                }},
        KeyCase{"SameEvenKernelLikePyTorch", "c=4 k=8 h=16 rs=4 p=same",
                [](Problem& p) {
                  p.r = p.s = 4;
                  p.pad_top = p.pad_left = 1;
                  p.pad_bottom = p.pad_right = 2;
                }},
        KeyCase{"SamePerAxis", "c=4 k=8 h=16 r=5 s=1 ph=same pw=0",
                [](Problem& p) {
                  p.r = 5;
                  p.s = 1;
                  p.pad_top = p.pad_bottom = 2;
                }},
        KeyCase{"Stride", "c=4 k=8 h=16 r=3 u=2", [](Problem& p) { p.stride_h = p.stride_w = 2; }},
        KeyCase{"StridePerAxis", "c=4 k=8 h=16 r=3 uh=2 uw=3",
                [](Problem& p) {
                  p.stride_h = 2;
                  p.stride_w = 3;
                }},
        KeyCase{"DilationPerAxis", "c=4 k=8 h=16 r=3 dh=2 dw=1",
                [](Problem& p) { p.dilation_h = 2; }},
        KeyCase{"Groups", "c=4 k=8 h=16 r=3 g=2", [](Problem& p) { p.groups = 2; }},
        KeyCase{"Bias", "c=4 k=8 h=16 r=3 bias=1", [](Problem& p) { p.bias = true; }},
        KeyCase{"Dtype", "c=4 k=8 h=16 r=3 dtype=bf16",
                [](Problem& p) { p.dtype = DataType::kBF16; }},
        KeyCase{"Layout", "c=4 k=8 h=16 r=3 layout=nhwc",
                [](Problem& p) { p.layout = Layout::kNHWC; }},
        KeyCase{"Direction", "c=4 k=8 h=16 r=3 dir=bwd-weights",
                [](Problem& p) { p.direction = Direction::kBackwardWeights; }},
        KeyCase{"Whitespace", "  c=4\tk=8\n h=16   r=3 ", [](Problem&) {}}),
    [](const ::testing::TestParamInfo<KeyCase>& info) { return info.param.name; });

TEST(GridTest, SymbolicListsExpandInWrittenOrder) {
  StatusOr<GridExpansion> g =
      ExpandGrid("c=4 k=8 hw=16 r=3 dtype=f16,f32 dir=fwd,bwd-data,bwd-weights");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_EQ(g->problems.size(), 6u);
  EXPECT_EQ(g->problems[0].dtype, DataType::kF16);
  EXPECT_EQ(g->problems[0].direction, Direction::kForward);
  EXPECT_EQ(g->problems[1].direction, Direction::kBackwardData);
  EXPECT_EQ(g->problems[3].dtype, DataType::kF32);
  EXPECT_EQ(g->problems[5].direction, Direction::kBackwardWeights);
}

TEST(GridTest, InvalidCombinationsAreSkippedAndCounted) {
  StatusOr<GridExpansion> g = ExpandGrid("c=2,3,4 k=4 hw=8 r=3 g=2");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->combinations, 3);
  EXPECT_EQ(g->skipped_invalid, 1);
  ASSERT_EQ(g->problems.size(), 2u);
  EXPECT_EQ(g->problems[0].c, 2);
  EXPECT_EQ(g->problems[1].c, 4);
  EXPECT_EQ(g->first_skipped_reason, "c=3 hw=8 k=4 r=3 g=2: c = 3 must be divisible by groups = 2");
}

TEST(GridTest, KernelLargerThanInputIsSkippedKeepingTheFirstReason) {
  StatusOr<GridExpansion> g = ExpandGrid("c=1 k=1 hw=1..5 r=3");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->skipped_invalid, 2);  // 1x1 and 2x2 inputs
  EXPECT_EQ(Heights(*g), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_NE(g->first_skipped_reason.find("hw=1 "), std::string::npos) << g->first_skipped_reason;
  EXPECT_NE(g->first_skipped_reason.find("exceeds padded input height"), std::string::npos);
}

TEST(GridTest, SkippedReasonNamesAPointThatCanBePastedBack) {
  StatusOr<GridExpansion> g = ExpandGrid("c=2,3 k=4 hw=8 r=3 g=2");
  ASSERT_TRUE(g.ok());
  const std::string point = g->first_skipped_reason.substr(0, g->first_skipped_reason.find(':'));
  StatusOr<GridExpansion> again = ExpandGrid(point);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find(g->first_skipped_reason), std::string::npos)
      << again.status().message();
}

TEST(GridTest, DuplicatesRemovedKeepingFirst) {
  StatusOr<GridExpansion> g = ExpandGrid("c=16 k=32 hw=32 r=3 p=1,same,0");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->combinations, 3);
  EXPECT_EQ(g->duplicates_removed, 1);
  EXPECT_EQ(g->problems, (std::vector<Problem>{Conv(16, 32, 32, 3, 1), Conv(16, 32, 32, 3, 0)}));
}

TEST(GridTest, MaxProblemsIsInclusive) {
  GridOptions options;
  options.max_problems = 27;
  EXPECT_TRUE(ExpandGrid("c=3,16,32 k=16,32,64 hw=32..64:16 r=3", options).ok());
  options.max_problems = 26;
  StatusOr<GridExpansion> g = ExpandGrid("c=3,16,32 k=16,32,64 hw=32..64:16 r=3", options);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(g.status().message().find("27 combinations (c:3 x hw:3 x k:3 x r:1)"),
            std::string::npos)
      << g.status().message();
  EXPECT_NE(g.status().message().find("max_problems = 26"), std::string::npos);
}

TEST(GridTest, ValidationLimitsApplyAndEveryInvalidKeepsTheCode) {
  GridOptions options;
  options.limits.max_total_bytes = 1000;
  StatusOr<GridExpansion> g = ExpandGrid("c=16 k=32 hw=64 r=3", options);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(g.status().message().find("memory ceiling"), std::string::npos) << g.status().message();
}

struct ErrorCase {
  std::string name;
  std::string spec;
  StatusCode code;
  std::vector<std::string> message_parts;
};

class GridErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(GridErrorTest, FailsNamingKeyAndToken) {
  const ErrorCase& tc = GetParam();
  StatusOr<GridExpansion> g = ExpandGrid(tc.spec);
  ASSERT_FALSE(g.ok()) << tc.spec;
  EXPECT_EQ(g.status().code(), tc.code) << g.status().ToString();
  for (const std::string& part : tc.message_parts) {
    EXPECT_NE(g.status().message().find(part), std::string::npos)
        << "missing '" << part << "' in: " << g.status().message();
  }
}

constexpr StatusCode kBad = StatusCode::kInvalidArgument;

INSTANTIATE_TEST_SUITE_P(
    Errors, GridErrorTest,
    ::testing::Values(
        ErrorCase{"UnknownKey",
                  "c=1 k=1 hw=8 r=1 x=3",
                  kBad,
                  {"'x=3'", "unknown key 'x'",
                   "allowed: n c h hw w k r rs s p ph pw pt pl pb pr u uh uw d dh dw g bias "
                   "dtype layout dir"}},
        ErrorCase{"NotKeyValues", "c=1 k=1 hw=8 r1", kBad, {"'r1' is not key=values"}},
        ErrorCase{
            "DuplicateKey", "c=1 k=1 c=2 hw=8 r=1", kBad, {"'c=2'", "duplicate key 'c'", "'c=1'"}},
        ErrorCase{"HwOverlapsH",
                  "c=1 k=1 hw=8 h=8 r=1",
                  kBad,
                  {"'hw' and 'h' overlap", "'hw=8'", "'h=8'"}},
        ErrorCase{"RsOverlapsS", "c=1 k=1 hw=8 rs=1 s=1", kBad, {"'rs' and 's' overlap"}},
        ErrorCase{"POverlapsPt", "c=1 k=1 hw=8 r=1 p=1 pt=0", kBad, {"'p' and 'pt' overlap"}},
        ErrorCase{"PwOverlapsPr", "c=1 k=1 hw=8 r=1 pw=1 pr=0", kBad, {"'pw' and 'pr' overlap"}},
        ErrorCase{"UOverlapsUh", "c=1 k=1 hw=8 r=1 u=1 uh=2", kBad, {"'u' and 'uh' overlap"}},
        ErrorCase{"DOverlapsDw", "c=1 k=1 hw=8 r=1 d=1 dw=2", kBad, {"'d' and 'dw' overlap"}},
        ErrorCase{"BadRange",
                  "c=1 k=1 hw=64..32 r=1",
                  kBad,
                  {"'hw=64..32'", "bad range '64..32'", "start 64 is above end 32"}},
        ErrorCase{"ZeroStep",
                  "c=1 k=1 hw=32..64:0 r=1",
                  kBad,
                  {"'hw=32..64:0'", "range '32..64:0' has a zero step"}},
        ErrorCase{"EmptyStep", "c=1 k=1 hw=32..64: r=1", kBad, {"has an empty step"}},
        ErrorCase{"GeometricFactorOne",
                  "c=1 k=1 hw=1..64:*1 r=1",
                  kBad,
                  {"'1..64:*1'", "factor of at least 2"}},
        ErrorCase{"GeometricFromZero",
                  "c=0..8:*2 k=1 hw=8 r=1",
                  kBad,
                  {"'c=0..8:*2'", "must start above 0"}},
        ErrorCase{"NotANumber",
                  "c=abc k=1 hw=8 r=1",
                  kBad,
                  {"'c=abc'", "'abc' is not a non-negative integer"}},
        ErrorCase{"Negative", "c=-3 k=1 hw=8 r=1", kBad, {"'-3' is not a non-negative integer"}},
        ErrorCase{"HalfRange", "c=1 k=1 hw=8.. r=1", kBad, {"'hw=8..'", "empty value"}},
        ErrorCase{"TooBigNumber",
                  "c=99999999999999999999 k=1 hw=8 r=1",
                  kBad,
                  {"does not fit in 64 bits"}},
        ErrorCase{"EmptyItem", "c=1,,2 k=1 hw=8 r=1", kBad, {"'c=1,,2'", "empty item"}},
        ErrorCase{"NoValues", "c= k=1 hw=8 r=1", kBad, {"'c='", "no values"}},
        ErrorCase{"BadDtype",
                  "c=1 k=1 hw=8 r=1 dtype=f32,f64",
                  kBad,
                  {"'f64' is not a dtype (allowed: f32, f16, bf16)"}},
        ErrorCase{"BadLayout", "c=1 k=1 hw=8 r=1 layout=chwn", kBad, {"(allowed: nchw, nhwc)"}},
        ErrorCase{"BadDirection",
                  "c=1 k=1 hw=8 r=1 dir=bwd",
                  kBad,
                  {"'bwd' is not a dir (allowed: fwd, bwd-data, bwd-weights)"}},
        ErrorCase{"SameOutsidePads",
                  "c=1 k=1 hw=8 r=same",
                  kBad,
                  {"'r=same'", "'same' is allowed only for p, ph and pw"}},
        ErrorCase{"SameOnOneSide", "c=1 k=1 hw=8 r=1 pt=same", kBad, {"only for p, ph and pw"}},
        ErrorCase{"BiasTwo", "c=1 k=1 hw=8 r=1 bias=0..2", kBad, {"bias is 0 or 1"}},
        ErrorCase{"MissingC", "k=1 hw=8 r=1", kBad, {"missing required key 'c'"}},
        ErrorCase{"MissingK", "c=1 hw=8 r=1", kBad, {"missing required key 'k'"}},
        ErrorCase{"MissingH", "c=1 k=1 w=8 r=1", kBad, {"missing required key 'h' or 'hw'"}},
        ErrorCase{"MissingR", "c=1 k=1 hw=8 s=1", kBad, {"missing required key 'r' or 'rs'"}},
        ErrorCase{"Empty", "", kBad, {"missing required key 'c'"}},
        ErrorCase{"TooLarge",
                  "n=1..2 c=1..1000 k=1..1000 hw=8 r=1",
                  StatusCode::kOutOfRange,
                  {"2000000 combinations", "max_problems = 1000000"}},
        // Rejected from the counts alone: expanding it would never finish.
        ErrorCase{"Enormous",
                  "c=1..3000000000 k=1..3000000000 hw=8 r=1",
                  StatusCode::kOutOfRange,
                  {"9000000000000000000 combinations"}},
        ErrorCase{"CountOverflows",
                  "c=1..4000000000 k=1..4000000000 hw=1..4000000000 r=1",
                  StatusCode::kOutOfRange,
                  {"overflows 64 bits", "hw:4000000000"}},
        ErrorCase{"EveryCombinationInvalid",
                  "c=3 k=4 hw=8 r=1 g=2",
                  kBad,
                  {"every one of the 1 grid combinations is invalid",
                   "c=3 hw=8 k=4 r=1 g=2: c = 3 must be divisible by groups = 2"}},
        ErrorCase{"ZeroDilationInvalid",
                  "c=1 k=1 hw=8 r=3 d=0",
                  kBad,
                  {"every one of the 1", "dilation h = 0 is out of range"}}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) { return info.param.name; });

}  // namespace
}  // namespace convguard
