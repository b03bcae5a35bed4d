// Tests of the float64 reference convolution (reference.h): hand-worked cases for every
// direction and feature, layout independence, the adjoint identities that tie the three
// directions together, agreement of the two loop nests and of ReferenceAt with the full
// reference, and the sample-point chooser.
#include "convguard/reference.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "convguard/fill.h"
#include "convguard/problem.h"
#include "convguard/tensor.h"

namespace convguard {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Copies every tensor of `t` (laid out for `from`) into the layout of `to`; the two
// problems differ only in layout.
ConvTensors<double> Relayout(const Problem& from, const Problem& to, const ConvTensors<double>& t) {
  ConvTensors<double> out = ConvTensors<double>::Allocate(to);
  const TensorIndexer a(from), b(to);
  for (int64_t n = 0; n < from.n; ++n)
    for (int64_t c = 0; c < from.c; ++c)
      for (int64_t h = 0; h < from.h; ++h)
        for (int64_t w = 0; w < from.w; ++w)
          out.input[b.input(n, c, h, w)] = t.input[a.input(n, c, h, w)];
  for (int64_t k = 0; k < from.k; ++k)
    for (int64_t c = 0; c < from.c_per_group(); ++c)
      for (int64_t r = 0; r < from.r; ++r)
        for (int64_t s = 0; s < from.s; ++s)
          out.weight[b.weight(k, c, r, s)] = t.weight[a.weight(k, c, r, s)];
  for (int64_t n = 0; n < from.n; ++n)
    for (int64_t k = 0; k < from.k; ++k)
      for (int64_t oh = 0; oh < from.out_h(); ++oh)
        for (int64_t ow = 0; ow < from.out_w(); ++ow)
          out.output[b.output(n, k, oh, ow)] = t.output[a.output(n, k, oh, ow)];
  out.bias = t.bias;
  return out;
}

// The result tensor of `t` in logical order (the order of ResultView's dims).
std::vector<double> ResultLogical(const Problem& p, const ConvTensors<double>& t) {
  const ResultView view(p);
  const auto& d = view.dims();
  const std::vector<double>& res = ResultTensor(p, t);
  std::vector<double> out;
  for (int64_t a = 0; a < d[0]; ++a)
    for (int64_t b = 0; b < d[1]; ++b)
      for (int64_t h = 0; h < d[2]; ++h)
        for (int64_t w = 0; w < d[3]; ++w) out.push_back(res[view.Offset({a, b, h, w})]);
  return out;
}

Problem WithLayout(Problem p, Layout l) {
  p.layout = l;
  return p;
}
Problem WithDirection(Problem p, Direction d) {
  p.direction = d;
  return p;
}

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// ---------------------------------------------------------------------------------
// Hand-worked cases. Tensors are written in logical NCHW order: x[n][c][h][w],
// w[k][c/g][r][s], y (or dy)[n][k][oh][ow]. The tensor the direction computes holds the
// expected values, worked out by hand in the comments.
struct HandCase {
  std::string name;
  Problem p;
  std::vector<double> x, w, b, y;
};

const Problem kBase3x3 = {.n = 1, .c = 1, .h = 3, .w = 3, .k = 1, .r = 2, .s = 2};
const Problem kBase5x5 = {.n = 1, .c = 1, .h = 5, .w = 5, .k = 1, .r = 2, .s = 2};
const std::vector<double> k1to9 = {1, 2, 3, 4, 5, 6, 7, 8, 9};
// x[i][j] = 5i + j + 1
const std::vector<double> k1to25 = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13,
                                    14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25};
const std::vector<double> kW1234 = {1, 2, 3, 4};  // w[0][0]=1 w[0][1]=2 w[1][0]=3 w[1][1]=4

Problem Fwd(Problem p) { return WithDirection(p, Direction::kForward); }
Problem Bwd(Problem p) { return WithDirection(p, Direction::kBackwardData); }
Problem Bww(Problem p) { return WithDirection(p, Direction::kBackwardWeights); }

