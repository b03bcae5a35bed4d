// Tests of exact-result filling (fill.h) and of result comparison (compare.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "convguard/compare.h"
#include "convguard/fill.h"
#include "convguard/problem.h"
#include "convguard/reference.h"
#include "convguard/tensor.h"

namespace convguard {
namespace {

std::vector<float> ToFloat(const std::vector<double>& v) {
  return std::vector<float>(v.begin(), v.end());
}

// The tensors a direction reads, by role.
std::vector<TensorRole> ReadRoles(Direction d) {
  switch (d) {
    case Direction::kForward: return {TensorRole::kInput, TensorRole::kWeight};
    case Direction::kBackwardData: return {TensorRole::kOutput, TensorRole::kWeight};
    case Direction::kBackwardWeights: return {TensorRole::kInput, TensorRole::kOutput};
  }
  return {};
}

std::vector<double>& Member(ConvTensors<double>& t, TensorRole role) {
  switch (role) {
    case TensorRole::kInput: return t.input;
    case TensorRole::kWeight: return t.weight;
    case TensorRole::kOutput: break;
  }
  return t.output;
}

// ---------------------------------------------------------------------------------
// FillExact

struct FillCase {
  std::string name;
  Problem p;
  // Expected plan.
  int64_t dense_max, sparse_max, nonzero_terms;
};

Problem Conv(int64_t n, int64_t c, int64_t hw, int64_t k, int64_t rs, DataType dt, Direction d) {
  Problem p;
  p.n = n;
  p.c = c;
  p.h = p.w = hw;
  p.k = k;
  p.r = p.s = rs;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = rs / 2;
  p.dtype = dt;
  p.direction = d;
  return p;
}

std::vector<FillCase> FillCases() {
  using D = Direction;
  const DataType f32 = DataType::kF32, f16 = DataType::kF16, bf16 = DataType::kBF16;
  std::vector<FillCase> out;
  // Forward: terms = c/g * r * s (+1 bias).
  // 144 terms * 32 * 32 = 147456 <= 2^24.
  out.push_back({"F32FwdSeed", Conv(1, 16, 64, 32, 3, f32, D::kForward), 32, 32, 144});
  {
    Problem p = Conv(2, 3, 20, 16, 3, f32, D::kForward);
    p.bias = true;
    out.push_back({"F32FwdBias", p, 32, 32, 27});
  }
  // f16: 2048 / 144 = 14.2 -> 8x... the ladder's first product <= 14: 4x2.
  out.push_back({"F16FwdDense", Conv(1, 16, 12, 8, 3, f16, D::kForward), 4, 2, 144});
  // 256 * 9 = 2304 > 2048: +-1 values, 2048 nonzero weights per filter.
  out.push_back({"F16FwdSparse", Conv(1, 256, 6, 4, 3, f16, D::kForward), 1, 1, 2048});
  // bf16: 64 * 9 = 576 > 256: 256 nonzero weights per filter.
  out.push_back({"BF16FwdSparse", Conv(2, 64, 8, 4, 3, bf16, D::kForward), 1, 1, 256});
  {
    // With bias the bias takes one of the 256: 255 nonzero weights.
    Problem p = Conv(1, 64, 8, 4, 3, bf16, D::kForward);
    p.bias = true;
    p.layout = Layout::kNHWC;
    out.push_back({"BF16FwdBiasSparseNhwc", p, 1, 1, 255});
  }
  // bf16, 4 * 9 = 36 terms: 256 / 36 = 7.1 -> 4x1? The ladder has (4,2)=8 > 7.1, (2,2)=4.
  out.push_back({"BF16FwdSmall", Conv(1, 4, 10, 4, 3, bf16, D::kForward), 2, 2, 36});
  {
    // Grouped: terms = c/g * r * s = 8 * 25 = 200 per filter; 2048 / 200 = 10.2 -> 4x2.
    Problem p = Conv(1, 32, 10, 16, 5, f16, D::kForward);
    p.groups = 4;
    out.push_back({"F16FwdGroups", p, 4, 2, 200});
  }
  // Backward-data: terms = k/g * r * s.
  {
    Problem p = Conv(2, 8, 15, 64, 3, f32, D::kBackwardData);
    p.stride_h = p.stride_w = 2;
    out.push_back({"F32BwdDataStrided", p, 32, 32, 576});
  }
  out.push_back({"F16BwdDataSparse", Conv(1, 4, 6, 512, 3, f16, D::kBackwardData), 1, 1, 2048});
  {
    Problem p = Conv(1, 16, 9, 32, 3, bf16, D::kBackwardData);
    p.groups = 8;
    p.dilation_h = 2;
    p.pad_top = 2;
    p.pad_bottom = 2;
    out.push_back({"BF16BwdDataGroupsDilated", p, 2, 2, 36});
  }
  // Backward-weights: terms = n * oh * ow.
  // 4 * 64 * 64 = 16384 terms * 32 * 32 = 2^24 exactly: the limit itself is allowed.
  out.push_back(
      {"F32BwdWeightsAtLimit", Conv(4, 4, 64, 8, 3, f32, D::kBackwardWeights), 32, 32, 16384});
  // 2 * 48 * 48 = 4608 > 2048.
  out.push_back(
      {"F16BwdWeightsSparse", Conv(2, 4, 48, 4, 3, f16, D::kBackwardWeights), 1, 1, 2048});
  {
    Problem p = Conv(2, 6, 20, 6, 3, bf16, D::kBackwardWeights);
    p.layout = Layout::kNHWC;
    p.groups = 3;
    out.push_back({"BF16BwdWeightsSparseNhwc", p, 1, 1, 256});
  }
  // 1x1, 1 channel, a single term: the largest pair with 1 * a * b <= 256 is 16x16.
  out.push_back({"BF16SingleTerm", Conv(1, 1, 4, 1, 1, bf16, D::kForward), 16, 16, 1});
  return out;
}

class FillExactTest : public testing::TestWithParam<FillCase> {};

TEST_P(FillExactTest, PlanMatchesLadder) {
  const FillCase& fc = GetParam();
  ASSERT_TRUE(Validate(fc.p).ok()) << Validate(fc.p).ToString();
  const FillSummary f = PlanExactFill(fc.p);
  EXPECT_EQ(f.dense_max, fc.dense_max);
  EXPECT_EQ(f.sparse_max, fc.sparse_max);
  EXPECT_EQ(f.nonzero_terms, fc.nonzero_terms);
  EXPECT_EQ(f.terms + (fc.p.bias && fc.p.direction == Direction::kForward ? 1 : 0),
            fc.p.accumulation_length());
  EXPECT_DOUBLE_EQ(f.density, static_cast<double>(f.nonzero_terms) / static_cast<double>(f.terms));
  EXPECT_LE(f.max_abs_result, f.exact_limit);
  EXPECT_EQ(f.exact_limit, ExactIntegerLimit(fc.p.dtype));
}

// Every partial sum of every result element, in any order, is bounded by the sum of
// |terms|, which is the reference convolution of the absolute values. That must stay
// within the plan's bound, and the bound within the dtype's exact integers.
TEST_P(FillExactTest, EveryPartialSumIsExactInTheDtype) {
  const Problem& p = GetParam().p;
  ConvTensors<double> t = ConvTensors<double>::Allocate(p);
  const FillSummary f = FillExact(p, 1234, t);

  ConvTensors<double> abs_t = t;
  for (TensorRole role : ReadRoles(p.direction)) {
    for (double& v : Member(abs_t, role)) v = std::fabs(v);
  }
  for (double& v : abs_t.bias) v = std::fabs(v);
  ReferenceConvolution(p, abs_t);
  const std::vector<double>& abs_res = ResultTensor(p, abs_t);
  const double worst = *std::max_element(abs_res.begin(), abs_res.end());
  EXPECT_LE(worst, f.max_abs_result);
  EXPECT_LE(worst, ExactIntegerLimit(p.dtype));
  // The bound is not vacuous: the fill reaches a fair part of it.
  EXPECT_GE(worst, f.max_abs_result / 32);

  ConvTensors<double> ref = t;
  ReferenceConvolution(p, ref);
  int64_t nonzero = 0;
  for (double v : ResultTensor(p, ref)) {
    ASSERT_EQ(v, std::round(v));
    ASSERT_LE(std::fabs(v), f.max_abs_result);
    nonzero += v != 0;
  }
  // Enough nonzero results to be trusted.
  EXPECT_GE(static_cast<double>(nonzero),
            TrustNonzeroLevel(p) * static_cast<double>(ResultTensor(p, ref).size()));
}

TEST_P(FillExactTest, ValuesAreSmallNonzeroIntegersAndSlicesHaveExactDensity) {
  const Problem& p = GetParam().p;
  ConvTensors<double> t = ConvTensors<double>::Allocate(p);
  const FillSummary f = FillExact(p, 99, t);
  const std::vector<double>& dense = Member(t, f.dense);
  for (double v : dense) {
    ASSERT_EQ(v, std::round(v));
    ASSERT_NE(v, 0.0);
    ASSERT_LE(std::fabs(v), static_cast<double>(f.dense_max));
  }
  for (double v : Member(t, f.sparse)) {
    ASSERT_EQ(v, std::round(v));
    ASSERT_LE(std::fabs(v), static_cast<double>(f.sparse_max));
  }
  for (double v : t.bias) {
    ASSERT_NE(v, 0.0);
    ASSERT_LE(std::fabs(v), static_cast<double>(f.bias_max));
  }
  // Both signs and the largest magnitude occur in the dense operand.
  EXPECT_TRUE(std::any_of(dense.begin(), dense.end(), [](double v) { return v < 0; }));
  EXPECT_TRUE(std::any_of(dense.begin(), dense.end(), [](double v) { return v > 0; }));
  if (static_cast<int64_t>(dense.size()) >= 64 * f.dense_max) {
    EXPECT_TRUE(std::any_of(dense.begin(), dense.end(), [&](double v) {
      return std::fabs(v) == static_cast<double>(f.dense_max);
    }));
  }

  // Count nonzeros per sparse slice.
  const TensorIndexer ix(p);
  const int64_t Cg = p.c_per_group(), Kg = p.k_per_group();
  std::vector<int64_t> counts;
  switch (p.direction) {
    case Direction::kForward:
      for (int64_t k = 0; k < p.k; ++k) {
        int64_t nz = 0;
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t r = 0; r < p.r; ++r)
            for (int64_t s = 0; s < p.s; ++s) nz += t.weight[ix.weight(k, c, r, s)] != 0;
        counts.push_back(nz);
      }
      break;
    case Direction::kBackwardData:
      for (int64_t g = 0; g < p.groups; ++g)
        for (int64_t c = 0; c < Cg; ++c) {
          int64_t nz = 0;
          for (int64_t kk = 0; kk < Kg; ++kk)
            for (int64_t r = 0; r < p.r; ++r)
              for (int64_t s = 0; s < p.s; ++s)
                nz += t.weight[ix.weight(g * Kg + kk, c, r, s)] != 0;
          counts.push_back(nz);
        }
      break;
    case Direction::kBackwardWeights:
      for (int64_t k = 0; k < p.k; ++k) {
        int64_t nz = 0;
        for (int64_t n = 0; n < p.n; ++n)
          for (int64_t oh = 0; oh < p.out_h(); ++oh)
            for (int64_t ow = 0; ow < p.out_w(); ++ow) nz += t.output[ix.output(n, k, oh, ow)] != 0;
        counts.push_back(nz);
      }
      break;
  }
  for (int64_t nz : counts) EXPECT_EQ(nz, f.nonzero_terms);
}

TEST_P(FillExactTest, DeterministicPerSeedAndDifferentAcrossSeeds) {
  const Problem& p = GetParam().p;
  ConvTensors<double> a = ConvTensors<double>::Allocate(p);
  ConvTensors<double> b = ConvTensors<double>::Allocate(p);
  ConvTensors<double> c = ConvTensors<double>::Allocate(p);
  FillExact(p, 5, a);
  FillExact(p, 5, b);
  FillExact(p, 6, c);
  for (TensorRole role : ReadRoles(p.direction)) {
    EXPECT_EQ(Member(a, role), Member(b, role));
    if (Member(a, role).size() > 4) {
      EXPECT_NE(Member(a, role), Member(c, role));
    }
  }
  EXPECT_EQ(a.bias, b.bias);
}

TEST_P(FillExactTest, LeavesTheResultTensorAlone) {
  const Problem& p = GetParam().p;
  ConvTensors<double> t = ConvTensors<double>::Allocate(p);
  std::vector<double>& res = ResultTensor(p, t);
  std::fill(res.begin(), res.end(), 12345.0);
  FillExact(p, 1, t);
  const std::vector<double>& after = ResultTensor(p, t);
  EXPECT_TRUE(std::all_of(after.begin(), after.end(), [](double v) { return v == 12345.0; }));
}

INSTANTIATE_TEST_SUITE_P(Fill, FillExactTest, testing::ValuesIn(FillCases()),
                         [](const testing::TestParamInfo<FillCase>& info) {
                           return info.param.name;
                         });

TEST(FillExact, SameLogicalValuesInBothLayouts) {
  for (Direction d : {Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights}) {
    Problem p = Conv(2, 6, 7, 4, 3, DataType::kF16, d);
    p.groups = 2;
    p.bias = d == Direction::kForward;
    Problem q = p;
    q.layout = Layout::kNHWC;
    ConvTensors<double> a = ConvTensors<double>::Allocate(p);
    ConvTensors<double> b = ConvTensors<double>::Allocate(q);
    FillExact(p, 3, a);
    FillExact(q, 3, b);
    const TensorIndexer ia(p), ib(q);
    int bad = 0;
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t c = 0; c < p.c; ++c)
        for (int64_t h = 0; h < p.h; ++h)
          for (int64_t w = 0; w < p.w; ++w)
            bad += a.input[ia.input(n, c, h, w)] != b.input[ib.input(n, c, h, w)];
    for (int64_t k = 0; k < p.k; ++k)
      for (int64_t c = 0; c < p.c_per_group(); ++c)
        for (int64_t r = 0; r < p.r; ++r)
          for (int64_t s = 0; s < p.s; ++s)
            bad += a.weight[ia.weight(k, c, r, s)] != b.weight[ib.weight(k, c, r, s)];
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t k = 0; k < p.k; ++k)
        for (int64_t oh = 0; oh < p.out_h(); ++oh)
          for (int64_t ow = 0; ow < p.out_w(); ++ow)
            bad += a.output[ia.output(n, k, oh, ow)] != b.output[ib.output(n, k, oh, ow)];
    EXPECT_EQ(bad, 0) << DirectionName(d);
    EXPECT_EQ(a.bias, b.bias);
  }
}

