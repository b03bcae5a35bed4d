// Recommend(): which single change avoids every failure, and its measured cost, on
// verdicts built by hand so that every number can be checked.
#include "convguard/recommend.h"

#include <gtest/gtest.h>

#include <cmath>

namespace convguard {
namespace {

StackFingerprint Stack(std::map<std::string, std::string> knobs = {}) {
  StackFingerprint s;
  s.backend = "torch";
  s.device = "GPU X";
  s.architecture = "arch1";
  s.library = "lib 1.0";
  s.knobs = std::move(knobs);
  return s;
}

Verdict V(const StackFingerprint& s, const std::string& problem, const std::string& algo,
          VerdictKind kind, double median_ms = 0.0) {
  Verdict v;
  v.stack_id = s.Id();
  v.problem = problem;
  v.algorithm = algo;
  v.kind = kind;
  v.time_ms_median = median_ms;
  return v;
}

const Recommendation* Find(const std::vector<Recommendation>& rs, RecommendationKind kind) {
  for (const Recommendation& r : rs)
    if (r.kind == kind) return &r;
  return nullptr;
}

TEST(Recommend, NothingToFixWhenNoVerdictMisbehaves) {
  const StackFingerprint s = Stack();
  std::vector<Recommendation> rs = Recommend(
      {s, {V(s, "p1", "a", VerdictKind::kOk, 1), V(s, "p2", "a", VerdictKind::kUnsupported)}}, {});
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].kind, RecommendationKind::kNothingToFix);
  EXPECT_NE(rs[0].headline.find("2 problems"), std::string::npos) << rs[0].headline;
}

TEST(Recommend, AvoidTheOneFailingAlgorithmWithItsMeasuredCost) {
  const StackFingerprint s = Stack();
  // "fast" hangs on p1; elsewhere it is the fastest. "slow" is OK everywhere.
  const std::vector<Verdict> verdicts = {
      V(s, "p1", "fast", VerdictKind::kHang),    V(s, "p1", "slow", VerdictKind::kOk, 4.0),
      V(s, "p2", "fast", VerdictKind::kOk, 1.0), V(s, "p2", "slow", VerdictKind::kOk, 2.0),
      V(s, "p3", "fast", VerdictKind::kOk, 1.0), V(s, "p3", "slow", VerdictKind::kOk, 8.0),
  };
  std::vector<Recommendation> rs = Recommend({s, verdicts}, {});
  const Recommendation* avoid = Find(rs, RecommendationKind::kAvoidAlgorithm);
  ASSERT_NE(avoid, nullptr);
  EXPECT_EQ(avoid->algorithm, "fast");
  EXPECT_EQ(avoid->failing_problems, 1);
  EXPECT_EQ(avoid->fixed_problems, 1);
  // Cost over p2 (2/1) and p3 (8/1): geometric mean 4, worst 8 on p3.
  EXPECT_EQ(avoid->cost.problems, 2);
  EXPECT_NEAR(avoid->cost.geomean_ratio, 4.0, 1e-9);
  EXPECT_NEAR(avoid->cost.worst_ratio, 8.0, 1e-9);
  EXPECT_EQ(avoid->cost.worst_problem, "p3");
  EXPECT_NE(avoid->headline.find("4.00x"), std::string::npos) << avoid->headline;
  // Always choosing "slow" is the same change here, measured against the best time.
  const Recommendation* use = Find(rs, RecommendationKind::kUseAlgorithm);
  ASSERT_NE(use, nullptr);
  EXPECT_EQ(use->algorithm, "slow");
  EXPECT_EQ(use->cost.problems, 3);  // p1 (4/4), p2 (2/1), p3 (8/1)
  EXPECT_NEAR(use->cost.geomean_ratio, std::cbrt(16.0), 1e-9);
}

TEST(Recommend, AvoidingAnAlgorithmThatIsTheOnlyOkOneIsNotRecommended) {
  const StackFingerprint s = Stack();
  const std::vector<Verdict> verdicts = {
      V(s, "p1", "a", VerdictKind::kCrash),
      V(s, "p1", "b", VerdictKind::kOk, 1.0),
      V(s, "p2", "a", VerdictKind::kOk, 1.0),
      V(s, "p2", "b", VerdictKind::kUnsupported),
  };
  std::vector<Recommendation> rs = Recommend({s, verdicts}, {});
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].kind, RecommendationKind::kNoSingleChange);
  bool said = false;
  for (const std::string& why : rs[0].reasons)
    said = said || why.find("would leave 1 problem with no OK algorithm") != std::string::npos;
  EXPECT_TRUE(said) << ::testing::PrintToString(rs[0].reasons);
}

