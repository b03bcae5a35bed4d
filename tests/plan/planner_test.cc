// The planner against a real SQLite store whose verdicts the tests write: which plan it
// picks, why, and what it says when nothing exact works. (The end-to-end path with real
// probes is in guard_test.cc and cli/plan_run_test.cc.)
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convguard/backend.h"
#include "convguard/compare.h"
#include "convguard/plan.h"
#include "convguard/store.h"
#include "convguard/text_forms.h"
#include "support/cli_runner.h"

namespace convguard {
namespace {

using testing_support::MakeTempDir;

Problem SeedHang() {
  StatusOr<Problem> p = ParseProblem("n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd");
  EXPECT_TRUE(p.ok());
  return *p;
}

StackFingerprint Stack(const std::string& backend) {
  StackFingerprint fp;
  fp.backend = backend;
  fp.device = "test device of " + backend;
  fp.library = backend + " 1.0";
  return fp;
}

class PlannerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StatusOr<std::unique_ptr<Store>> s = OpenSqliteStore(MakeTempDir("planner") + "/v.sqlite");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    ASSERT_TRUE(store_->PutStack(primary_).ok());
    ASSERT_TRUE(store_->PutStack(other_).ok());
    stacks_ = {StackChoice{"primary", primary_.Id(), primary_.Summary(), false}};
  }

  // An OK verdict is bit-exact (tolerance 0) unless `tolerance` says it rounds.
  void Put(const StackFingerprint& stack, const Problem& p, const std::string& algo,
           VerdictKind kind, double ms = 1.0, double tolerance = 0.0) {
    Verdict v;
    v.kind = kind;
    v.stack_id = stack.Id();
    v.problem = ToCanonical(p);
    v.algorithm = algo;
    if (kind == VerdictKind::kOk) {
      v.time_ms_min = ms;
      v.time_ms_median = ms;
      v.tolerance = tolerance;
    }
    v.recorded_at = "2026-11-25T00:00:00Z";
    ASSERT_TRUE(store_->PutVerdict(v).ok());
  }

  StatusOr<PlanReport> PlanOf(const Problem& p, PlannerOptions o = {}, const Prober& prober = {}) {
    return MakePlan(p, stacks_, *store_, o, prober);
  }

  StackFingerprint primary_ = Stack("primary");
  StackFingerprint other_ = Stack("other");
  std::unique_ptr<Store> store_;
  std::vector<StackChoice> stacks_;
};

Problem With(Problem p, int64_t Problem::*field, int64_t value) {
  p.*field = value;
  return p;
}

TEST_F(PlannerTest, AnOkProblemRunsAsIs) {
  const Problem p = SeedHang();
  Put(primary_, p, "direct", VerdictKind::kOk, 2.0);
  StatusOr<PlanReport> r = PlanOf(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->chosen.has_value());
  EXPECT_EQ(r->chosen->root.kind, StepKind::kNative);
  EXPECT_EQ(r->chosen->root.algorithm, "direct");
  EXPECT_EQ(r->chosen->leaves, 1);
  EXPECT_DOUBLE_EQ(r->chosen->overhead(), 1.0);
  EXPECT_TRUE(r->chosen->native_measured);
}

TEST_F(PlannerTest, AHangingProblemGetsPaddedChannelsWhenThoseAreOk) {
  const Problem p = SeedHang();
  Put(primary_, p, "direct", VerdictKind::kHang);
  Put(primary_, With(p, &Problem::c, 17), "direct", VerdictKind::kOk, 3.0);
  StatusOr<PlanReport> r = PlanOf(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->chosen.has_value()) << PlanReportToText(*r);
  EXPECT_EQ(r->chosen->root.rewrite, "pad-input-channels");
  EXPECT_EQ(r->chosen->root.parameters, "c=16->17");
  ASSERT_EQ(r->chosen->root.children.size(), 1u);
  EXPECT_EQ(r->chosen->root.children[0].problem, With(p, &Problem::c, 17));
  EXPECT_EQ(r->chosen->root.children[0].kind, StepKind::kNative);
  EXPECT_FALSE(r->chosen->native_measured);  // a HANG has no time
  ASSERT_EQ(r->native_verdicts.size(), 1u);
  EXPECT_NE(r->native_verdicts[0].find("HANG"), std::string::npos);
}