TEST(FillExact, DigitsAndLimitsPerDtype) {
  EXPECT_EQ(ExactIntegerDigits(DataType::kF32), 24);
  EXPECT_EQ(ExactIntegerDigits(DataType::kF16), 11);
  EXPECT_EQ(ExactIntegerDigits(DataType::kBF16), 8);
  EXPECT_EQ(ExactIntegerLimit(DataType::kF32), 16777216.0);
  EXPECT_EQ(ExactIntegerLimit(DataType::kF16), 2048.0);
  EXPECT_EQ(ExactIntegerLimit(DataType::kBF16), 256.0);
  // The limits really are where the types stop holding every integer.
  const float f = 16777216.0f;
  EXPECT_EQ(f + 1.0f, f);
  EXPECT_NE(f - 1.0f, f);
}

// A float32 forward convolution summed in reverse order reproduces the float64
// reference bit for bit on exactly filled data.
std::vector<float> NaiveForwardF32Reversed(const Problem& p, const ConvTensors<double>& t) {
  const TensorIndexer ix(p);
  std::vector<float> y(static_cast<size_t>(p.output_elements()));
  const int64_t Cg = p.c_per_group(), Kg = p.k_per_group();
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t k = 0; k < p.k; ++k)
      for (int64_t oh = 0; oh < p.out_h(); ++oh)
        for (int64_t ow = 0; ow < p.out_w(); ++ow) {
          float acc = 0;
          for (int64_t c = Cg - 1; c >= 0; --c)
            for (int64_t r = p.r - 1; r >= 0; --r)
              for (int64_t s = p.s - 1; s >= 0; --s) {
                const int64_t ih = oh * p.stride_h - p.pad_top + r * p.dilation_h;
                const int64_t iw = ow * p.stride_w - p.pad_left + s * p.dilation_w;
                if (ih < 0 || ih >= p.h || iw < 0 || iw >= p.w) continue;
                acc += static_cast<float>(t.input[ix.input(n, (k / Kg) * Cg + c, ih, iw)]) *
                       static_cast<float>(t.weight[ix.weight(k, c, r, s)]);
              }
          if (p.bias) acc += static_cast<float>(t.bias[k]);
          y[ix.output(n, k, oh, ow)] = acc;
        }
  return y;
}