std::vector<HandCase> HandCases() {
  std::vector<HandCase> cases;
  // ---- forward ----
  // y[oh][ow] = sum_rs w[r][s] x[oh+r][ow+s]:
  //   y00 = 1*1+2*2+3*4+4*5 = 37, y01 = 2+6+15+24 = 47, y10 = 4+10+21+32 = 67,
  //   y11 = 5+12+24+36 = 77.
  cases.push_back({"FwdBasic2x2", Fwd(kBase3x3), k1to9, kW1234, {}, {37, 47, 67, 77}});
  {
    // Pads top 1, right 1: the padded input is 4x4, output 3x3.
    //   row -1: 0 0 0 0 | row 0: 1 2 3 0 | row 1: 4 5 6 0 | row 2: 7 8 9 0
    //   y00 = 3*1+4*2 = 11, y01 = 3*2+4*3 = 18, y02 = 3*3 = 9,
    //   y10 = 37, y11 = 47, y12 = 1*3+3*6 = 21, y20 = 67, y21 = 77, y22 = 1*6+3*9 = 33.
    Problem p = Fwd(kBase3x3);
    p.pad_top = 1;
    p.pad_right = 1;
    cases.push_back(
        {"FwdAsymmetricPad", p, k1to9, kW1234, {}, {11, 18, 9, 37, 47, 21, 67, 77, 33}});
  }
  {
    // Stride 2 on 5x5, output 2x2: y = sum_rs w (5(2oh+r) + 2ow+s + 1)
    //   = 10 (10 oh + 2 ow + 1) + (0*1 + 1*2 + 5*3 + 6*4) = 10 (10 oh + 2 ow + 1) + 41.
    Problem p = Fwd(kBase5x5);
    p.stride_h = p.stride_w = 2;
    cases.push_back({"FwdStride2", p, k1to25, kW1234, {}, {51, 71, 151, 171}});
  }
  {
    // Dilation 2 on 5x5, output 3x3: y = sum_rs w (5(oh+2r) + ow+2s + 1)
    //   = 10 (5 oh + ow + 1) + (0 + 2*2 + 3*10 + 4*12) = 10 (5 oh + ow + 1) + 82.
    //   e.g. y00 = x00*1 + x02*2 + x20*3 + x22*4 = 1 + 6 + 33 + 52 = 92.
    Problem p = Fwd(kBase5x5);
    p.dilation_h = p.dilation_w = 2;
    cases.push_back(
        {"FwdDilation2", p, k1to25, kW1234, {}, {92, 102, 112, 142, 152, 162, 192, 202, 212}});
  }
  {
    // Groups 2, 1x1: c = 4, k = 2; filter 0 sees channels 0,1, filter 1 channels 2,3.
    //   w[0] = (1, 10), w[1] = (100, 1000); x = (1, 2, 3, 4)
    //   y0 = 1*1 + 10*2 = 21, y1 = 100*3 + 1000*4 = 4300.
    Problem p = {.n = 1, .c = 4, .h = 1, .w = 1, .k = 2, .r = 1, .s = 1, .groups = 2};
    cases.push_back({"FwdGroups2", p, {1, 2, 3, 4}, {1, 10, 100, 1000}, {}, {21, 4300}});
  }
  {
    // Bias, two filters: filter 0 as FwdBasic2x2 plus 5; filter 1 picks x[oh+1][ow+1]
    // minus 1: (5, 6, 8, 9) - 1.
    Problem p = Fwd(kBase3x3);
    p.k = 2;
    p.bias = true;
    cases.push_back(
        {"FwdBias", p, k1to9, {1, 2, 3, 4, 0, 0, 0, 1}, {5, -1}, {42, 52, 72, 82, 4, 5, 7, 8}});
  }
  {
    // Two channels in, two out, 1x1, 2x2 planes (layouts differ here):
    //   x ch0 = (1 2 3 4), ch1 = (5 6 7 8); w = [[1, 10], [100, 1000]]
    //   y0 = ch0 + 10 ch1 = (51 62 73 84); y1 = 100 ch0 + 1000 ch1 = (5100 6200 7300 8400)
    Problem p = {.n = 1, .c = 2, .h = 2, .w = 2, .k = 2, .r = 1, .s = 1};
    cases.push_back({"FwdChannelMix",
                     p,
                     {1, 2, 3, 4, 5, 6, 7, 8},
                     {1, 10, 100, 1000},
                     {},
                     {51, 62, 73, 84, 5100, 6200, 7300, 8400}});
  }
  {
    // Two channels, 2x2 kernel over a 2x2 plane, one output:
    //   y = (1*1+2*2+3*3+4*4) + (5*10+6*20+7*30+8*40) = 30 + 700 = 730.
    Problem p = {.n = 1, .c = 2, .h = 2, .w = 2, .k = 1, .r = 2, .s = 2};
    cases.push_back({"FwdChannelsAndTaps",
                     p,
                     {1, 2, 3, 4, 5, 6, 7, 8},
                     {1, 2, 3, 4, 10, 20, 30, 40},
                     {},
                     {730}});
  }
  {
    // Batch 2: the second image is the first times 10, so is its output.
    Problem p = Fwd(kBase3x3);
    p.n = 2;
    std::vector<double> x = k1to9;
    for (double v : k1to9) x.push_back(10 * v);
    cases.push_back({"FwdBatch2", p, x, kW1234, {}, {37, 47, 67, 77, 370, 470, 670, 770}});
  }

  // ---- backward-data: dx[ih][iw] = sum over (oh, r), (ow, s) reaching (ih, iw) ----
  // dy = (1 2; 3 4), w = (1 2; 3 4), no pad:
  //   dx00 = w00 dy00 = 1; dx01 = w00 dy01 + w01 dy00 = 4; dx02 = w01 dy01 = 4;
  //   dx10 = w00 dy10 + w10 dy00 = 6; dx11 = 4 + 6 + 6 + 4 = 20; dx12 = w01 dy11 + w11 dy01 = 16;
  //   dx20 = w10 dy10 = 9; dx21 = w10 dy11 + w11 dy10 = 24; dx22 = w11 dy11 = 16.
  // (Adjoint check: <dx, 1..9> = 640 = <FwdBasic2x2 y, dy>.)
  cases.push_back({"BwdDataBasic2x2", Bwd(kBase3x3), {}, kW1234, {}, {1, 2, 3, 4}});
  cases.back().x = {1, 4, 4, 6, 20, 16, 9, 24, 16};
  {
    // 1x1 kernel, stride 2 on 3x3: only even (ih, iw) are reached; w = 2.
    //   dx = (2 0 4; 0 0 0; 6 0 8)
    Problem p = Bwd(kBase3x3);
    p.r = p.s = 1;
    p.stride_h = p.stride_w = 2;
    cases.push_back({"BwdDataStride2Gaps", p, {2, 0, 4, 0, 0, 0, 6, 0, 8}, {2}, {}, {1, 2, 3, 4}});
  }
  {
    // 2x2 kernel, stride 2 on 4x4: each input point is reached once,
    //   dx[ih][iw] = w[ih%2][iw%2] dy[ih/2][iw/2].
    Problem p = Bwd(kBase3x3);
    p.h = p.w = 4;
    p.stride_h = p.stride_w = 2;
    cases.push_back({"BwdDataStride2Tiles",
                     p,
                     {1, 2, 2, 4, 3, 4, 6, 8, 3, 6, 4, 8, 9, 12, 12, 16},
                     kW1234,
                     {},
                     {1, 2, 3, 4}});
  }
  {
    // Dilation 2, pads top 1 and right 1 on 3x3: output 2x2; ih = oh - 1 + 2r, iw = ow + 2s.
    //   ih 0 <- (oh 1, r 0); ih 1 <- (oh 0, r 1); ih 2 <- (oh 1, r 1)
    //   iw 0 <- (ow 0, s 0); iw 1 <- (ow 1, s 0); iw 2 <- (ow 0, s 1)
    //   dx = (1*3 1*4 2*3; 3*1 3*2 4*1; 3*3 3*4 4*3) = (3 4 6; 3 6 4; 9 12 12)
    // (Adjoint check with x = ones: sum dx = 59 = <y_ones, dy> = 7*1 + 3*2 + 10*3 + 4*4.)
    Problem p = Bwd(kBase3x3);
    p.dilation_h = p.dilation_w = 2;
    p.pad_top = 1;
    p.pad_right = 1;
    cases.push_back(
        {"BwdDataDilationAsymPad", p, {3, 4, 6, 3, 6, 4, 9, 12, 12}, kW1234, {}, {1, 2, 3, 4}});
  }
  {
    // Groups 2, 1x1: dx ch0,1 come from dy0 with w[0] = (1, 10); ch2,3 from dy1 = 2 with
    // w[1] = (100, 1000): dx = (1, 10, 200, 2000).
    Problem p = {.n = 1,
                 .c = 4,
                 .h = 1,
                 .w = 1,
                 .k = 2,
                 .r = 1,
                 .s = 1,
                 .groups = 2,
                 .direction = Direction::kBackwardData};
    cases.push_back({"BwdDataGroups2", p, {1, 10, 200, 2000}, {1, 10, 100, 1000}, {}, {1, 2}});
  }
  {
    // Two output channels summed into one input channel, 1x1: w = (2, 3),
    //   dy0 = (1 2 3 4), dy1 = (10 20 30 40): dx = 2 dy0 + 3 dy1 = (32 64 96 128).
    Problem p = {.n = 1,
                 .c = 1,
                 .h = 2,
                 .w = 2,
                 .k = 2,
                 .r = 1,
                 .s = 1,
                 .direction = Direction::kBackwardData};
    cases.push_back({"BwdDataSumsOutputChannels",
                     p,
                     {32, 64, 96, 128},
                     {2, 3},
                     {},
                     {1, 2, 3, 4, 10, 20, 30, 40}});
  }

  // ---- backward-weights: dw[r][s] = sum_{oh, ow} x[ih][iw] dy[oh][ow] ----
  // x = 1..9, dy = (1 2; 3 4): the same sums as FwdBasic2x2: (37 47; 67 77).
  cases.push_back({"BwdWeightsBasic2x2", Bww(kBase3x3), k1to9, {37, 47, 67, 77}, {}, {1, 2, 3, 4}});
  {
    // Stride 2, pad 1 all round on 3x3: output 2x2; ih = 2 oh - 1 + r, iw = 2 ow - 1 + s.
    //   dw00 = dy11 x11 = 20; dw01 = dy10 x10 + dy11 x12 = 12 + 24 = 36;
    //   dw10 = dy01 x01 + dy11 x21 = 4 + 32 = 36;
    //   dw11 = dy00 x00 + dy01 x02 + dy10 x20 + dy11 x22 = 1 + 6 + 21 + 36 = 64.
    Problem p = Bww(kBase3x3);
    p.stride_h = p.stride_w = 2;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
    cases.push_back({"BwdWeightsStride2Pad1", p, k1to9, {20, 36, 36, 64}, {}, {1, 2, 3, 4}});
  }
  {
    // Dilation 2 on 5x5 with dy = ones(3x3): dw[r][s] sums the 3x3 block of x at
    // (2r, 2s) = 9 (5 (2r+1) + (2s+1) + 1): (63 81; 153 171).
    Problem p = Bww(kBase5x5);
    p.dilation_h = p.dilation_w = 2;
    cases.push_back(
        {"BwdWeightsDilation2", p, k1to25, {63, 81, 153, 171}, {}, std::vector<double>(9, 1.0)});
  }
  {
    // Batch 2, groups 2, 1x1: x[n0] = (1, 2), x[n1] = (3, 4); dy[n0] = (10, 20),
    // dy[n1] = (100, 200). dw[0] = 1*10 + 3*100 = 310; dw[1] = 2*20 + 4*200 = 840.
    Problem p = {.n = 2,
                 .c = 2,
                 .h = 1,
                 .w = 1,
                 .k = 2,
                 .r = 1,
                 .s = 1,
                 .groups = 2,
                 .direction = Direction::kBackwardWeights};
    cases.push_back({"BwdWeightsBatchGroups", p, {1, 2, 3, 4}, {310, 840}, {}, {10, 20, 100, 200}});
  }
  {
    // Two channels, 1x1 on 2x2 planes: dw[k][c] = <x_c, dy_k>.
    //   x0 = (1 2 3 4), x1 = (5 6 7 8); dy0 = (1 0 0 1), dy1 = (0 1 1 0)
    //   dw = [[1+4, 5+8], [2+3, 6+7]] = [[5, 13], [5, 13]]
    Problem p = {.n = 1,
                 .c = 2,
                 .h = 2,
                 .w = 2,
                 .k = 2,
                 .r = 1,
                 .s = 1,
                 .direction = Direction::kBackwardWeights};
    cases.push_back({"BwdWeightsChannelMix",
                     p,
                     {1, 2, 3, 4, 5, 6, 7, 8},
                     {5, 13, 5, 13},
                     {},
                     {1, 0, 0, 1, 0, 1, 1, 0}});
  }
  return cases;
}