// A padding that runs device-resident (its leaf on cuDNN, whose tensors live in GPU
// memory) copies within GPU memory: the plan is charged a device copy, not host copies
// at host bandwidth. A backend that computes in host memory keeps the host charge.
TEST_F(PlannerTest, ADeviceResidentRewriteIsChargedDeviceCopies) {
  if (!DescribeBackend("cudnn").ok()) GTEST_SKIP() << "this build has no cuDNN backend";
  const Problem p = SeedHang();
  const Problem padded = With(p, &Problem::c, 17);
  const PlannerOptions o;
  double predicted[2] = {0, 0};
  int64_t bytes = 0;
  for (const bool on_gpu : {true, false}) {
    const StackFingerprint stack = Stack(on_gpu ? "cudnn" : "primary");
    ASSERT_TRUE(store_->PutStack(stack).ok());
    stacks_ = {StackChoice{stack.backend, stack.Id(), stack.Summary(), false}};
    Put(stack, p, "implicit-precomp-gemm", VerdictKind::kHang);
    Put(stack, padded, "implicit-precomp-gemm", VerdictKind::kOk, 0.038);
    StatusOr<PlanReport> r = PlanOf(p, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(r->chosen.has_value()) << PlanReportToText(*r);
    EXPECT_EQ(r->chosen->root.rewrite, "pad-input-channels");
    EXPECT_EQ(r->chosen->root.children.at(0).problem, padded);
    bytes = r->chosen->root.bytes_per_call;
    predicted[on_gpu ? 0 : 1] = r->chosen->predicted_ms;
  }
  ASSERT_GT(bytes, 0);
  EXPECT_NEAR(predicted[0],
              0.038 + o.device_copy_latency_ms +
                  static_cast<double>(bytes) / (o.device_copy_gb_per_s * 1e6),
              1e-9);
  EXPECT_NEAR(predicted[1], 0.038 + static_cast<double>(bytes) / (o.copy_gb_per_s * 1e6), 1e-9);
  EXPECT_LT(predicted[0], predicted[1]);
}

TEST_F(PlannerTest, ThePadAmountIsChosenByMeasuredTime) {
  const Problem p = SeedHang();
  Put(primary_, p, "direct", VerdictKind::kHang);
  Put(primary_, With(p, &Problem::c, 17), "direct", VerdictKind::kOk, 9.0);
  Put(primary_, With(p, &Problem::c, 32), "direct", VerdictKind::kOk, 2.0);
  Put(primary_, With(p, &Problem::c, 24), "direct", VerdictKind::kOk, 5.0);
  StatusOr<PlanReport> r = PlanOf(p);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->chosen.has_value());
  EXPECT_EQ(r->chosen->root.parameters, "c=16->32");
  // The others are alternatives, cheapest first.
  ASSERT_GE(r->alternatives.size(), 2u);
  EXPECT_EQ(r->alternatives[0].root.parameters, "c=16->24");
  EXPECT_EQ(r->alternatives[1].root.parameters, "c=16->17");
  EXPECT_LT(r->chosen->predicted_ms, r->alternatives[0].predicted_ms);
}

TEST_F(PlannerTest, AnotherAlgorithmWithAnOkVerdictAvoidsTheBadOne) {
  const Problem p = SeedHang();
  Put(primary_, p, "auto", VerdictKind::kHang);
  Put(primary_, p, "direct", VerdictKind::kOk, 4.0);
  Put(primary_, p, "winograd", VerdictKind::kWrong);
  StatusOr<PlanReport> r = PlanOf(p);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->chosen.has_value());
  EXPECT_EQ(r->chosen->root.kind, StepKind::kAlgorithmAvoidance);
  EXPECT_EQ(r->chosen->root.algorithm, "direct");
  EXPECT_NE(r->chosen->root.parameters.find("HANG of 'auto'"), std::string::npos);
  EXPECT_NE(r->chosen->root.parameters.find("WRONG of 'winograd'"), std::string::npos);
}