TEST(FillExact, Float32ResultInAnotherOrderIsBitExact) {
  Problem p = Conv(2, 16, 24, 32, 3, DataType::kF32, Direction::kForward);
  p.bias = true;
  ConvTensors<double> t = ConvTensors<double>::Allocate(p);
  FillExact(p, 8, t);
  ConvTensors<double> ref = t;
  ReferenceConvolution(p, ref);
  const std::vector<float> got = NaiveForwardF32Reversed(p, t);
  const Comparison cmp =
      CompareFull(p, got, ref.output, DefaultTolerance(p, /*exact_filled=*/true));
  EXPECT_TRUE(cmp.passed()) << cmp.Summary();
  EXPECT_EQ(cmp.max_abs_error, 0.0);
  EXPECT_FALSE(cmp.mistrusted);
}

TEST(Poison, FillsWithQuietNaN) {
  std::vector<float> f(17, 1.0f);
  PoisonWithNaN(f);
  for (float v : f) {
    ASSERT_TRUE(std::isnan(v));
    EXPECT_NE(std::bit_cast<uint32_t>(v) & 0x00400000u, 0u);  // the quiet bit
  }
  std::vector<double> d(5, 1.0);
  PoisonWithNaN(d);
  for (double v : d) ASSERT_TRUE(std::isnan(v));
}

