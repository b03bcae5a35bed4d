// Edge cases of the exact rewrites: windows that lie entirely in padding, input rows no
// output touches, 1x1 outputs, depthwise groups; the candidate lists themselves; Build
// and Execute refusing misuse; and the box copies under the rewrites.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "convguard/problem.h"
#include "convguard/tensor.h"
#include "convguard/text_forms.h"
#include "rewrite/rewrite.h"
#include "rewrite/rewrite_test_util.h"
#include "rewrite/tensor_copy.h"

namespace convguard::rewrite::testing {
namespace {

Problem Parse(const std::string& canonical) {
  auto p = ParseProblem(canonical, TextForm::kCanonical);
  EXPECT_TRUE(p.ok()) << canonical << ": " << p.status().ToString();
  return p.ok() ? *p : Problem{};
}

std::vector<std::string> ParametersOf(const std::vector<Application>& apps) {
  std::vector<std::string> out;
  for (const Application& app : apps) out.push_back(app.parameters);
  return out;
}

// Every candidate of every rewrite for p is exact, in both layouts.
// Returns how many candidates ran.
int ExpectEveryCandidateExact(Problem p, uint64_t seed = 7) {
  int ran = 0;
  for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
    p.layout = layout;
    const ConvTensors<double> data = ExactCase(p, seed);
    for (const Rewrite* rewrite : AllRewrites()) {
      for (const Application& app : rewrite->Candidates(p)) {
        auto node = BuildOverLeaves(*rewrite, p, app);
        const std::string error =
            node.ok() ? LoadRunCompare(**node, p, data) : "Build: " + node.status().ToString();
        EXPECT_EQ(error, "") << ToCanonical(p) << "\n  " << Describe(app);
        ++ran;
      }
    }
  }
  return ran;
}

int64_t TotalRuns(const Application& app) {
  int64_t total = 0;
  for (int64_t r : app.runs) total += r;
  return total;
}

// Tiles a "tile=RxC" tiling makes of a rows x cols extent.
int64_t TileCount(const Application& app, int64_t rows, int64_t cols) {
  long tile_h = 0, tile_w = 0;
  EXPECT_EQ(std::sscanf(app.parameters.c_str(), "tile=%ldx%ld", &tile_h, &tile_w), 2);
  if (tile_h <= 0 || tile_w <= 0) return 0;
  return ((rows + tile_h - 1) / tile_h) * ((cols + tile_w - 1) / tile_w);
}

// ---- spatial tiling borders ----

// Pads far larger than the kernel: most output tiles read only padding, so they are
// the bias (or zero) and run no child.
TEST(RewriteEdge, ForwardTilesEntirelyInPaddingAreBiasOnly) {
  for (bool bias : {true, false}) {
    Problem p = Parse("n2_c3_h3_w4_k5_r1_s2_p5_u1_d1_g1_f32_nchw_fwd");
    p.pad_left = 6;
    p.bias = bias;
    ASSERT_TRUE(Validate(p).ok());
    int bias_only = 0;
    for (const Application& app : SpatialTilingRewrite().Candidates(p)) {
      if (TotalRuns(app) < TileCount(app, p.out_h(), p.out_w())) ++bias_only;
    }
    EXPECT_GT(bias_only, 0) << "no candidate has a tile entirely in padding";
    EXPECT_GT(ExpectEveryCandidateExact(p), 0);
  }
}

// Strided taps that all land in padding: no output reads a real input row, so every
// tile is bias only and the tiling needs no child at all (an application with no slots);
// backward-weights alike gives dw = 0. (Backward-data tiles the 1x1 dx: nothing to split.)
TEST(RewriteEdge, EveryWindowInPaddingNeedsNoChild) {
  for (Direction d : {Direction::kForward, Direction::kBackwardWeights}) {
    Problem p = Parse("n2_c2_h1_w1_k3_r1_s1_p3_u2_d1_g1_f32_nchw_fwd");
    p.direction = d;
    p.bias = d == Direction::kForward;
    ASSERT_EQ(p.out_h(), 4);
    const auto tilings = SpatialTilingRewrite().Candidates(p);
    ASSERT_FALSE(tilings.empty());
    for (const Application& app : tilings) EXPECT_TRUE(app.children.empty()) << Describe(app);
    EXPECT_GT(ExpectEveryCandidateExact(p), 0);
  }
}

// The same geometry in backward-data: dy rows whose windows are all padding reach no dx
// and must not disturb it; dx tiles still get exactly their reaching rows.
TEST(RewriteEdge, BackwardDataWithWindowsEntirelyInPadding) {
  Problem p = Parse("n2_c3_h3_w4_k5_r1_s2_p5_u1_d1_g1_f32_nchw_bwd-data");
  p.pad_left = 6;
  ASSERT_TRUE(Validate(p).ok());
  EXPECT_GT(ExpectEveryCandidateExact(p), 0);
  // And backward-weights: all-padding windows contribute nothing.
  p.direction = Direction::kBackwardWeights;
  EXPECT_GT(ExpectEveryCandidateExact(p), 0);
}

// Stride larger than the kernel: dx rows between the taps receive nothing. Some dx tile
// is reached by no dy row at all (no child) and others keep only part of their rows.
TEST(RewriteEdge, StrideBeyondKernelLeavesUntouchedDxRows) {
  const Problem p = Parse("n1_c2_h11_w3_k3_r2_s1_p0_u3_d1_g1_f32_nchw_bwd-data");
  ASSERT_TRUE(Validate(p).ok());
  const ConvTensors<double> data = ExactCase(p, 3);
  int64_t zeros = 0;
  for (double v : data.input) zeros += (v == 0.0);
  EXPECT_GT(zeros, 0) << "the reference has no untouched dx rows: the case tests nothing";
  bool tile_without_child = false;
  for (const Application& app : SpatialTilingRewrite().Candidates(p)) {
    if (TotalRuns(app) < TileCount(app, p.h, p.w)) tile_without_child = true;
  }
  EXPECT_TRUE(tile_without_child);
  EXPECT_GT(ExpectEveryCandidateExact(p), 0);
  Problem forward = p;
  forward.direction = Direction::kForward;
  forward.bias = true;
  EXPECT_GT(ExpectEveryCandidateExact(forward), 0);
}

TEST(RewriteEdge, OneByOneOutput) {
  // The kernel covers the whole (padded) input: nothing to tile in forward, and in
  // backward-data every dx tile needs the one dy point, so each child would be P.
  for (const char* text : {"n2_c4_h3_w3_k6_r3_s3_p0_u1_d1_g1_f32_nchw_fwd",
                           "n2_c4_h3_w3_k6_r3_s3_p0_u1_d1_g1_f32_nchw_bwd-data",
                           "n2_c4_h1_w1_k6_r3_s3_p1_u1_d1_g1_f32_nchw_bwd-weights"}) {
    const Problem p = Parse(text);
    ASSERT_EQ(p.out_h(), 1);
    ASSERT_EQ(p.out_w(), 1);
    EXPECT_TRUE(SpatialTilingRewrite().Candidates(p).empty()) << text;
    EXPECT_GT(ExpectEveryCandidateExact(p), 0) << text;
  }
  // A 1x1 output from a strided kernel that skips input: backward-data tiles the dx
  // that no tap reaches without running P again.
  const Problem strided = Parse("n1_c2_h5_w5_k3_r2_s2_p0_u4_d1_g1_f32_nchw_bwd-data");
  ASSERT_EQ(strided.out_h(), 1);
  EXPECT_FALSE(SpatialTilingRewrite().Candidates(strided).empty());
  EXPECT_GT(ExpectEveryCandidateExact(strided), 0);
}

TEST(RewriteEdge, DepthwiseGroups) {
  for (Direction d : {Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights}) {
    Problem p = Parse("n2_c8_h7_w6_k8_r3_s3_p1_u1_d1_g8_f32_nchw_fwd");
    p.direction = d;
    p.bias = d == Direction::kForward;
    EXPECT_EQ(ParametersOf(GroupSplitRewrite().Candidates(p)),
              (std::vector<std::string>{"groups=8->2x4", "groups=8->4x2", "groups=8->8x1"}));
    EXPECT_TRUE(PadInputChannelsRewrite().Candidates(p).empty());
    EXPECT_TRUE(PadOutputChannelsRewrite().Candidates(p).empty());
    EXPECT_GT(ExpectEveryCandidateExact(p), 0);

    // One group per slot, then each slot's channels padded: the composition that gives
    // grouped problems the padding rewrites.
    const Application split = GroupSplitRewrite().Candidates(p).back();
    ASSERT_EQ(split.children.size(), 8u);
    std::vector<std::unique_ptr<ExecNode>> children;
    for (const Problem& child : split.children) {
      ASSERT_EQ(child.groups, 1);
      const auto pads = PadInputChannelsRewrite().Candidates(child);
      ASSERT_FALSE(pads.empty());
      auto padded = BuildOverLeaves(PadInputChannelsRewrite(), child, pads.back());
      ASSERT_TRUE(padded.ok()) << padded.status().ToString();
      children.push_back(std::move(*padded));
    }
    auto node = GroupSplitRewrite().Build(p, split, std::move(children));
    ASSERT_TRUE(node.ok()) << node.status().ToString();
    EXPECT_EQ(LoadRunCompare(**node, p, ExactCase(p, 11)), "") << ToCanonical(p);
  }
}

// Larger planes reach the fixed input-window targets of the tiling candidates.
TEST(RewriteEdge, TilingCandidatesForLargerPlanes) {
  const Problem p = Parse("n1_c3_h40_w40_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd");
  // W = 16: (16 - 3) / 1 + 1 = 14; W = 32: 30; W = 64, 128 cover 40; halves; quarters.
  EXPECT_EQ(ParametersOf(SpatialTilingRewrite().Candidates(p)),
            (std::vector<std::string>{"tile=14x14", "tile=30x30", "tile=20x20", "tile=10x10"}));
  EXPECT_GT(ExpectEveryCandidateExact(p), 0);

  // Backward-data counts tiles in dx rows.
  Problem bwd = p;
  bwd.direction = Direction::kBackwardData;
  EXPECT_EQ(ParametersOf(SpatialTilingRewrite().Candidates(bwd)),
            (std::vector<std::string>{"tile=16x16", "tile=32x32", "tile=20x20", "tile=10x10"}));

  // Stride 2, dilation 2 (effective 5) on a 70 x 9 plane: only rows are tiled by the
  // window targets; halves and quarters split both axes.
  const Problem strided = Parse("n1_c2_h70_w9_k2_r3_s3_p2_u2_d2_g1_f32_nhwc_bwd-weights");
  EXPECT_EQ(
      ParametersOf(SpatialTilingRewrite().Candidates(strided)),
      (std::vector<std::string>{"tile=6x5", "tile=14x5", "tile=30x5", "tile=18x3", "tile=9x2"}));
  EXPECT_GT(ExpectEveryCandidateExact(strided), 0);
}

// The motivating problem of the README, every rewrite, forward.
TEST(RewriteEdge, SeedProblemForward) {
  Problem p = Parse("n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd");
  EXPECT_EQ(ParametersOf(PadInputChannelsRewrite().Candidates(p)),
            (std::vector<std::string>{"c=16->17", "c=16->20", "c=16->24", "c=16->32"}));
  EXPECT_EQ(ParametersOf(PadOutputChannelsRewrite().Candidates(p)),
            (std::vector<std::string>{"k=32->33", "k=32->36", "k=32->40", "k=32->48", "k=32->64"}));
  EXPECT_EQ(ParametersOf(SpatialTilingRewrite().Candidates(p)),
            (std::vector<std::string>{"tile=14x14", "tile=30x30", "tile=62x62", "tile=32x32",
                                      "tile=16x16"}));
  EXPECT_TRUE(BatchSplitRewrite().Candidates(p).empty());
  EXPECT_TRUE(GroupSplitRewrite().Candidates(p).empty());
  p.bias = true;
  const ConvTensors<double> data = ExactCase(p, 5);
  for (const Rewrite* rewrite : AllRewrites()) {
    for (const Application& app : rewrite->Candidates(p)) {
      auto node = BuildOverLeaves(*rewrite, p, app);
      ASSERT_TRUE(node.ok()) << node.status().ToString();
      EXPECT_EQ(LoadRunCompare(**node, p, data), "") << Describe(app);
    }
  }
}

// ---- the candidate lists ----

TEST(RewriteEdge, CandidateParameters) {
  const Problem c3 = Parse("n1_c3_h8_w8_k1_r3_s3_p1_u1_d1_g1_f32_nchw_fwd");
  EXPECT_EQ(ParametersOf(PadInputChannelsRewrite().Candidates(c3)),
            (std::vector<std::string>{"c=3->4", "c=3->8", "c=3->16"}));
  EXPECT_EQ(ParametersOf(PadOutputChannelsRewrite().Candidates(c3)),
            (std::vector<std::string>{"k=1->2", "k=1->4", "k=1->8", "k=1->16"}));

  Problem batch = c3;
  batch.n = 8;
  EXPECT_EQ(ParametersOf(BatchSplitRewrite().Candidates(batch)),
            (std::vector<std::string>{"n=8->4+4", "n=8->2+2+2+2", "n=8->8x1"}));
  batch.n = 5;
  EXPECT_EQ(ParametersOf(BatchSplitRewrite().Candidates(batch)),
            (std::vector<std::string>{"n=5->3+2", "n=5->2+2+1", "n=5->5x1"}));
  batch.n = 2;
  EXPECT_EQ(ParametersOf(BatchSplitRewrite().Candidates(batch)),
            (std::vector<std::string>{"n=2->1+1"}));
  batch.n = 10;
  const auto tens = BatchSplitRewrite().Candidates(batch);
  EXPECT_EQ(ParametersOf(tens),
            (std::vector<std::string>{"n=10->5+5", "n=10->3+3+3+1", "n=10->10x1"}));
  EXPECT_EQ(tens[1].runs, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(tens[1].children[0].n, 3);
  EXPECT_EQ(tens[1].children[1].n, 1);

  Problem grouped = Parse("n1_c96_h8_w8_k32_r1_s1_p0_u1_d1_g32_f32_nchw_fwd");
  EXPECT_EQ(ParametersOf(GroupSplitRewrite().Candidates(grouped)),
            (std::vector<std::string>{"groups=32->2x16", "groups=32->4x8", "groups=32->8x4",
                                      "groups=32->16x2", "groups=32->32x1"}));
  grouped.groups = 96;
  grouped.k = 96;
  // 96 > 64: no one-group-per-slot split; 2, 4, 8, 16, 32 divide 96.
  EXPECT_EQ(ParametersOf(GroupSplitRewrite().Candidates(grouped)),
            (std::vector<std::string>{"groups=96->2x48", "groups=96->4x24", "groups=96->8x12",
                                      "groups=96->16x6", "groups=96->32x3"}));
  grouped.groups = grouped.c = grouped.k = 6;
  EXPECT_EQ(ParametersOf(GroupSplitRewrite().Candidates(grouped)),
            (std::vector<std::string>{"groups=6->2x3", "groups=6->6x1"}));
}

// Over a grid of awkward problems: children are valid, slots and runs agree, no
// candidate is the identity, parameters are distinct, lists are deterministic, and at
// most six tilings are offered.
TEST(RewriteEdge, CandidatesAreValidDistinctAndNeverTheIdentity) {
  int checked = 0;
  for (Direction d : {Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights}) {
    for (int64_t hw : {1, 2, 5, 13, 33}) {
      for (int64_t rs : {1, 2, 3, 5}) {
        for (int64_t pad : {0, 1, 4}) {
          for (int64_t stride : {1, 2, 3}) {
            for (int64_t groups : {1, 2, 4}) {
              Problem p;
              p.direction = d;
              p.n = 1 + hw % 3;
              p.groups = groups;
              p.c = 2 * groups;
              p.k = 3 * groups;
              p.h = hw;
              p.w = hw + 3;
              p.r = rs;
              p.s = rs;
              p.pad_top = p.pad_left = pad;
              p.pad_bottom = p.pad_right = pad / 2;
              p.stride_h = stride;
              p.stride_w = stride;
              p.dilation_h = 1 + stride % 2;
              if (!Validate(p).ok()) continue;
              for (const Rewrite* rewrite : AllRewrites()) {
                const auto apps = rewrite->Candidates(p);
                EXPECT_EQ(ParametersOf(apps), ParametersOf(rewrite->Candidates(p)));
                if (rewrite == &SpatialTilingRewrite()) {
                  EXPECT_LE(apps.size(), 6u);
                }
                std::vector<std::string> seen;
                for (const Application& app : apps) {
                  ++checked;
                  EXPECT_EQ(app.rewrite, rewrite->name());
                  EXPECT_EQ(std::find(seen.begin(), seen.end(), app.parameters), seen.end())
                      << app.parameters << " twice for " << ToCanonical(p);
                  seen.push_back(app.parameters);
                  ASSERT_EQ(app.children.size(), app.runs.size());
                  EXPECT_GE(app.bytes_per_call, 0);
                  EXPECT_GE(app.bytes_per_weight_load, 0);
                  for (size_t i = 0; i < app.children.size(); ++i) {
                    EXPECT_TRUE(Validate(app.children[i]).ok())
                        << Describe(app) << ": " << Validate(app.children[i]).ToString();
                    EXPECT_NE(app.children[i], p) << "identity: " << Describe(app);
                    EXPECT_GE(app.runs[i], 1);
                    EXPECT_EQ(app.children[i].direction, p.direction);
                    EXPECT_EQ(app.children[i].layout, p.layout);
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 1000);
}

TEST(RewriteEdge, RegistryNamesEveryRewrite) {
  std::vector<std::string> names;
  for (const Rewrite* rewrite : AllRewrites()) names.emplace_back(rewrite->name());
  EXPECT_EQ(names, (std::vector<std::string>{"pad-input-channels", "pad-output-channels",
                                             "spatial-tiling", "batch-split", "group-split"}));
  for (const Rewrite* rewrite : AllRewrites()) EXPECT_EQ(FindRewrite(rewrite->name()), rewrite);
  EXPECT_EQ(FindRewrite("winograd"), nullptr);
}

// ---- misuse ----

TEST(RewriteEdge, BuildRejectsMismatchedChildren) {
  const Problem p = Parse("n4_c16_h9_w9_k8_r3_s3_p1_u1_d1_g1_f32_nchw_fwd");
  for (const Rewrite* rewrite : AllRewrites()) {
    for (const Application& app : rewrite->Candidates(p)) {
      SCOPED_TRACE(Describe(app));
      // Too few children.
      auto leaves = ReferenceLeaves(app);
      leaves.pop_back();
      auto built = rewrite->Build(p, app, std::move(leaves));
      ASSERT_FALSE(built.ok());
      EXPECT_EQ(built.status().code(), StatusCode::kInvalidArgument);
      // Too many.
      leaves = ReferenceLeaves(app);
      leaves.push_back(std::make_unique<ReferenceLeaf>(app.children[0]));
      built = rewrite->Build(p, app, std::move(leaves));
      EXPECT_EQ(built.status().code(), StatusCode::kInvalidArgument);
      // A child computing another problem.
      leaves = ReferenceLeaves(app);
      Problem other = app.children[0];
      other.k += 1;
      leaves[0] = std::make_unique<ReferenceLeaf>(other);
      built = rewrite->Build(p, app, std::move(leaves));
      EXPECT_EQ(built.status().code(), StatusCode::kInvalidArgument);
      // A null child.
      leaves = ReferenceLeaves(app);
      leaves[0] = nullptr;
      built = rewrite->Build(p, app, std::move(leaves));
      EXPECT_EQ(built.status().code(), StatusCode::kInvalidArgument);
      // Parameters that are not this rewrite's, or do not fit p.
      for (const std::string& bad :
           {std::string(""), std::string("garbage"), app.parameters + "0", "x" + app.parameters}) {
        Application wrong = app;
        wrong.parameters = bad;
        built = rewrite->Build(p, wrong, ReferenceLeaves(app));
        EXPECT_EQ(built.status().code(), StatusCode::kInvalidArgument) << bad;
      }
      // The application of another problem.
      Problem smaller = p;
      smaller.h = smaller.w = 7;
      built = rewrite->Build(smaller, app, ReferenceLeaves(app));
      EXPECT_EQ(built.status().code(), StatusCode::kInvalidArgument);
      // Another rewrite's name.
      Application renamed = app;
      renamed.rewrite = rewrite == &BatchSplitRewrite() ? "group-split" : "batch-split";
      built = rewrite->Build(p, renamed, ReferenceLeaves(app));
      EXPECT_EQ(built.status().code(), StatusCode::kInvalidArgument);
      // The right children build.
      EXPECT_TRUE(rewrite->Build(p, app, ReferenceLeaves(app)).ok());
    }
  }
  // Identity parameters are refused even though they name p's own sizes.
  const Application same{"pad-input-channels", "c=16->16", {p}, {1}, 0, 0};
  EXPECT_EQ(PadInputChannelsRewrite().Build(p, same, ReferenceLeaves(same)).status().code(),
            StatusCode::kInvalidArgument);
  const Application whole{"spatial-tiling", "tile=9x9", {p}, {1}, 0, 0};
  EXPECT_EQ(SpatialTilingRewrite().Build(p, whole, ReferenceLeaves(whole)).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(RewriteEdge, ExecuteRefusesMisuse) {
  const Problem p = Parse("n2_c3_h6_w6_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd");
  const Application app = BatchSplitRewrite().Candidates(p).front();
  auto node = BuildOverLeaves(BatchSplitRewrite(), p, app);
  ASSERT_TRUE(node.ok());
  ConvTensors<float> io = ConvTensors<float>::Allocate(p);
  EXPECT_EQ((*node)->Execute(io).code(), StatusCode::kInvalidArgument) << "before LoadWeights";
  EXPECT_EQ((*node)->LoadWeights(std::vector<float>(3), io.bias).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE((*node)->LoadWeights(io.weight, io.bias).ok());
  ConvTensors<float> wrong = ConvTensors<float>::Allocate(p);
  wrong.output.pop_back();
  EXPECT_EQ((*node)->Execute(wrong).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE((*node)->Execute(io).ok());

  // Backward-weights needs no weights: Execute works without LoadWeights.
  Problem bw = p;
  bw.direction = Direction::kBackwardWeights;
  const Application bw_app = BatchSplitRewrite().Candidates(bw).front();
  auto bw_node = BuildOverLeaves(BatchSplitRewrite(), bw, bw_app);
  ASSERT_TRUE(bw_node.ok());
  EXPECT_EQ(RunCompare(**bw_node, bw, ExactCase(bw, 2)), "");
}

// Children are loaded once per LoadWeights and run once per tile or chunk.
TEST(RewriteEdge, SlotsRunAsOftenAsTheApplicationSays) {
  const Problem p = Parse("n5_c2_h9_w9_k2_r3_s3_p1_u1_d1_g1_f32_nchw_fwd");
  for (const Rewrite* rewrite : {&BatchSplitRewrite(), &SpatialTilingRewrite()}) {
    for (const Application& app : rewrite->Candidates(p)) {
      std::vector<std::unique_ptr<ExecNode>> children;
      std::vector<const ReferenceLeaf*> leaves;
      for (const Problem& child : app.children) {
        auto leaf = std::make_unique<ReferenceLeaf>(child);
        leaves.push_back(leaf.get());
        children.push_back(std::move(leaf));
      }
      auto node = rewrite->Build(p, app, std::move(children));
      ASSERT_TRUE(node.ok());
      const ConvTensors<double> data = ExactCase(p, 9);
      ASSERT_EQ(LoadRunCompare(**node, p, data), "") << Describe(app);
      ASSERT_EQ(RunCompare(**node, p, data), "") << Describe(app);
      for (size_t i = 0; i < leaves.size(); ++i) {
        EXPECT_EQ(leaves[i]->loads(), 1) << Describe(app);
        EXPECT_EQ(leaves[i]->executions(), 2 * app.runs[i]) << Describe(app);
      }
    }
  }
}

// ---- the box copies ----

// CopyBox / AddBox / ZeroBox / FillBoxByChannel against element-by-element loops, on
// random boxes of random tensors in both layouts (runs merge differently in each).
TEST(RewriteEdge, BoxOperationsMatchElementLoops) {
  std::mt19937_64 rng(17);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  auto offset = [](const TensorShape4& s, int64_t n, int64_t c, int64_t h, int64_t w) {
    const Dims4& d = s.dims;
    if (s.layout == Layout::kNHWC) return ((n * d.h + h) * d.w + w) * d.c + c;
    return ((n * d.c + c) * d.h + h) * d.w + w;
  };
  for (int trial = 0; trial < 400; ++trial) {
    const Layout layout = trial % 2 ? Layout::kNHWC : Layout::kNCHW;
    const Dims4 extent{uniform(0, 3), uniform(1, 5), uniform(1, 5), uniform(1, 5)};
    auto random_tensor = [&](Dims4& origin) {
      TensorShape4 s{{extent.n + uniform(0, 2), extent.c + uniform(0, 2), extent.h + uniform(0, 2),
                      extent.w + uniform(0, 2)},
                     layout};
      // Often exactly the extent on the inner axes, so that runs merge.
      if (uniform(0, 1)) s.dims.w = extent.w;
      if (uniform(0, 1)) s.dims.c = extent.c;
      origin = {uniform(0, s.dims.n - extent.n), uniform(0, s.dims.c - extent.c),
                uniform(0, s.dims.h - extent.h), uniform(0, s.dims.w - extent.w)};
      return s;
    };
    Dims4 src_at, dst_at;
    const TensorShape4 src_shape = random_tensor(src_at);
    const TensorShape4 dst_shape = random_tensor(dst_at);
    std::vector<float> src(static_cast<size_t>(src_shape.dims.elements()));
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i + 1);
    std::vector<float> dst(static_cast<size_t>(dst_shape.dims.elements()), -1.0f);
    std::vector<float> values(static_cast<size_t>(extent.c));
    for (size_t i = 0; i < values.size(); ++i) values[i] = 1000.0f + static_cast<float>(i);

    std::vector<float> copied = dst, added = dst, zeroed = dst, filled = dst;
    CopyBox(src.data(), src_shape, src_at, copied.data(), dst_shape, dst_at, extent);
    AddBox(src.data(), src_shape, src_at, added.data(), dst_shape, dst_at, extent);
    ZeroBox(zeroed.data(), dst_shape, dst_at, extent);
    FillBoxByChannel(filled.data(), dst_shape, dst_at, extent, values.data());

    std::vector<float> want_copy = dst, want_add = dst, want_zero = dst, want_fill = dst;
    for (int64_t n = 0; n < extent.n; ++n)
      for (int64_t c = 0; c < extent.c; ++c)
        for (int64_t h = 0; h < extent.h; ++h)
          for (int64_t w = 0; w < extent.w; ++w) {
            const auto s = static_cast<size_t>(
                offset(src_shape, src_at.n + n, src_at.c + c, src_at.h + h, src_at.w + w));
            const auto d = static_cast<size_t>(
                offset(dst_shape, dst_at.n + n, dst_at.c + c, dst_at.h + h, dst_at.w + w));
            want_copy[d] = src[s];
            want_add[d] = dst[d] + src[s];
            want_zero[d] = 0.0f;
            want_fill[d] = values[static_cast<size_t>(c)];
          }
    ASSERT_EQ(copied, want_copy) << "trial " << trial;
    ASSERT_EQ(added, want_add) << "trial " << trial;
    ASSERT_EQ(zeroed, want_zero) << "trial " << trial;
    ASSERT_EQ(filled, want_fill) << "trial " << trial;
  }
}

}  // namespace
}  // namespace convguard::rewrite::testing