// A faster algorithm that rounds (Winograd) wins by default and makes the plan inexact;
// exact leaves demanded set it aside for the bit-exact one.
TEST_F(PlannerTest, ExactLeavesSetAsideAlgorithmsThatRound) {
  const Problem p = SeedHang();
  Put(primary_, p, "direct", VerdictKind::kOk, 4.0);
  Put(primary_, p, "winograd", VerdictKind::kOk, 1.0, /*tolerance=*/1e-5);
  StatusOr<PlanReport> r = PlanOf(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->chosen.has_value());
  EXPECT_EQ(r->chosen->root.algorithm, "winograd");
  EXPECT_EQ(r->chosen->root.tolerance, 1e-5);
  EXPECT_FALSE(r->chosen->exact);
  EXPECT_EQ(PlanTolerance(*r->chosen), DefaultTolerance(p, /*exact_filled=*/false));
  EXPECT_GT(PlanTolerance(*r->chosen), 0.0);
  EXPECT_NE(PlanToText(*r->chosen).find("a leaf rounds"), std::string::npos)
      << PlanToText(*r->chosen);

  PlannerOptions o;
  o.exact_leaves = true;
  r = PlanOf(p, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->chosen.has_value());
  EXPECT_EQ(r->chosen->root.algorithm, "direct");
  EXPECT_TRUE(r->chosen->exact);
  EXPECT_EQ(PlanTolerance(*r->chosen), 0.0);
  EXPECT_NE(PlanToText(*r->chosen).find("bit-exact"), std::string::npos) << PlanToText(*r->chosen);
  ASSERT_EQ(r->notes.size(), 1u);
  EXPECT_NE(r->notes[0].find("'winograd'"), std::string::npos) << r->notes[0];
}

// Inside a rewrite too: a rounding leaf is passed over for a bit-exact one, and a verdict
// whose exactness was not recorded (an older store) counts as rounding.
TEST_F(PlannerTest, ExactLeavesReachIntoRewritesAndDistrustUnrecordedChecks) {
  const Problem p = SeedHang();
  Put(primary_, p, "direct", VerdictKind::kHang);
  Put(primary_, With(p, &Problem::c, 17), "direct", VerdictKind::kOk, 1.0, /*tolerance=*/-1.0);
  Put(primary_, With(p, &Problem::c, 24), "direct", VerdictKind::kOk, 5.0);
  PlannerOptions o;
  o.exact_leaves = true;
  StatusOr<PlanReport> r = PlanOf(p, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->chosen.has_value()) << PlanReportToText(*r);
  EXPECT_EQ(r->chosen->root.parameters, "c=16->24");
  EXPECT_TRUE(r->chosen->exact);
  // Without the demand the faster leaf of unknown exactness wins, and the plan says so.
  r = PlanOf(p);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->chosen.has_value());
  EXPECT_EQ(r->chosen->root.parameters, "c=16->17");
  EXPECT_FALSE(r->chosen->exact);
  EXPECT_NE(PlanToText(*r->chosen).find("exactness not recorded"), std::string::npos);
  // Only rounding leaves: no plan under the demand.
  const Problem q = With(p, &Problem::k, 48);
  Put(primary_, q, "winograd", VerdictKind::kOk, 1.0, 1e-5);
  o.max_depth = 0;
  r = PlanOf(q, o);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->chosen.has_value());
  ASSERT_EQ(r->notes.size(), 1u);
  EXPECT_NE(r->notes[0].find("exact leaves demanded"), std::string::npos);
}