// ---------------------------------------------------------------------------------
// Comparison

// A forward problem with exact data, its reference, and a float copy of it.
struct Fixture {
  Problem p = [] {
    Problem q = Conv(2, 4, 6, 3, 3, DataType::kF32, Direction::kForward);
    return q;
  }();
  ConvTensors<double> inputs;
  std::vector<double> ref;
  std::vector<float> got;
  Fixture() {
    inputs = ConvTensors<double>::Allocate(p);
    FillExact(p, 17, inputs);
    ConvTensors<double> t = inputs;
    ReferenceConvolution(p, t);
    ref = t.output;
    got = ToFloat(ref);
  }
};

struct CorruptionCase {
  std::string name;
  int64_t offset;  // element changed
  float value;     // new value; NaN means poison, see `add`
  bool add;        // true: got[offset] += value; false: got[offset] = value
  int64_t want_mismatches, want_non_finite;
};

class CorruptionTest : public testing::TestWithParam<CorruptionCase> {};

TEST_P(CorruptionTest, IsCountedAndLocated) {
  const CorruptionCase& cc = GetParam();
  Fixture fx;
  if (cc.add) {
    fx.got[cc.offset] += cc.value;
  } else {
    fx.got[cc.offset] = cc.value;
  }
  const Comparison cmp = CompareFull(fx.p, fx.got, fx.ref, 0.0);
  EXPECT_EQ(cmp.checked, static_cast<int64_t>(fx.ref.size()));
  EXPECT_EQ(cmp.mismatches, cc.want_mismatches);
  EXPECT_EQ(cmp.non_finite, cc.want_non_finite);
  EXPECT_FALSE(cmp.passed());
  EXPECT_EQ(cmp.worst_offset, cc.offset);
  EXPECT_EQ(cmp.worst_location, ResultView(fx.p).Describe(cc.offset));
  EXPECT_EQ(cmp.worst_reference, fx.ref[cc.offset]);
  EXPECT_FALSE(cmp.mistrusted);
  EXPECT_NE(cmp.Summary().find(cmp.worst_location), std::string::npos) << cmp.Summary();
}