class HandCaseTest : public testing::TestWithParam<HandCase> {};

// Builds the NCHW tensors of a case with the result tensor poisoned, and the expected
// result in logical order.
ConvTensors<double> CaseTensors(const HandCase& hc, std::vector<double>* expected) {
  const Problem& p = hc.p;
  ConvTensors<double> t = ConvTensors<double>::Allocate(p);
  auto take = [](std::vector<double>& dst, const std::vector<double>& src) {
    if (!src.empty()) dst = src;
  };
  take(t.input, hc.x);
  take(t.weight, hc.w);
  take(t.output, hc.y);
  take(t.bias, hc.b);
  std::vector<double>& res = ResultTensor(p, t);
  *expected = res;
  std::fill(res.begin(), res.end(), kNaN);
  return t;
}

TEST_P(HandCaseTest, NchwMatchesHandValues) {
  const HandCase& hc = GetParam();
  ASSERT_TRUE(Validate(hc.p).ok()) << Validate(hc.p).ToString();
  std::vector<double> expected;
  ConvTensors<double> t = CaseTensors(hc, &expected);
  ASSERT_EQ(t.input.size(), static_cast<size_t>(hc.p.input_elements()));
  ASSERT_EQ(t.weight.size(), static_cast<size_t>(hc.p.weight_elements()));
  ASSERT_EQ(t.output.size(), static_cast<size_t>(hc.p.output_elements()));
  for (ReferenceLoops loops : {ReferenceLoops::kSpatialInner, ReferenceLoops::kChannelInner}) {
    ConvTensors<double> u = t;
    ReferenceConvolution(hc.p, u, loops);
    EXPECT_EQ(ResultLogical(hc.p, u), expected) << "loops " << static_cast<int>(loops);
  }
}