TEST(Recommend, FailuresUnderSeveralAlgorithmsNeedMoreThanOneChange) {
  const StackFingerprint s = Stack();
  const std::vector<Verdict> verdicts = {
      V(s, "p1", "a", VerdictKind::kHang),
      V(s, "p1", "b", VerdictKind::kOk, 1.0),
      V(s, "p2", "a", VerdictKind::kOk, 1.0),
      V(s, "p2", "b", VerdictKind::kWrong, 1.0),
  };
  std::vector<Recommendation> rs = Recommend({s, verdicts}, {});
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].kind, RecommendationKind::kNoSingleChange);
  EXPECT_EQ(rs[0].failing_problems, 2);
  bool said = false;
  for (const std::string& why : rs[0].reasons)
    said = said || why.find("failures come from 2 algorithms") != std::string::npos;
  EXPECT_TRUE(said) << ::testing::PrintToString(rs[0].reasons);
}

TEST(Recommend, AKnobVariantThatFixesEveryFailureWithItsCost) {
  const StackFingerprint base = Stack({{"MIOPEN_FIND_MODE", "NORMAL"}});
  const StackFingerprint fast = Stack({{"MIOPEN_FIND_MODE", "FAST"}});
  const StackFingerprint other_device = [] {
    StackFingerprint s = Stack({{"MIOPEN_FIND_MODE", "FAST"}});
    s.device = "GPU Y";
    return s;
  }();
  ASSERT_TRUE(AreKnobVariants(base, fast));
  ASSERT_FALSE(AreKnobVariants(base, other_device));
  ASSERT_FALSE(AreKnobVariants(base, base));
  const std::vector<Verdict> here = {V(base, "p1", "d", VerdictKind::kHang),
                                     V(base, "p2", "d", VerdictKind::kOk, 2.0),
                                     V(base, "p3", "d", VerdictKind::kOk, 1.0)};
  const std::vector<Verdict> there = {V(fast, "p1", "d", VerdictKind::kOk, 5.0),
                                      V(fast, "p2", "d", VerdictKind::kOk, 3.0),
                                      V(fast, "p3", "d", VerdictKind::kOk, 1.5)};
  // The other device fixes everything too, but it is not a variant of this stack.
  const std::vector<Verdict> elsewhere = {V(other_device, "p1", "d", VerdictKind::kOk, 1.0)};
  std::vector<Recommendation> rs =
      Recommend({base, here}, {{fast, there}, {other_device, elsewhere}});
  ASSERT_EQ(rs.size(), 1u);
  const Recommendation& r = rs[0];
  EXPECT_EQ(r.kind, RecommendationKind::kSetKnobs);
  EXPECT_EQ(r.variant_stack_id, fast.Id());
  EXPECT_EQ(r.knobs, (std::map<std::string, std::string>{{"MIOPEN_FIND_MODE", "FAST"}}));
  EXPECT_EQ(r.fixed_problems, 1);
  EXPECT_EQ(r.cost.problems, 2);  // p2 and p3, both 1.5x
  EXPECT_NEAR(r.cost.geomean_ratio, 1.5, 1e-9);
  EXPECT_NE(r.headline.find("MIOPEN_FIND_MODE=FAST"), std::string::npos) << r.headline;
}

TEST(Recommend, AVariantThatBreaksOrWasNotProbedSaysWhy) {
  const StackFingerprint base = Stack();
  const StackFingerprint variant = Stack({{"X", "1"}});
  const std::vector<Verdict> here = {V(base, "p1", "d", VerdictKind::kHang),
                                     V(base, "p2", "d", VerdictKind::kHang),
                                     V(base, "p3", "d", VerdictKind::kOk, 1.0)};
  const std::vector<Verdict> there = {V(variant, "p1", "d", VerdictKind::kOk, 1.0),
                                      V(variant, "p3", "d", VerdictKind::kCrash)};
  std::vector<Recommendation> rs = Recommend({base, here}, {{variant, there}});
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].kind, RecommendationKind::kNoSingleChange);
  ASSERT_FALSE(rs[0].reasons.empty());
  const std::string& why = rs[0].reasons.front();
  EXPECT_NE(why.find("X=1"), std::string::npos) << why;
  EXPECT_NE(why.find("fixes 1 of 2"), std::string::npos) << why;
  EXPECT_NE(why.find("1 not probed there"), std::string::npos) << why;
  EXPECT_NE(why.find("1 problem that works here fails there"), std::string::npos) << why;
}

}  // namespace
}  // namespace convguard