INSTANTIATE_TEST_SUITE_P(
    Compare, CorruptionTest,
    testing::Values(
        CorruptionCase{"OffByOne", 17, 1.0f, true, 1, 0},
        CorruptionCase{"OffByOneLastElement", 2 * 3 * 6 * 6 - 1, -1.0f, true, 1, 0},
        CorruptionCase{"Zeroed", 40, 0.0f, false, 1, 0},
        CorruptionCase{"QuietNaN", 5, std::numeric_limits<float>::quiet_NaN(), false, 0, 1},
        CorruptionCase{"PositiveInf", 100, std::numeric_limits<float>::infinity(), false, 0, 1},
        CorruptionCase{"NegativeInf", 0, -std::numeric_limits<float>::infinity(), false, 0, 1}),
    [](const testing::TestParamInfo<CorruptionCase>& info) { return info.param.name; });

TEST(Compare, ExactResultPasses) {
  Fixture fx;
  const Comparison cmp = CompareFull(fx.p, fx.got, fx.ref, DefaultTolerance(fx.p, true));
  EXPECT_TRUE(cmp.passed());
  EXPECT_EQ(cmp.mismatches, 0);
  EXPECT_EQ(cmp.non_finite, 0);
  EXPECT_EQ(cmp.worst_offset, -1);
  EXPECT_EQ(cmp.max_abs_error, 0.0);
  EXPECT_FALSE(cmp.mistrusted);
  EXPECT_GT(cmp.reference_nonzero, cmp.checked * 9 / 10);
}