TEST_P(HandCaseTest, NhwcMatchesHandValuesAfterRelayout) {
  const HandCase& hc = GetParam();
  std::vector<double> expected;
  const ConvTensors<double> t = CaseTensors(hc, &expected);
  const Problem nhwc = WithLayout(hc.p, Layout::kNHWC);
  for (ReferenceLoops loops : {ReferenceLoops::kSpatialInner, ReferenceLoops::kChannelInner}) {
    ConvTensors<double> u = Relayout(hc.p, nhwc, t);
    ReferenceConvolution(nhwc, u, loops);
    EXPECT_EQ(ResultLogical(nhwc, u), expected) << "loops " << static_cast<int>(loops);
  }
}

TEST_P(HandCaseTest, ReferenceAtMatchesHandValues) {
  const HandCase& hc = GetParam();
  for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
    std::vector<double> expected;
    const ConvTensors<double> t0 = CaseTensors(hc, &expected);
    const Problem p = WithLayout(hc.p, layout);
    const ConvTensors<double> t = Relayout(hc.p, p, t0);
    const ResultView view(p);
    std::vector<double> got;
    const auto& d = view.dims();
    for (int64_t a = 0; a < d[0]; ++a)
      for (int64_t b = 0; b < d[1]; ++b)
        for (int64_t h = 0; h < d[2]; ++h)
          for (int64_t w = 0; w < d[3]; ++w)
            got.push_back(ReferenceAt(p, t, view.Offset({a, b, h, w})));
    EXPECT_EQ(got, expected) << LayoutName(layout);
  }
}

INSTANTIATE_TEST_SUITE_P(Hand, HandCaseTest, testing::ValuesIn(HandCases()),
                         [](const testing::TestParamInfo<HandCase>& info) {
                           return info.param.name;
                         });

// ---------------------------------------------------------------------------------
// Random problems with integer data.

