#include "probe/deadline_policy.h"

#include <gtest/gtest.h>

#include "convguard/text_forms.h"

namespace convguard::probe {
namespace {

Problem P(const char* text) {
  StatusOr<Problem> p = ParseProblem(text);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return *p;
}

TEST(DeadlinePolicy, FloorAppliesToTinyProblems) {
  DeadlineOptions o;
  DeadlinePolicy policy(o);
  policy.Calibrate(1'000'000'000, 1.0);  // 1000 GFLOP/s: everything is tiny
  EXPECT_NEAR(policy.RunDeadlineMs(P("c1_h4_k1_r1"), 4), o.floor_ms, 1.0);
}

TEST(DeadlinePolicy, GrowsWithExpectedTimeAndStopsAtTheCap) {
  DeadlineOptions o;
  o.cap_ms = 60000;
  DeadlinePolicy policy(o);
  policy.Calibrate(1'000'000'000, 1000.0);       // 1 GFLOP/s
  const Problem small = P("c16_h32_k16_r3_p1");  // 4.7 MFLOP
  const Problem large = P("c64_h56_k64_r3_p1");  // 231 MFLOP
  const double ds = policy.RunDeadlineMs(small, 4);
  const double dl = policy.RunDeadlineMs(large, 4);
  EXPECT_GT(dl, ds);
  // floor + factor * runs * flops / throughput
  EXPECT_NEAR(dl, o.floor_ms + o.factor * 4 * large.flops() / 1e6, 1.0);
  const Problem huge = P("n64_c256_h224_k256_r3_p1");
  EXPECT_EQ(policy.RunDeadlineMs(huge, 4), o.cap_ms);
}

TEST(DeadlinePolicy, ConfirmationIsGenerousButCapped) {
  DeadlineOptions o;
  DeadlinePolicy policy(o);
  EXPECT_EQ(policy.ConfirmDeadlineMs(250), o.confirm_floor_ms);  // 3 x 250 < 3000
  EXPECT_EQ(policy.ConfirmDeadlineMs(2000), o.confirm_factor * 2000);
  EXPECT_EQ(policy.ConfirmDeadlineMs(1e9), o.cap_ms);
  // The floor is what keeps a 2 s problem from ever being a hang.
  EXPECT_GT(policy.ConfirmDeadlineMs(o.floor_ms), 2000.0);
}

TEST(DeadlinePolicy, AHandfulOfSlowProblemsDoesNotStretchLaterDeadlines) {
  DeadlineOptions o;
  DeadlinePolicy policy(o);
  const Problem p = P("n8_c64_h56_k64_r3_p1");  // 3.7 GFLOP
  const double gflop = static_cast<double>(p.flops()) / 1e9;
  for (int i = 0; i < 40; ++i) policy.Observe(p, "direct", gflop * 100.0);  // 10 GFLOP/s
  const double before = policy.RunDeadlineMs(p, 4, "direct");
  // Problems that each sleep before computing: OK, but ten times slower.
  for (int i = 0; i < 15; ++i) policy.Observe(p, "direct", gflop * 1000.0);
  EXPECT_NEAR(policy.throughput_gflops(p, "direct"), 10.0, 1e-9);
  EXPECT_NEAR(policy.RunDeadlineMs(p, 4, "direct"), before, 0.2 * before);
  // Once most recent problems are that slow, the stack IS that slow.
  for (int i = 0; i < 60; ++i) policy.Observe(p, "direct", gflop * 1000.0);
  EXPECT_NEAR(policy.throughput_gflops(p, "direct"), 1.0, 1e-9);
}

TEST(DeadlinePolicy, LearnsPerFamilyAndPoolsSmallFamilies) {
  DeadlinePolicy policy(DeadlineOptions{});
  const Problem fwd = P("n8_c64_h56_k64_r3_p1");
  Problem wgrad = fwd;
  wgrad.direction = Direction::kBackwardWeights;
  const double gflop = static_cast<double>(fwd.flops()) / 1e9;
  for (int i = 0; i < 10; ++i) policy.Observe(fwd, "", gflop * 100.0);    // 10 GFLOP/s
  for (int i = 0; i < 3; ++i) policy.Observe(wgrad, "", gflop * 1000.0);  // 1 GFLOP/s
  EXPECT_NEAR(policy.throughput_gflops(fwd), 10.0, 1e-9);
  // Three observations are too few for a family of its own: the estimate over every
  // family (the median of 13: 10 GFLOP/s).
  EXPECT_NEAR(policy.throughput_gflops(wgrad), 10.0, 1e-9);
  for (int i = 0; i < 2; ++i) policy.Observe(wgrad, "default", gflop * 1000.0);
  EXPECT_NEAR(policy.throughput_gflops(wgrad), 1.0, 1e-9);  // "" and "default" are one
  EXPECT_NEAR(policy.throughput_gflops(fwd, "winograd"), policy.throughput_gflops(), 1e-9);
  const std::string text = policy.Describe();
  EXPECT_NE(text.find("fwd f32 nchw default: 10 GFLOP/s, median of 10 OK probes"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("bwd-weights f32 nchw default: 1 GFLOP/s, median of 5 OK probes"),
            std::string::npos)
      << text;
}

TEST(DeadlinePolicy, CompileAllowanceFromBackendUnlessOverridden) {
  DeadlineOptions o;
  DeadlinePolicy policy(o);
  policy.Calibrate(1'000'000'000, 1.0);
  const Problem p = P("c1_h4_k1_r1");
  policy.SetBackendCompileAllowance(5000);
  EXPECT_NEAR(policy.RunDeadlineMs(p, 1), o.floor_ms + 5000, 1.0);
  o.compile_allowance_ms = 0;
  DeadlinePolicy overridden(o);
  overridden.Calibrate(1'000'000'000, 1.0);
  overridden.SetBackendCompileAllowance(5000);
  EXPECT_NEAR(overridden.RunDeadlineMs(p, 1), o.floor_ms, 1.0);
}

// The torch worker on CUDA: 1 s for every algorithm but `benchmark`, which times every
// cuDNN algorithm on a new shape and gets 2 s; an override applies to all of them.
TEST(DeadlinePolicy, AnAlgorithmMayDeclareItsOwnFirstCallAllowance) {
  DeadlineOptions o;
  DeadlinePolicy policy(o);
  policy.Calibrate(1'000'000'000, 1.0);
  const Problem p = P("c1_h4_k1_r1");
  policy.SetBackendCompileAllowance(1000, {{"benchmark", 2000}});
  EXPECT_NEAR(policy.RunDeadlineMs(p, 1, "default"), o.floor_ms + 1000, 1.0);
  EXPECT_NEAR(policy.RunDeadlineMs(p, 1, ""), o.floor_ms + 1000, 1.0);
  EXPECT_NEAR(policy.RunDeadlineMs(p, 1, "benchmark"), o.floor_ms + 2000, 1.0);
  EXPECT_NE(policy.Describe(true).find("first-call allowance of 'benchmark': 2000 ms"),
            std::string::npos)
      << policy.Describe(true);
  o.compile_allowance_ms = 0;
  DeadlinePolicy overridden(o);
  overridden.Calibrate(1'000'000'000, 1.0);
  overridden.SetBackendCompileAllowance(1000, {{"benchmark", 2000}});
  EXPECT_NEAR(overridden.RunDeadlineMs(p, 1, "benchmark"), o.floor_ms, 1.0);
}

TEST(DeadlinePolicy, OwnStagesScaleWithTheProblem) {
  DeadlinePolicy policy(DeadlineOptions{});
  const Problem small = P("c16_h32_k16_r3_p1");
  const Problem large = P("n8_c256_h112_k256_r3_p1");
  EXPECT_GT(policy.PrepDeadlineMs(large), policy.PrepDeadlineMs(small));
  EXPECT_GT(policy.CheckDeadlineMs(large, CheckMode::kFull, 0),
            policy.CheckDeadlineMs(large, CheckMode::kSampled, 256));
  EXPECT_LT(policy.CheckDeadlineMs(small, CheckMode::kNone, 0),
            policy.CheckDeadlineMs(small, CheckMode::kSampled, 256));
}

}  // namespace
}  // namespace convguard::probe