TEST(Compare, SingleWrongElementReportsItsOffsetAndSize) {
  Fixture fx;
  fx.got[33] += 3.0f;
  const Comparison cmp = CompareFull(fx.p, fx.got, fx.ref, 0.0);
  EXPECT_EQ(cmp.mismatches, 1);
  EXPECT_EQ(cmp.worst_offset, 33);
  EXPECT_EQ(cmp.max_abs_error, 3.0);
  EXPECT_DOUBLE_EQ(cmp.max_rel_error, 3.0 / cmp.scale);
  EXPECT_EQ(cmp.worst_result, fx.ref[33] + 3.0);
  EXPECT_NE(cmp.Summary().find("1 mismatch,"), std::string::npos) << cmp.Summary();
}

TEST(Compare, UnwrittenPoisonedOutputIsAllNonFinite) {
  Fixture fx;
  PoisonWithNaN(fx.got);
  const Comparison cmp = CompareFull(fx.p, fx.got, fx.ref, 0.0);
  EXPECT_EQ(cmp.non_finite, static_cast<int64_t>(fx.got.size()));
  EXPECT_EQ(cmp.worst_offset, 0);
  EXPECT_FALSE(cmp.passed());
}

TEST(Compare, AllZeroReferenceIsMistrusted) {
  Fixture fx;
  std::fill(fx.ref.begin(), fx.ref.end(), 0.0);
  std::fill(fx.got.begin(), fx.got.end(), 0.0f);
  const Comparison cmp = CompareFull(fx.p, fx.got, fx.ref, 0.0);
  EXPECT_TRUE(cmp.passed());
  EXPECT_TRUE(cmp.mistrusted);
  EXPECT_EQ(cmp.reference_nonzero, 0);
  EXPECT_NE(cmp.Summary().find("mistrusted"), std::string::npos) << cmp.Summary();
}

TEST(Compare, MistrustThresholdFollowsTheNonzeroFraction) {
  Fixture fx;  // forward: trusted from 30% nonzero
  const size_t n = fx.ref.size();
  auto zero_first = [&](size_t count) {
    std::vector<double> r = fx.ref;
    for (size_t i = 0; i < count; ++i) r[i] = 0.0;
    return r;
  };
  ASSERT_TRUE(std::none_of(fx.ref.begin(), fx.ref.end(), [](double v) { return v == 0; }));
  const std::vector<double> mostly_zero = zero_first(n - n / 4);      // 25% nonzero
  const std::vector<double> enough = zero_first(n - (n * 35) / 100);  // 35% nonzero
  EXPECT_TRUE(CompareFull(fx.p, ToFloat(mostly_zero), mostly_zero, 0.0).mistrusted);
  EXPECT_FALSE(CompareFull(fx.p, ToFloat(enough), enough, 0.0).mistrusted);
}

TEST(Compare, TrustLevelsFollowBenchdnn) {
  Problem p = Conv(1, 4, 8, 4, 3, DataType::kF32, Direction::kForward);
  EXPECT_DOUBLE_EQ(TrustNonzeroLevel(p), 0.3);
  p.direction = Direction::kBackwardData;
  p.stride_h = 2;
  p.stride_w = 3;
  EXPECT_DOUBLE_EQ(TrustNonzeroLevel(p), 0.05);
  p = Conv(1, 4, 2, 4, 3, DataType::kF32, Direction::kBackwardWeights);
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 0;
  p.r = p.s = 2;  // 4 taps over a 1x1 output: min(4, 4, 1) / 4
  ASSERT_TRUE(Validate(p).ok());
  EXPECT_DOUBLE_EQ(TrustNonzeroLevel(p), 0.3 / 4);
}