// Where no algorithm can be chosen (an ONNX model, a framework's own pick), a problem
// with a bad algorithm needs a rewrite even though another algorithm of it is OK.
TEST_F(PlannerTest, WithoutAlgorithmChoiceABadAlgorithmMeansARewrite) {
  const Problem p = SeedHang();
  Put(primary_, p, "auto", VerdictKind::kHang);
  Put(primary_, p, "direct", VerdictKind::kOk, 1.0);
  Put(primary_, With(p, &Problem::c, 17), "auto", VerdictKind::kOk, 3.0);
  PlannerOptions o;
  StatusOr<PlanReport> r = PlanOf(p, o);
  ASSERT_TRUE(r.ok() && r->chosen.has_value());
  EXPECT_EQ(r->chosen->root.kind, StepKind::kAlgorithmAvoidance);
  o.allow_algorithm_choice = false;
  r = PlanOf(p, o);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->chosen.has_value()) << PlanReportToText(*r);
  EXPECT_EQ(r->chosen->root.rewrite, "pad-input-channels");
  EXPECT_EQ(r->chosen->root.children[0].kind, StepKind::kNative);
  // A sub-problem with a bad algorithm is no leaf either.
  Put(primary_, With(p, &Problem::c, 17), "direct", VerdictKind::kCrash);
  r = PlanOf(p, o);
  ASSERT_TRUE(r.ok());
  if (r->chosen) {
    EXPECT_NE(
        r->chosen->root.children.empty() ? "" : ToCanonical(r->chosen->root.children[0].problem),
        ToCanonical(With(p, &Problem::c, 17)));
  }
}

TEST_F(PlannerTest, NothingExactGivesNoPlanAndSuggestionsForAPerson) {
  const Problem p = SeedHang();
  Put(primary_, p, "direct", VerdictKind::kHang);
  Put(primary_, With(With(p, &Problem::h, 32), &Problem::w, 32), "direct", VerdictKind::kOk);
  PlannerOptions o;
  o.max_depth = 0;  // leaves only: the 32x32 problem is not a rewrite of the 64x64 one
  StatusOr<PlanReport> r = PlanOf(p, o);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->chosen.has_value());
  ASSERT_FALSE(r->suggestions.empty());
  EXPECT_NE(r->suggestions[0].find("32x32"), std::string::npos) << r->suggestions[0];
  EXPECT_NE(r->suggestions[0].find("changes the model"), std::string::npos);
  const std::string text = PlanReportToText(*r);
  EXPECT_NE(text.find("no exact plan"), std::string::npos);
}

TEST_F(PlannerTest, BackendFallbackIsTheLastResort) {
  const Problem p = SeedHang();
  stacks_.push_back(StackChoice{"other", other_.Id(), other_.Summary(), true});
  Put(primary_, p, "direct", VerdictKind::kHang);
  Put(other_, p, "auto", VerdictKind::kOk, 0.5);
  StatusOr<PlanReport> r = PlanOf(p);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->chosen.has_value());
  EXPECT_EQ(r->chosen->root.kind, StepKind::kBackendFallback);
  EXPECT_EQ(r->chosen->root.backend, "other");
  EXPECT_TRUE(r->chosen->uses_fallback);

  // Once the primary stack has any plan, the (even faster) fallback is not used.
  Put(primary_, With(p, &Problem::k, 33), "direct", VerdictKind::kOk, 7.0);
  r = PlanOf(p);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->chosen.has_value());
  EXPECT_EQ(r->chosen->root.rewrite, "pad-output-channels");
  EXPECT_FALSE(r->chosen->uses_fallback);
}