Problem RandomProblem(std::mt19937_64& rng) {
  auto pick = [&](int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
  };
  for (;;) {
    Problem p;
    p.groups = pick(1, 3);
    p.c = p.groups * pick(1, 3);
    p.k = p.groups * pick(1, 3);
    p.n = pick(1, 3);
    p.h = pick(1, 9);
    p.w = pick(1, 9);
    p.r = pick(1, 4);
    p.s = pick(1, 4);
    p.pad_top = pick(0, 3);
    p.pad_left = pick(0, 3);
    p.pad_bottom = pick(0, 3);
    p.pad_right = pick(0, 3);
    p.stride_h = pick(1, 3);
    p.stride_w = pick(1, 3);
    p.dilation_h = pick(1, 3);
    p.dilation_w = pick(1, 3);
    p.layout = pick(0, 1) == 0 ? Layout::kNCHW : Layout::kNHWC;
    if (Validate(p).ok()) return p;
  }
}

std::string Describe(const Problem& p) {
  return "n" + std::to_string(p.n) + " c" + std::to_string(p.c) + " h" + std::to_string(p.h) +
         " w" + std::to_string(p.w) + " k" + std::to_string(p.k) + " r" + std::to_string(p.r) +
         " s" + std::to_string(p.s) + " pad" + std::to_string(p.pad_top) + "," +
         std::to_string(p.pad_left) + "," + std::to_string(p.pad_bottom) + "," +
         std::to_string(p.pad_right) + " stride" + std::to_string(p.stride_h) + "," +
         std::to_string(p.stride_w) + " dil" + std::to_string(p.dilation_h) + "," +
         std::to_string(p.dilation_w) + " g" + std::to_string(p.groups) + " " +
         std::string(LayoutName(p.layout));
}

// x, w and dy, all integers: x and w from the forward fill, dy from the
// backward-weights fill (which fills x and dy).
ConvTensors<double> IntegerTensors(const Problem& p, uint64_t seed) {
  ConvTensors<double> t = ConvTensors<double>::Allocate(p);
  FillExact(WithDirection(p, Direction::kForward), seed, t);
  ConvTensors<double> u = ConvTensors<double>::Allocate(p);
  FillExact(WithDirection(p, Direction::kBackwardWeights), seed + 1, u);
  t.output = u.output;
  return t;
}

// <conv_fwd(x, w), dy> = <x, conv_bwd_data(dy, w)> = <w, conv_bwd_weights(x, dy)>,
// exactly, on integer data. A mistake in any one direction's index math breaks it.
TEST(ReferenceAdjoint, IdentitiesHoldExactlyOnRandomProblems) {
  std::mt19937_64 rng(20240611);
  int zero_products = 0;
  for (int iter = 0; iter < 200; ++iter) {
    const Problem p = RandomProblem(rng);
    SCOPED_TRACE("problem #" + std::to_string(iter) + ": " + Describe(p));
    const ConvTensors<double> t = IntegerTensors(p, 1000 + iter);

    ConvTensors<double> fwd = t;
    ReferenceConvolution(WithDirection(p, Direction::kForward), fwd);
    ConvTensors<double> bwd_data = t;
    ReferenceConvolution(WithDirection(p, Direction::kBackwardData), bwd_data);
    ConvTensors<double> bwd_weights = t;
    ReferenceConvolution(WithDirection(p, Direction::kBackwardWeights), bwd_weights);

    const double y_dy = Dot(fwd.output, t.output);
    const double x_dx = Dot(t.input, bwd_data.input);
    const double w_dw = Dot(t.weight, bwd_weights.weight);
    EXPECT_EQ(y_dy, x_dx);
    EXPECT_EQ(y_dy, w_dw);
    zero_products += y_dy == 0;
  }
  // Integer data rarely cancels to zero; a reference that wrote zeros everywhere would.
  EXPECT_LT(zero_products, 20);
}

// The same logical tensors give the same logical result in NCHW and NHWC, through
// both loop nests, for every direction.
TEST(ReferenceLayouts, NchwAndNhwcAgreeOnRandomProblems) {
  std::mt19937_64 rng(7);
  for (int iter = 0; iter < 120; ++iter) {
    const Problem base = WithLayout(RandomProblem(rng), Layout::kNCHW);
    for (Direction d :
         {Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights}) {
      Problem p = WithDirection(base, d);
      p.bias = d == Direction::kForward && iter % 2 == 0;
      SCOPED_TRACE(Describe(p) + " " + std::string(DirectionName(d)));
      ConvTensors<double> t = IntegerTensors(p, 77 + iter);
      if (p.bias) {
        t.bias.resize(static_cast<size_t>(p.k));
        for (int64_t k = 0; k < p.k; ++k) t.bias[k] = static_cast<double>(k - 2);
      }
      ConvTensors<double> nchw = t;
      ReferenceConvolution(p, nchw, ReferenceLoops::kSpatialInner);
      const std::vector<double> expected = ResultLogical(p, nchw);

      const Problem q = WithLayout(p, Layout::kNHWC);
      for (ReferenceLoops loops :
           {ReferenceLoops::kAuto, ReferenceLoops::kSpatialInner, ReferenceLoops::kChannelInner}) {
        ConvTensors<double> u = Relayout(p, q, t);
        ReferenceConvolution(q, u, loops);
        EXPECT_EQ(ResultLogical(q, u), expected) << "nhwc loops " << static_cast<int>(loops);
      }
      ConvTensors<double> v = t;
      ReferenceConvolution(p, v, ReferenceLoops::kChannelInner);
      EXPECT_EQ(ResultLogical(p, v), expected) << "nchw channel-inner";
    }
  }
}