TEST(Compare, ToleranceSeparatesRoundingFromErrors) {
  Fixture fx;
  const double scale = *std::max_element(
      fx.ref.begin(), fx.ref.end(), [](double a, double b) { return std::fabs(a) < std::fabs(b); });
  std::vector<double> ref = fx.ref;
  ref[10] += std::fabs(scale) * 1e-6;  // a rounding-sized difference
  const Comparison strict = CompareFull(fx.p, fx.got, ref, 0.0);
  const Comparison loose = CompareFull(fx.p, fx.got, ref, 1e-5);
  EXPECT_EQ(strict.mismatches, 1);
  EXPECT_EQ(loose.mismatches, 0);
  EXPECT_EQ(loose.worst_offset, 10);  // still reported as the largest error
  fx.got[20] += 1000.0f;
  EXPECT_EQ(CompareFull(fx.p, fx.got, ref, 1e-5).mismatches, 1);
}

TEST(Compare, DefaultTolerances) {
  Problem p = Conv(1, 16, 8, 32, 3, DataType::kF32, Direction::kForward);
  EXPECT_EQ(DefaultTolerance(p, true), 0.0);
  const double f32 = DefaultTolerance(p, false);
  EXPECT_GT(f32, 0.0);
  EXPECT_LT(f32, 1e-4);
  p.dtype = DataType::kF16;
  const double f16 = DefaultTolerance(p, false);
  p.dtype = DataType::kBF16;
  const double bf16 = DefaultTolerance(p, false);
  EXPECT_GT(f16, f32);
  EXPECT_GT(bf16, f16);
  EXPECT_LT(bf16, 0.05);
  EXPECT_EQ(DefaultTolerance(p, true), 0.0);
}

// Random real data computed in float32: rounding differences pass the inexact default
// tolerance; they would fail a zero tolerance.
TEST(Compare, Float32RoundingPassesInexactTolerance) {
  Problem p = Conv(1, 32, 12, 8, 3, DataType::kF32, Direction::kForward);
  ConvTensors<double> t = ConvTensors<double>::Allocate(p);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (double& v : t.input) v = u(rng);  // float values, exactly held by the double
  for (double& v : t.weight) v = u(rng);
  ConvTensors<double> ref = t;
  ReferenceConvolution(p, ref);
  const std::vector<float> got = NaiveForwardF32Reversed(p, t);
  const Comparison exact = CompareFull(p, got, ref.output, 0.0);
  const Comparison tolerant = CompareFull(p, got, ref.output, DefaultTolerance(p, false));
  EXPECT_GT(exact.mismatches, 0);
  EXPECT_TRUE(tolerant.passed()) << tolerant.Summary();
  EXPECT_GT(tolerant.max_abs_error, 0.0);
}

TEST(CompareSampled, CatchesErrorsAtSampledPointsOnly) {
  Fixture fx;
  const std::vector<int64_t> pts = ChooseSamplePoints(fx.p, 20, 1);
  const std::vector<double> values = ReferenceValuesAt(fx.p, fx.inputs, pts);
  // An error at a corner (always sampled) is caught.
  const int64_t corner = ResultView(fx.p).Offset({1, 2, 5, 5});
  ASSERT_TRUE(std::binary_search(pts.begin(), pts.end(), corner));
  std::vector<float> bad = fx.got;
  bad[corner] += 2.0f;
  const Comparison cmp = CompareSampled(fx.p, bad, pts, values, 0.0);
  EXPECT_EQ(cmp.checked, static_cast<int64_t>(pts.size()));
  EXPECT_EQ(cmp.mismatches, 1);
  EXPECT_EQ(cmp.worst_offset, corner);
  // An error at an element that is not sampled is not seen by a sampled comparison.
  int64_t unsampled = 0;
  while (std::binary_search(pts.begin(), pts.end(), unsampled)) ++unsampled;
  std::vector<float> hidden = fx.got;
  hidden[unsampled] += 2.0f;
  EXPECT_TRUE(CompareSampled(fx.p, hidden, pts, values, 0.0).passed());
  EXPECT_FALSE(CompareFull(fx.p, hidden, fx.ref, 0.0).passed());
}