TEST_F(PlannerTest, ProbeMissingAsksTheProberAndPlansWithWhatItLearned) {
  const Problem p = SeedHang();
  // A stand-in stack for the prober: power-of-two input channels hang, others are OK,
  // and the time grows with the channels. It has two algorithms: "direct" (the default)
  // and "gemm", which hangs too on power-of-two channels. It asks `enough` after each
  // verdict, as the engine does, and starts no further job once told so.
  std::vector<std::pair<std::string, std::string>> asked;  // (problem, algorithm asked)
  int64_t stopped_rounds = 0;
  Prober prober = [&](const StackChoice& stack, const std::vector<ProbeJob>& jobs,
                      const ProbeEnough& enough) -> StatusOr<int64_t> {
    int64_t ran = 0;
    for (const ProbeJob& job : jobs) {
      EXPECT_EQ(stack.stack_id, primary_.Id());
      asked.emplace_back(ToCanonical(job.problem), job.algorithm);
      const bool pow2 = (job.problem.c & (job.problem.c - 1)) == 0;
      const VerdictKind kind = pow2 ? VerdictKind::kHang : VerdictKind::kOk;
      const std::vector<std::string> algos = job.algorithm.empty()
                                                 ? std::vector<std::string>{"direct"}
                                                 : std::vector<std::string>{"direct", "gemm"};
      bool stop = false;
      for (const std::string& algo : algos) {
        Put(primary_, job.problem, algo, kind, static_cast<double>(job.problem.c));
        ++ran;
        StatusOr<std::optional<Verdict>> v =
            store_->GetVerdict({primary_.Id(), ToCanonical(job.problem), algo});
        if (enough && v.ok() && v->has_value() && enough(**v)) stop = true;
      }
      if (stop) {
        ++stopped_rounds;
        break;
      }
    }
    return ran;
  };
  PlannerOptions o;
  o.probe_missing = true;
  StatusOr<PlanReport> r = PlanOf(p, o, prober);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->chosen.has_value()) << PlanReportToText(*r);
  EXPECT_GE(r->probes_run, 2);  // the problem itself first, then a candidate
  ASSERT_FALSE(asked.empty());
  // The problem itself first, with the backend's default algorithm.
  EXPECT_EQ(asked.front(), std::make_pair(ToCanonical(p), std::string()));
  // A problem is asked for every algorithm ("*") only after its default misbehaved.
  for (const auto& [problem, algorithm] : asked) {
    if (algorithm != "*") continue;
    StatusOr<std::optional<Verdict>> d = store_->GetVerdict({primary_.Id(), problem, "direct"});
    ASSERT_TRUE(d.ok() && d->has_value()) << problem;
    EXPECT_NE((*d)->kind, VerdictKind::kOk) << problem;
  }
  // The round stopped as soon as an OK candidate made a plan good enough.
  EXPECT_GE(stopped_rounds, 1);
  // Every leaf of the chosen plan has an OK verdict now.
  std::vector<const PlanStep*> todo = {&r->chosen->root};
  while (!todo.empty()) {
    const PlanStep* s = todo.back();
    todo.pop_back();
    if (s->is_leaf()) {
      StatusOr<std::optional<Verdict>> v =
          store_->GetVerdict({primary_.Id(), ToCanonical(s->problem), s->algorithm});
      ASSERT_TRUE(v.ok() && v->has_value()) << ToCanonical(s->problem);
      EXPECT_EQ((*v)->kind, VerdictKind::kOk);
    }
    for (const PlanStep& c : s->children) todo.push_back(&c);
  }
  // Nothing is asked twice the same way, and planning again asks nothing more.
  std::vector<std::pair<std::string, std::string>> sorted = asked;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end());
  const size_t before = asked.size();
  StatusOr<PlanReport> again = PlanOf(p, o, prober);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(asked.size(), before);
  ASSERT_TRUE(again->chosen.has_value());
  EXPECT_EQ(PlanToText(*again->chosen), PlanToText(*r->chosen));
}

TEST_F(PlannerTest, WithoutAlgorithmChoiceEveryAlgorithmIsProbedAtOnce) {
  // A model (a framework picks its own algorithm) needs every algorithm's verdict: no
  // default-first round, and no round stopped early (the same store, the same plan).
  const Problem p = SeedHang();
  std::vector<std::string> algorithms;
  Prober prober = [&](const StackChoice&, const std::vector<ProbeJob>& jobs,
                      const ProbeEnough& enough) -> StatusOr<int64_t> {
    // A model's rounds are probed whole: no early stop.
    EXPECT_FALSE(enough);
    for (const ProbeJob& job : jobs) {
      algorithms.push_back(job.algorithm);
      const bool pow2 = (job.problem.c & (job.problem.c - 1)) == 0;
      Put(primary_, job.problem, "direct", pow2 ? VerdictKind::kHang : VerdictKind::kOk, 1.0);
    }
    return static_cast<int64_t>(jobs.size());
  };
  PlannerOptions o;
  o.probe_missing = true;
  o.allow_algorithm_choice = false;
  StatusOr<PlanReport> r = PlanOf(p, o, prober);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_FALSE(algorithms.empty());
  for (const std::string& a : algorithms) EXPECT_EQ(a, "*");
}