// ReferenceAt equals the full reference at every element of small random problems.
TEST(ReferenceAt, EqualsFullReferenceEverywhereOnRandomProblems) {
  std::mt19937_64 rng(99);
  for (int iter = 0; iter < 60; ++iter) {
    const Problem base = RandomProblem(rng);
    for (Direction d :
         {Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights}) {
      Problem p = WithDirection(base, d);
      SCOPED_TRACE(Describe(p) + " " + std::string(DirectionName(d)));
      ConvTensors<double> t = ConvTensors<double>::Allocate(p);
      FillExact(p, 5 + iter, t);
      ConvTensors<double> full = t;
      ReferenceConvolution(p, full);
      const std::vector<double>& res = ResultTensor(p, full);
      int bad = 0;
      for (int64_t off = 0; off < static_cast<int64_t>(res.size()); ++off) {
        bad += ReferenceAt(p, t, off) != res[off];
      }
      EXPECT_EQ(bad, 0);
    }
  }
}

// ---------------------------------------------------------------------------------
// The seed problems of the design brief: 16->32 3x3 pad 1 at 32, 48, 64 and 3->16.

struct SeedCase {
  std::string name;
  Problem p;
};

std::vector<SeedCase> SeedCases() {
  std::vector<SeedCase> out;
  for (int64_t size : {32, 48, 64}) {
    for (Direction d :
         {Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights}) {
      Problem p = {.n = 1,
                   .c = 16,
                   .h = size,
                   .w = size,
                   .k = 32,
                   .r = 3,
                   .s = 3,
                   .pad_top = 1,
                   .pad_left = 1,
                   .pad_bottom = 1,
                   .pad_right = 1,
                   .direction = d};
      const std::string dn = d == Direction::kForward        ? "Fwd"
                             : d == Direction::kBackwardData ? "BwdData"
                                                             : "BwdWeights";
      out.push_back({"C16K32Size" + std::to_string(size) + dn, p});
    }
  }
  Problem rgb = {.n = 1,
                 .c = 3,
                 .h = 64,
                 .w = 64,
                 .k = 16,
                 .r = 3,
                 .s = 3,
                 .pad_top = 1,
                 .pad_left = 1,
                 .pad_bottom = 1,
                 .pad_right = 1,
                 .bias = true};
  out.push_back({"C3K16Size64FwdBias", rgb});
  rgb.layout = Layout::kNHWC;
  out.push_back({"C3K16Size64FwdBiasNhwc", rgb});
  return out;
}

class SeedProblemTest : public testing::TestWithParam<SeedCase> {};

TEST_P(SeedProblemTest, SampledPointsMatchFullAndFillIsExact) {
  const Problem& p = GetParam().p;
  ASSERT_TRUE(Validate(p).ok());
  ConvTensors<double> t = ConvTensors<double>::Allocate(p);
  const FillSummary fill = FillExact(p, 42, t);
  EXPECT_LE(fill.max_abs_result, fill.exact_limit);

  ConvTensors<double> full = t;
  ReferenceConvolution(p, full);
  const std::vector<double>& res = ResultTensor(p, full);
  double max_abs = 0;
  int64_t nonzero = 0;
  for (double v : res) {
    ASSERT_EQ(v, std::round(v));
    max_abs = std::max(max_abs, std::fabs(v));
    nonzero += v != 0;
  }
  EXPECT_LE(max_abs, fill.max_abs_result);
  EXPECT_GT(max_abs, 0);
  EXPECT_GT(nonzero, static_cast<int64_t>(res.size()) / 2);

  const std::vector<int64_t> points = ChooseSamplePoints(p, 500, 3);
  ASSERT_GE(points.size(), 16u);
  for (int64_t off : points) ASSERT_EQ(ReferenceAt(p, t, off), res[off]) << off;

  ConvTensors<double> other = t;
  ReferenceConvolution(
      p, other,
      p.layout == Layout::kNCHW ? ReferenceLoops::kChannelInner : ReferenceLoops::kSpatialInner);
  EXPECT_EQ(ResultTensor(p, other), res);
}

INSTANTIATE_TEST_SUITE_P(Seed, SeedProblemTest, testing::ValuesIn(SeedCases()),
                         [](const testing::TestParamInfo<SeedCase>& info) {
                           return info.param.name;
                         });

// ---------------------------------------------------------------------------------
// ResultView and the sample points.