TEST(CompareSampled, ReferenceAtAndFullReferenceGiveTheSameVerdict) {
  for (Direction d : {Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights}) {
    Problem p = Conv(2, 6, 9, 4, 3, DataType::kF32, d);
    p.groups = 2;
    p.stride_w = 2;
    ConvTensors<double> t = ConvTensors<double>::Allocate(p);
    FillExact(p, 4, t);
    ConvTensors<double> full = t;
    ReferenceConvolution(p, full);
    const std::vector<double>& ref = ResultTensor(p, full);
    std::vector<float> got = ToFloat(ref);
    const std::vector<int64_t> pts = ChooseSamplePoints(p, 30, 9);
    got[pts[pts.size() / 2]] = -7.5f;
    std::vector<double> gathered;
    for (int64_t off : pts) gathered.push_back(ref[off]);
    const Comparison a = CompareSampledWithReference(p, got, t, pts, 0.0);
    const Comparison b = CompareSampled(p, got, pts, gathered, 0.0);
    EXPECT_EQ(a.mismatches, 1) << DirectionName(d);
    EXPECT_EQ(a.Summary(), b.Summary());
    EXPECT_EQ(a.worst_offset, pts[pts.size() / 2]);
  }
}

// Misuse is reported in the Comparison and can never read as a pass.
void ExpectMisuse(const Comparison& cmp, const std::string& error) {
  EXPECT_EQ(cmp.error, error);
  EXPECT_FALSE(cmp.passed());
  EXPECT_TRUE(cmp.mistrusted);
  EXPECT_EQ(cmp.checked, 0);
  EXPECT_EQ(cmp.Summary(), "not compared: " + error);
}

TEST(CompareMisuse, SizesAndOffsetsAreChecked) {
  Fixture fx;
  std::vector<float> short_result(fx.got.begin(), fx.got.end() - 1);
  ExpectMisuse(CompareFull(fx.p, short_result, fx.ref, 0.0),
               "result has 215 elements; the y tensor of this problem has 216");
  std::vector<double> long_reference = fx.ref;
  long_reference.push_back(0);
  ExpectMisuse(CompareFull(fx.p, fx.got, long_reference, 0.0),
               "reference has 217 elements; the y tensor of this problem has 216");

  const std::vector<int64_t> offsets = {0, 1, 2};
  const std::vector<double> two = {1, 2};
  ExpectMisuse(CompareSampled(fx.p, fx.got, offsets, two, 0.0),
               "3 sample offsets but 2 reference values; they must pair up");

  const std::vector<int64_t> out_of_range = {0, 216};
  const std::vector<double> vals = {1, 2};
  ExpectMisuse(CompareSampled(fx.p, fx.got, out_of_range, vals, 0.0),
               "sample offset #1 = 216 is out of range; allowed 0..215");
  const std::vector<int64_t> negative = {-1};
  ExpectMisuse(CompareSampledWithReference(fx.p, fx.got, fx.inputs, negative, 0.0),
               "sample offset #0 = -1 is out of range; allowed 0..215");

  ConvTensors<double> unsized;
  ExpectMisuse(CompareSampledWithReference(fx.p, fx.got, unsized, offsets, 0.0),
               "the float64 input tensors are not sized for this problem (allocate them with "
               "ConvTensors<double>::Allocate)");
}

// The brief's seed problems in every direction: an exact result passes with tolerance
// 0 and is trusted.
TEST(CompareSeed, ExactResultsOfSeedProblemsPassAndAreTrusted) {
  for (int64_t size : {32, 48, 64}) {
    for (Direction d :
         {Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights}) {
      const Problem p = Conv(1, 16, size, 32, 3, DataType::kF32, d);
      ConvTensors<double> t = ConvTensors<double>::Allocate(p);
      FillExact(p, 2024, t);
      ConvTensors<double> full = t;
      ReferenceConvolution(p, full);
      const std::vector<double>& ref = ResultTensor(p, full);
      const Comparison cmp = CompareFull(p, ToFloat(ref), ref, DefaultTolerance(p, true));
      EXPECT_TRUE(cmp.passed()) << size << " " << DirectionName(d);
      EXPECT_FALSE(cmp.mistrusted) << size << " " << DirectionName(d) << ": " << cmp.Summary();
    }
  }
}

}  // namespace
}  // namespace convguard
