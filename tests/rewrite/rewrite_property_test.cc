// Property tests of the exact rewrites: on random valid problems, every candidate of
// every rewrite (and random compositions of them) reproduces the float64 reference bit
// for bit on FillExact data, with every element of the result written.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "convguard/problem.h"
#include "convguard/reference.h"
#include "convguard/text_forms.h"
#include "rewrite/rewrite.h"
#include "rewrite/rewrite_test_util.h"

namespace convguard::rewrite::testing {
namespace {

// Stop reporting after this many failures in one test: one bug fails many candidates.
constexpr int kMaxReportedFailures = 8;

int64_t Uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

// A random valid problem of direction d: small enough that the float64 reference of
// every candidate stays cheap, irregular enough to reach every border case (pads up to
// 3 on each side, larger than small kernels; strides above the kernel; dilation).
Problem RandomProblem(std::mt19937_64& rng, Direction d) {
  for (;;) {
    Problem p;
    p.direction = d;
    p.n = Uniform(rng, 1, 3);
    const int64_t shape = Uniform(rng, 0, 9);
    if (shape < 6) {
      p.groups = 1;
    } else if (shape < 8) {
      p.groups = Uniform(rng, 2, 4);
    } else {
      p.groups = Uniform(rng, 2, 8);  // depthwise below
    }
    if (shape == 9) {
      p.c = p.k = p.groups;
    } else {
      p.c = p.groups * Uniform(rng, 1, p.groups == 1 ? 6 : 3);
      p.k = p.groups * Uniform(rng, 1, p.groups == 1 ? 6 : 3);
    }
    p.h = Uniform(rng, 1, 14);
    p.w = Uniform(rng, 1, 14);
    p.r = Uniform(rng, 1, 4);
    p.s = Uniform(rng, 1, 4);
    p.stride_h = Uniform(rng, 1, 3);
    p.stride_w = Uniform(rng, 1, 3);
    p.dilation_h = Uniform(rng, 1, 2);
    p.dilation_w = Uniform(rng, 1, 2);
    p.pad_top = Uniform(rng, 0, 3);
    p.pad_bottom = Uniform(rng, 0, 3);
    p.pad_left = Uniform(rng, 0, 3);
    p.pad_right = Uniform(rng, 0, 3);
    p.bias = Uniform(rng, 0, 1) == 1;
    p.layout = Uniform(rng, 0, 1) == 1 ? Layout::kNHWC : Layout::kNCHW;
    if (Validate(p).ok()) return p;
  }
}

struct Tally {
  int64_t problems = 0;
  int64_t applications = 0;
  int failures = 0;
};

// Every candidate of every rewrite for `problems` random problems of direction d.
void CheckEveryCandidate(Direction d, int problems, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Tally tally;
  for (int i = 0; i < problems && tally.failures < kMaxReportedFailures; ++i) {
    const Problem p = RandomProblem(rng, d);
    const ConvTensors<double> data = ExactCase(p, rng());
    ++tally.problems;
    for (const Rewrite* rewrite : AllRewrites()) {
      for (const Application& app : rewrite->Candidates(p)) {
        ++tally.applications;
        auto node = BuildOverLeaves(*rewrite, p, app);
        std::string error =
            node.ok() ? LoadRunCompare(**node, p, data) : "Build: " + node.status().ToString();
        if (!error.empty()) {
          ADD_FAILURE() << ToCanonical(p) << "\n  " << Describe(app) << "\n  " << error;
          ++tally.failures;
        }
      }
    }
  }
  // Enough candidates ran for the test to mean something.
  EXPECT_GE(tally.applications, 4 * tally.problems);
  ::testing::Test::RecordProperty("applications", static_cast<int>(tally.applications));
}

TEST(RewriteProperty, EveryCandidateIsExactForward) {
  CheckEveryCandidate(Direction::kForward, 400, 0xF0F0);
}
TEST(RewriteProperty, EveryCandidateIsExactBackwardData) {
  CheckEveryCandidate(Direction::kBackwardData, 400, 0xBDBD);
}
TEST(RewriteProperty, EveryCandidateIsExactBackwardWeights) {
  CheckEveryCandidate(Direction::kBackwardWeights, 400, 0xBEBE);
}

// Random compositions: a rewrite whose children are rewritten again, 2 or 3 levels.
void CheckCompositions(Direction d, int problems, uint64_t seed) {
  std::mt19937_64 rng(seed);
  int failures = 0;
  int nested = 0;
  for (int i = 0; i < problems && failures < kMaxReportedFailures; ++i) {
    const Problem p = RandomProblem(rng, d);
    const ConvTensors<double> data = ExactCase(p, rng());
    const int depth = 2 + static_cast<int>(rng() % 2);
    std::string tree;
    auto node = BuildRandomTree(p, depth, rng, tree);
    std::string error =
        node.ok() ? LoadRunCompare(**node, p, data) : "Build: " + node.status().ToString();
    if (tree.find(" [") != tree.rfind(" [")) ++nested;  // at least two rewrite levels
    if (!error.empty()) {
      ADD_FAILURE() << ToCanonical(p) << "\n  depth " << depth << ": " << tree << "\n  " << error;
      ++failures;
    }
  }
  EXPECT_GE(nested, problems / 2) << "too few draws composed two rewrites";
}

TEST(RewriteProperty, CompositionsAreExactForward) {
  CheckCompositions(Direction::kForward, 200, 0xC0F);
}
TEST(RewriteProperty, CompositionsAreExactBackwardData) {
  CheckCompositions(Direction::kBackwardData, 200, 0xC0D);
}
TEST(RewriteProperty, CompositionsAreExactBackwardWeights) {
  CheckCompositions(Direction::kBackwardWeights, 200, 0xC0E);
}

// Weights are loaded once; two calls with different activations both come out right.
// The second data set shares the first's weights (FillExact's bounds depend only on the
// problem, so mixing one seed's weights with another's activations stays exact).
void CheckTwoCallsOneLoad(Direction d, int problems, uint64_t seed) {
  std::mt19937_64 rng(seed);
  int failures = 0;
  int distinct_results = 0;
  for (int i = 0; i < problems && failures < kMaxReportedFailures; ++i) {
    const Problem p = RandomProblem(rng, d);
    const ConvTensors<double> first = ExactCase(p, rng());
    ConvTensors<double> second = ConvTensors<double>::Allocate(p);
    FillExact(p, rng(), second);
    if (d != Direction::kBackwardWeights) {
      second.weight = first.weight;
      second.bias = first.bias;
    }
    ReferenceConvolution(p, second);
    if (ResultTensor(p, first) != ResultTensor(p, second)) ++distinct_results;
    for (const Rewrite* rewrite : AllRewrites()) {
      for (const Application& app : rewrite->Candidates(p)) {
        auto node = BuildOverLeaves(*rewrite, p, app);
        ASSERT_TRUE(node.ok()) << node.status().ToString();
        std::string error = LoadRunCompare(**node, p, first);
        if (error.empty()) error = RunCompare(**node, p, second);
        if (!error.empty()) {
          ADD_FAILURE() << ToCanonical(p) << "\n  " << Describe(app) << "\n  " << error;
          ++failures;
        }
      }
    }
  }
  // The second call must be able to tell a node that kept the first call's result.
  EXPECT_GE(distinct_results, problems * 9 / 10);
}

TEST(RewriteProperty, WeightsLoadedOnceServeTwoCallsForward) {
  CheckTwoCallsOneLoad(Direction::kForward, 100, 0x2F);
}
TEST(RewriteProperty, WeightsLoadedOnceServeTwoCallsBackwardData) {
  CheckTwoCallsOneLoad(Direction::kBackwardData, 100, 0x2D);
}
TEST(RewriteProperty, TwoCallsBackwardWeights) {
  CheckTwoCallsOneLoad(Direction::kBackwardWeights, 100, 0x2E);
}

// Computes p's forward result from an application's forward pieces alone, as a writer of
// another graph would (slice the input box, zero-extend channels, run the child, keep its
// first k channels), with the float64 reference for each child. Returns "" when the
// result equals `data`'s reference bit for bit and every output element is written once.
std::string RunForwardPieces(const Problem& p, const Application& app,
                             const std::vector<ForwardPiece>& pieces,
                             const ConvTensors<double>& data) {
  const TensorIndexer ix(p);
  std::vector<double> out(static_cast<size_t>(p.output_elements()), 0.0);
  std::vector<int> writes(out.size(), 0);
  const int64_t columns = p.c / p.groups;  // a filter's input channels
  for (const ForwardPiece& piece : pieces) {
    const auto write = [&](int64_t n, int64_t k, int64_t oh, int64_t ow, double v) {
      const auto at =
          static_cast<size_t>(ix.output(piece.out_n.begin + n, piece.k.begin + k,
                                        piece.out_h.begin + oh, piece.out_w.begin + ow));
      out[at] = v;
      ++writes[at];
    };
    if (piece.slot < 0) {
      for (int64_t n = 0; n < piece.out_n.size(); ++n)
        for (int64_t k = 0; k < piece.k.size(); ++k)
          for (int64_t oh = 0; oh < piece.out_h.size(); ++oh)
            for (int64_t ow = 0; ow < piece.out_w.size(); ++ow)
              write(n, k, oh, ow, p.bias ? data.bias[static_cast<size_t>(piece.k.begin + k)] : 0.0);
      continue;
    }
    if (static_cast<size_t>(piece.slot) >= app.children.size())
      return "a piece names slot " + std::to_string(piece.slot);
    const Problem& cp = app.children[static_cast<size_t>(piece.slot)];
    if (cp.n != piece.n.size() || cp.h != piece.h.size() || cp.w != piece.w.size() ||
        cp.c < piece.c.size() || cp.k < piece.k.size() || cp.c / cp.groups < columns ||
        cp.out_h() != piece.out_h.size() || cp.out_w() != piece.out_w.size() ||
        cp.n != piece.out_n.size() || cp.bias != p.bias) {
      return "piece of slot " + std::to_string(piece.slot) + " does not fit its child " +
             ToCanonical(cp);
    }
    ConvTensors<double> ct = ConvTensors<double>::Allocate(cp);
    const TensorIndexer cix(cp);
    for (int64_t n = 0; n < cp.n; ++n)
      for (int64_t c = 0; c < piece.c.size(); ++c)
        for (int64_t h = 0; h < cp.h; ++h)
          for (int64_t w = 0; w < cp.w; ++w)
            ct.input[static_cast<size_t>(cix.input(n, c, h, w))] =
                data.input[static_cast<size_t>(ix.input(piece.n.begin + n, piece.c.begin + c,
                                                        piece.h.begin + h, piece.w.begin + w))];
    for (int64_t k = 0; k < piece.k.size(); ++k) {
      for (int64_t c = 0; c < columns; ++c)
        for (int64_t r = 0; r < p.r; ++r)
          for (int64_t s = 0; s < p.s; ++s)
            ct.weight[static_cast<size_t>(cix.weight(k, c, r, s))] =
                data.weight[static_cast<size_t>(ix.weight(piece.k.begin + k, c, r, s))];
      if (p.bias)
        ct.bias[static_cast<size_t>(k)] = data.bias[static_cast<size_t>(piece.k.begin + k)];
    }
    ReferenceConvolution(cp, ct);
    for (int64_t n = 0; n < cp.n; ++n)
      for (int64_t k = 0; k < piece.k.size(); ++k)
        for (int64_t oh = 0; oh < piece.out_h.size(); ++oh)
          for (int64_t ow = 0; ow < piece.out_w.size(); ++ow)
            write(n, k, oh, ow, ct.output[static_cast<size_t>(cix.output(n, k, oh, ow))]);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (writes[i] != 1)
      return "output element " + std::to_string(i) + " written " + std::to_string(writes[i]) +
             " times";
    if (out[i] != data.output[i]) {
      return "output element " + std::to_string(i) + ": pieces give " + std::to_string(out[i]) +
             ", reference " + std::to_string(data.output[i]);
    }
  }
  return "";
}

// The forward pieces of every candidate describe the same computation as its node: the
// plan in the form that the ONNX writer follows.
TEST(RewriteProperty, ForwardPiecesReproduceTheProblem) {
  std::mt19937_64 rng(0xF1EC);
  int failures = 0;
  int64_t applications = 0;
  for (int i = 0; i < 300 && failures < kMaxReportedFailures; ++i) {
    const Problem p = RandomProblem(rng, Direction::kForward);
    const ConvTensors<double> data = ExactCase(p, rng());
    for (const Rewrite* rewrite : AllRewrites()) {
      for (const Application& app : rewrite->Candidates(p)) {
        ++applications;
        StatusOr<std::vector<ForwardPiece>> pieces = rewrite->ForwardPieces(p, app);
        const std::string error =
            pieces.ok() ? RunForwardPieces(p, app, *pieces, data) : pieces.status().ToString();
        if (!error.empty()) {
          ADD_FAILURE() << ToCanonical(p) << "\n  " << Describe(app) << "\n  " << error;
          ++failures;
        }
      }
    }
  }
  EXPECT_GE(applications, 1000);
}

TEST(RewriteProperty, ForwardPiecesRefuseOtherDirectionsAndForeignApplications) {
  std::mt19937_64 rng(7);
  const Problem backward = RandomProblem(rng, Direction::kBackwardData);
  for (const Rewrite* rewrite : AllRewrites()) {
    for (const Application& app : rewrite->Candidates(backward)) {
      StatusOr<std::vector<ForwardPiece>> pieces = rewrite->ForwardPieces(backward, app);
      ASSERT_FALSE(pieces.ok()) << Describe(app);
      EXPECT_NE(pieces.status().message().find("not a forward problem"), std::string::npos)
          << pieces.status().message();
    }
  }
  // An application made for another problem is refused, as Build refuses it: pairs of
  // problems of the same batch, channels and groups but other sizes.
  const std::vector<std::pair<const char*, const char*>> pairs = {
      {"n4_c8_h12_w12_k8_r3_s3_p1_g2",
       "n4_c8_h16_w16_k8_r3_s3_p1_g2"},                             // group-, batch-split, tiling
      {"n4_c6_h12_w12_k6_r3_s3_p1", "n4_c6_h16_w16_k6_r3_s3_p1"}};  // the paddings too
  std::set<std::string> checked;
  for (const auto& [text_a, text_b] : pairs) {
    StatusOr<Problem> a = ParseProblem(text_a);
    StatusOr<Problem> b = ParseProblem(text_b);
    ASSERT_TRUE(a.ok() && b.ok());
    for (const Rewrite* rewrite : AllRewrites()) {
      const std::vector<Application> for_a = rewrite->Candidates(*a);
      if (for_a.empty()) continue;
      StatusOr<std::vector<ForwardPiece>> pieces = rewrite->ForwardPieces(*b, for_a.front());
      ASSERT_FALSE(pieces.ok()) << rewrite->name() << " " << text_a;
      EXPECT_EQ(pieces.status().code(), StatusCode::kInvalidArgument) << pieces.status().ToString();
      checked.insert(std::string(rewrite->name()));
    }
  }
  EXPECT_EQ(checked.size(), AllRewrites().size());
}

}  // namespace
}  // namespace convguard::rewrite::testing