Problem Dir(Problem p, Direction d) {
  p.direction = d;
  return p;
}

TEST_F(PlannerTest, ForTrainingALeafNeedsItsBackwardProblemsOkToo) {
  // The forward problem runs, but its backward-data problem hangs: inference may run it
  // as is, training may not; padded input channels are OK in every direction.
  const Problem p = With(SeedHang(), &Problem::h, 32);
  const Problem padded = With(p, &Problem::c, 17);
  Put(primary_, p, "direct", VerdictKind::kOk, 1.0);
  Put(primary_, Dir(p, Direction::kBackwardData), "direct", VerdictKind::kHang);
  Put(primary_, Dir(p, Direction::kBackwardWeights), "direct", VerdictKind::kOk, 1.0);
  for (Direction d : {Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights})
    Put(primary_, Dir(padded, d), "direct", VerdictKind::kOk, 1.5);

  StatusOr<PlanReport> inference = PlanOf(p);
  ASSERT_TRUE(inference.ok() && inference->chosen.has_value());
  EXPECT_EQ(inference->chosen->root.kind, StepKind::kNative);

  PlannerOptions training;
  training.backward_too = true;
  StatusOr<PlanReport> r = PlanOf(p, training);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->chosen.has_value()) << PlanReportToText(*r);
  EXPECT_EQ(r->chosen->root.rewrite, "pad-input-channels");
  EXPECT_EQ(r->chosen->root.parameters, "c=16->17");
  // Times count all three directions: the leaf's 3 x 1.5 ms; the problem as is 1 ms
  // forward, 1 ms backward-weights and an estimate for the hanging backward-data.
  EXPECT_DOUBLE_EQ(r->chosen->root.children[0].predicted_ms, 4.5);
  EXPECT_FALSE(r->chosen->native_measured);
  EXPECT_GT(r->chosen->native_ms, 2.0);
  EXPECT_NE(PlanReportToText(*r).find("planned for training"), std::string::npos);

  // A padded problem whose backward-weights problem has no verdict cannot be a leaf
  // without probing.
  Put(primary_, Dir(padded, Direction::kBackwardWeights), "direct", VerdictKind::kWrong);
  StatusOr<PlanReport> blocked = PlanOf(p, training);
  ASSERT_TRUE(blocked.ok());
  EXPECT_FALSE(blocked->chosen.has_value()) << PlanReportToText(*blocked);
}

TEST_F(PlannerTest, ForTrainingUnknownBackwardProblemsAreProbed) {
  const Problem p = SeedHang();
  Put(primary_, p, "direct", VerdictKind::kHang);
  // The stand-in stack: forward problems with 16 input channels hang, every backward-data
  // problem with 17 hangs, everything else is OK.
  std::vector<std::string> asked;
  Prober prober = [&](const StackChoice&, const std::vector<ProbeJob>& jobs,
                      const ProbeEnough&) -> StatusOr<int64_t> {
    for (const ProbeJob& job : jobs) {
      asked.push_back(ToCanonical(job.problem));
      const Problem& q = job.problem;
      const bool hangs = (q.direction == Direction::kForward && q.c == 16) ||
                         (q.direction == Direction::kBackwardData && q.c == 17);
      Put(primary_, q, "direct", hangs ? VerdictKind::kHang : VerdictKind::kOk, 1.0);
    }
    return static_cast<int64_t>(jobs.size());
  };
  PlannerOptions o;
  o.probe_missing = true;
  o.backward_too = true;
  o.probe_budget = 200;
  StatusOr<PlanReport> r = PlanOf(p, o, prober);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->chosen.has_value()) << PlanReportToText(*r);
  const auto was_asked = [&](const Problem& q) {
    return std::find(asked.begin(), asked.end(), ToCanonical(q)) != asked.end();
  };
  EXPECT_TRUE(was_asked(Dir(With(p, &Problem::c, 17), Direction::kBackwardData)));
  // Every leaf is OK in every direction now, and none has 17 input channels.
  std::vector<const PlanStep*> todo = {&r->chosen->root};
  while (!todo.empty()) {
    const PlanStep* s = todo.back();
    todo.pop_back();
    for (const PlanStep& c : s->children) todo.push_back(&c);
    if (!s->is_leaf()) continue;
    EXPECT_NE(s->problem.c, 17) << ToCanonical(s->problem);
    for (Direction d :
         {Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights}) {
      const std::string text = ToCanonical(Dir(s->problem, d));
      VerdictFilter f;
      f.stack_id = primary_.Id();
      f.problem = text;
      StatusOr<std::vector<Verdict>> v = store_->ListVerdicts(f);
      ASSERT_TRUE(v.ok());
      ASSERT_FALSE(v->empty()) << text;
      for (const Verdict& verdict : *v) EXPECT_EQ(verdict.kind, VerdictKind::kOk) << text;
    }
  }
}