TEST(ResultView, DimsRolesAndOffsetsRoundTrip) {
  const Problem base = {.n = 2,
                        .c = 6,
                        .h = 5,
                        .w = 7,
                        .k = 4,
                        .r = 3,
                        .s = 2,
                        .pad_top = 1,
                        .stride_w = 2,
                        .groups = 2};
  for (Layout l : {Layout::kNCHW, Layout::kNHWC}) {
    for (Direction d :
         {Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights}) {
      const Problem p = WithLayout(WithDirection(base, d), l);
      const ResultView view(p);
      const ResultView::Index want_dims =
          d == Direction::kForward        ? ResultView::Index{2, 4, p.out_h(), p.out_w()}
          : d == Direction::kBackwardData ? ResultView::Index{2, 6, 5, 7}
                                          : ResultView::Index{4, 3, 3, 2};
      EXPECT_EQ(view.dims(), want_dims);
      EXPECT_EQ(view.role(), ResultRole(d));
      EXPECT_EQ(view.elements(),
                static_cast<int64_t>(ResultTensor(p, ConvTensors<double>::Allocate(p)).size()));
      std::vector<char> seen(static_cast<size_t>(view.elements()), 0);
      const auto& dm = view.dims();
      for (int64_t a = 0; a < dm[0]; ++a)
        for (int64_t b = 0; b < dm[1]; ++b)
          for (int64_t h = 0; h < dm[2]; ++h)
            for (int64_t w = 0; w < dm[3]; ++w) {
              const int64_t off = view.Offset({a, b, h, w});
              ASSERT_GE(off, 0);
              ASSERT_LT(off, view.elements());
              EXPECT_EQ(seen[off]++, 0);
              EXPECT_EQ(view.IndexOf(off), (ResultView::Index{a, b, h, w}));
            }
    }
  }
}

TEST(ResultView, DescribeNamesTensorAndAxes) {
  Problem p = {.n = 2, .c = 4, .h = 5, .w = 5, .k = 8, .r = 3, .s = 3};
  EXPECT_EQ(ResultView(p).Describe(ResultView(p).Offset({1, 3, 2, 1})), "y[n=1,k=3,oh=2,ow=1]");
  p.direction = Direction::kBackwardData;
  p.layout = Layout::kNHWC;
  EXPECT_EQ(ResultView(p).Describe(ResultView(p).Offset({0, 2, 4, 1})), "dx[n=0,c=2,h=4,w=1]");
  p.direction = Direction::kBackwardWeights;
  EXPECT_EQ(ResultView(p).Describe(ResultView(p).Offset({7, 3, 0, 2})), "dw[k=7,c=3,r=0,s=2]");
}

struct SampleCase {
  std::string name;
  Problem p;
};

std::vector<SampleCase> SampleCases() {
  std::vector<SampleCase> out;
  out.push_back({"SeedFwd",
                 {.n = 1,
                  .c = 16,
                  .h = 64,
                  .w = 64,
                  .k = 32,
                  .r = 3,
                  .s = 3,
                  .pad_top = 1,
                  .pad_left = 1,
                  .pad_bottom = 1,
                  .pad_right = 1}});
  out.push_back({"GroupedNhwcBwdData",
                 {.n = 3,
                  .c = 12,
                  .h = 9,
                  .w = 11,
                  .k = 8,
                  .r = 3,
                  .s = 3,
                  .stride_h = 2,
                  .groups = 4,
                  .layout = Layout::kNHWC,
                  .direction = Direction::kBackwardData}});
  out.push_back({"DepthwiseBwdWeights",
                 {.n = 2,
                  .c = 16,
                  .h = 20,
                  .w = 20,
                  .k = 16,
                  .r = 5,
                  .s = 5,
                  .groups = 16,
                  .direction = Direction::kBackwardWeights}});
  out.push_back({"OnePixel", {.n = 1, .c = 1, .h = 1, .w = 1, .k = 1, .r = 1, .s = 1}});
  out.push_back(
      {"WideRowNhwc",
       {.n = 2, .c = 3, .h = 1, .w = 60, .k = 5, .r = 1, .s = 3, .layout = Layout::kNHWC}});
  return out;
}

class SamplePointsTest : public testing::TestWithParam<SampleCase> {};

TEST_P(SamplePointsTest, SortedUniqueInRangeWithCornersAndGroupEdges) {
  const Problem& p = GetParam().p;
  ASSERT_TRUE(Validate(p).ok());
  const ResultView view(p);
  const auto& d = view.dims();
  const std::vector<int64_t> pts = ChooseSamplePoints(p, 200, 11);
  ASSERT_FALSE(pts.empty());
  EXPECT_TRUE(std::is_sorted(pts.begin(), pts.end()));
  EXPECT_EQ(std::adjacent_find(pts.begin(), pts.end()), pts.end());
  EXPECT_GE(pts.front(), 0);
  EXPECT_LT(pts.back(), view.elements());
  const std::set<int64_t> set(pts.begin(), pts.end());
  for (int64_t a : {int64_t{0}, d[0] - 1})
    for (int64_t b : {int64_t{0}, d[1] - 1})
      for (int64_t h : {int64_t{0}, d[2] - 1})
        for (int64_t w : {int64_t{0}, d[3] - 1})
          EXPECT_TRUE(set.count(view.Offset({a, b, h, w})))
              << a << "," << b << "," << h << "," << w;
  // First and last channel of every group (this problem has at most 64 groups), at a
  // plane corner.
  const int64_t groups = d[view.group_axis()] / view.per_group();
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t ch : {g * view.per_group(), (g + 1) * view.per_group() - 1}) {
      ResultView::Index i = {0, 0, 0, 0};
      i[view.group_axis()] = ch;
      EXPECT_TRUE(set.count(view.Offset(i))) << "group " << g << " channel " << ch;
    }
  }
  // Deterministic per seed.
  EXPECT_EQ(ChooseSamplePoints(p, 200, 11), pts);
}

