// Property tests of the exact rewrites: on random valid problems, every candidate of
// every rewrite (and random compositions of them) reproduces the float64 reference bit
// for bit on FillExact data, with every element of the result written.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "convguard/problem.h"
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

}  // namespace
}  // namespace convguard::rewrite::testing