TEST_F(PlannerTest, TheProbeBudgetIsRespectedAndSaid) {
  const Problem p = SeedHang();
  int64_t probes = 0;
  Prober prober = [&](const StackChoice&, const std::vector<ProbeJob>& jobs,
                      const ProbeEnough&) -> StatusOr<int64_t> {
    for (const ProbeJob& job : jobs) Put(primary_, job.problem, "direct", VerdictKind::kHang);
    probes += static_cast<int64_t>(jobs.size());
    return static_cast<int64_t>(jobs.size());
  };
  PlannerOptions o;
  o.probe_missing = true;
  o.probe_budget = 3;
  StatusOr<PlanReport> r = PlanOf(p, o, prober);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->chosen.has_value());
  EXPECT_LE(probes, 3);
  EXPECT_EQ(r->probes_run, probes);
  ASSERT_FALSE(r->notes.empty());
  EXPECT_NE(r->notes.back().find("budget"), std::string::npos);
}

TEST_F(PlannerTest, BadOptionsAreRefused) {
  PlannerOptions o;
  o.max_depth = 9;
  StatusOr<PlanReport> r = PlanOf(SeedHang(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("max_depth"), std::string::npos);
  o = {};
  o.probe_missing = true;
  r = PlanOf(SeedHang(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("prober"), std::string::npos);
  Problem bad = SeedHang();
  bad.k = 0;
  r = PlanOf(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PlannerTest, TheJsonReportCarriesThePlanTree) {
  const Problem p = SeedHang();
  Put(primary_, p, "direct", VerdictKind::kHang);
  Put(primary_, With(p, &Problem::k, 33), "direct", VerdictKind::kOk, 3.0);
  StatusOr<PlanReport> r = PlanOf(p);
  ASSERT_TRUE(r.ok());
  const std::string json = PlanReportToJson(*r);
  EXPECT_NE(json.find("\"kind\": \"pad-output-channels\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"parameters\": \"k=32->33\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"measured_ms\": 3.0"), std::string::npos) << json;

  // The step carries its forward pieces, so that a program that is not convguard (the
  // ONNX writer, the PyTorch guard) can run it: one piece, the child's first 32 output
  // channels are P's output.
  const nlohmann::json step = nlohmann::json::parse(json)["plan"]["root"];
  ASSERT_TRUE(step.contains("pieces")) << step.dump(2);
  ASSERT_EQ(step["pieces"].size(), 1u) << step.dump(2);
  const nlohmann::json& piece = step["pieces"][0];
  EXPECT_EQ(piece["slot"], 0);
  EXPECT_EQ(piece["k"], nlohmann::json::array({0, 32}));
  EXPECT_EQ(piece["c"], nlohmann::json::array({0, p.c}));
  EXPECT_EQ(piece["out_h"], nlohmann::json::array({0, p.h}));
}

}  // namespace
}  // namespace convguard