TEST_P(SamplePointsTest, CoversBorderRowsAndColumnsOfSmallPlanes) {
  const Problem& p = GetParam().p;
  const ResultView view(p);
  const auto& d = view.dims();
  ASSERT_LE(d[2], 64) << "border lines are thinned above 64 points";
  ASSERT_LE(d[3], 64) << "border lines are thinned above 64 points";
  const std::vector<int64_t> pts = ChooseSamplePoints(p, 0, 1);
  const std::set<int64_t> set(pts.begin(), pts.end());
  for (int64_t a : {int64_t{0}, d[0] - 1}) {
    for (int64_t b : {int64_t{0}, d[1] - 1}) {
      for (int64_t w = 0; w < d[3]; ++w) {
        EXPECT_TRUE(set.count(view.Offset({a, b, 0, w})));
        EXPECT_TRUE(set.count(view.Offset({a, b, d[2] - 1, w})));
      }
      for (int64_t h = 0; h < d[2]; ++h) {
        EXPECT_TRUE(set.count(view.Offset({a, b, h, 0})));
        EXPECT_TRUE(set.count(view.Offset({a, b, h, d[3] - 1})));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Sample, SamplePointsTest, testing::ValuesIn(SampleCases()),
                         [](const testing::TestParamInfo<SampleCase>& info) {
                           return info.param.name;
                         });

TEST(SamplePoints, InteriorPointsAddRandomElementsAndDependOnSeed) {
  const Problem p = {.n = 4,
                     .c = 16,
                     .h = 64,
                     .w = 64,
                     .k = 32,
                     .r = 3,
                     .s = 3,
                     .pad_top = 1,
                     .pad_left = 1,
                     .pad_bottom = 1,
                     .pad_right = 1};
  const std::vector<int64_t> none = ChooseSamplePoints(p, 0, 1);
  const std::vector<int64_t> some = ChooseSamplePoints(p, 1000, 1);
  const std::vector<int64_t> other = ChooseSamplePoints(p, 1000, 2);
  EXPECT_GT(some.size(), none.size() + 900);  // a few collisions at most
  EXPECT_LE(some.size(), none.size() + 1000);
  EXPECT_NE(some, other);
  // Interior points avoid the plane border.
  const ResultView view(p);
  const std::set<int64_t> base(none.begin(), none.end());
  for (int64_t off : some) {
    if (base.count(off)) continue;
    const ResultView::Index i = view.IndexOf(off);
    EXPECT_GT(i[2], 0);
    EXPECT_LT(i[2], view.dims()[2] - 1);
    EXPECT_GT(i[3], 0);
    EXPECT_LT(i[3], view.dims()[3] - 1);
  }
}

TEST(SamplePoints, HugePlaneIsThinned) {
  const Problem p = {.n = 1, .c = 1, .h = 4096, .w = 4096, .k = 1, .r = 1, .s = 1};
  const std::vector<int64_t> pts = ChooseSamplePoints(p, 100, 1);
  // 4 (first/last of n, k collapse to 1) border lines of at most 64 points, group
  // points, plus 100 interior points.
  EXPECT_LE(pts.size(), 4u * 64 + 5 + 100);
  EXPECT_GE(pts.size(), 4u * 64 - 4 + 100 - 1);
}

TEST(SamplePoints, CostCapKeepsOnlyCornersForEnormousReductions) {
  // Backward-weights: every dw element sums n*oh*ow = 64 * 1024 * 1024 products.
  const Problem p = {.n = 64,
                     .c = 2,
                     .h = 1024,
                     .w = 1024,
                     .k = 2,
                     .r = 3,
                     .s = 3,
                     .pad_top = 1,
                     .pad_left = 1,
                     .pad_bottom = 1,
                     .pad_right = 1,
                     .direction = Direction::kBackwardWeights};
  ASSERT_TRUE(Validate(p).ok());
  const std::vector<int64_t> pts = ChooseSamplePoints(p, 1000, 1);
  EXPECT_EQ(pts.size(), 16u);  // (k first/last) x (c first/last) x 4 corners
  // A moderately costly one keeps its edges but cuts interior points to the budget.
  Problem q = p;
  q.h = q.w = 128;
  q.n = 8;  // 131072 products per element -> budget of 1024 points
  const std::vector<int64_t> qpts = ChooseSamplePoints(q, 100000, 1);
  EXPECT_LE(static_cast<int64_t>(qpts.size()) * q.accumulation_length(), kSampleMacBudget);
  EXPECT_GT(qpts.size(), 16u);
  // A costly forward (36864 products per element) gets a budget of 3640 points: the
  // edges stay, the random points are cut to fit.
  const Problem f = {.n = 1, .c = 4096, .h = 512, .w = 512, .k = 1, .r = 3, .s = 3};
  ASSERT_TRUE(Validate(f).ok());
  const std::vector<int64_t> fpts = ChooseSamplePoints(f, 100000, 1);
  EXPECT_LE(static_cast<int64_t>(fpts.size()) * f.accumulation_length(), kSampleMacBudget);
  EXPECT_GT(fpts.size(), 3500u);
}

}  // namespace
}  // namespace convguard
