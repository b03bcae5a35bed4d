// Guarded execution with real backends in this process and real probes in workers:
// the seed's hanging problem on the emulated RDNA1 stack, and oneDNN under a fault rule.
#include "convguard/guard.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "convguard/compare.h"
#include "convguard/fill.h"
#include "convguard/reference.h"
#include "convguard/text_forms.h"
#include "support/cli_runner.h"

namespace convguard {
namespace {

using testing_support::MakeTempDir;
using testing_support::WriteFile;

Problem Parse(const std::string& text) {
  StatusOr<Problem> p = ParseProblem(text);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return *p;
}

// Fast deadlines: a real hang is decided in about a second.
ProbeOptions QuickProbes(const std::string& backend) {
  ProbeOptions o;
  o.backend = backend;
  o.worker_executable = testing_support::ConvguardBin();
  o.workers_per_device = 2;
  o.deadlines.floor_ms = 300;
  o.deadlines.compile_allowance_ms = 0;
  o.deadlines.confirm_floor_ms = 800;
  o.repeats = 1;
  return o;
}

struct Data {
  ConvTensors<double> exact;
  ConvTensors<float> io;
};

Data ExactData(const Problem& p, uint64_t seed) {
  Data d;
  d.exact = ConvTensors<double>::Allocate(p);
  FillExact(p, seed, d.exact);
  ToFloatOperands(p, d.exact, d.io);
  ReferenceConvolution(p, d.exact);
  return d;
}

void ExpectExact(const Problem& p, const Data& d) {
  const Comparison c = CompareFull(p, ResultTensor(p, d.io), ResultTensor(p, d.exact), 0.0);
  EXPECT_TRUE(c.passed()) << c.Summary();
}

int LeafCount(const PlanStep& s) {
  if (s.is_leaf()) return 1;
  int n = 0;
  for (const PlanStep& c : s.children) n += LeafCount(c);
  return n;
}

class GuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StatusOr<std::unique_ptr<Store>> s = OpenSqliteStore(MakeTempDir("guard") + "/v.sqlite");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  // A guard on `backend` that probes what the store does not know, with fast deadlines.
  StatusOr<std::unique_ptr<Guard>> OpenProbingGuard(const std::string& backend) {
    GuardOptions o;
    o.backend = backend;
    o.planner.probe_missing = true;
    o.probe = QuickProbes(backend);
    return Guard::Open(o, store_.get());
  }

  std::unique_ptr<Store> store_;
};

TEST_F(GuardTest, TheSeedsHangingLayerRunsExactlyOnTheEmulatedStack) {
  StatusOr<std::unique_ptr<Guard>> guard = OpenProbingGuard("emulated-rdna1");
  ASSERT_TRUE(guard.ok()) << guard.status().ToString();
  EXPECT_TRUE((*guard)->stack().is_emulated());

  const Problem p = Parse("n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd");
  StatusOr<const Plan*> plan = (*guard)->PlanFor(p);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_NE((*plan)->root.kind, StepKind::kNative) << PlanToText(**plan);
  // The store now knows the problem hangs as is (probed in a worker, never here).
  VerdictFilter f;
  f.problem = ToCanonical(p);
  StatusOr<std::vector<Verdict>> native = store_->ListVerdicts(f);
  ASSERT_TRUE(native.ok());
  ASSERT_EQ(native->size(), 1u);
  EXPECT_EQ((*native)[0].kind, VerdictKind::kHang);

  Data d = ExactData(p, 7);
  Status s = (*guard)->Run(p, d.io, WeightsAre::kNew);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE((*guard)->last_run_exact());
  ExpectExact(p, d);
}

TEST_F(GuardTest, WeightsAreTransformedOncePerSetOfWeights) {
  StatusOr<std::unique_ptr<Guard>> guard = OpenProbingGuard("emulated-rdna1");
  ASSERT_TRUE(guard.ok()) << guard.status().ToString();
  // 48x48 hangs too; the plan pads channels or tiles, both of which transform weights.
  const Problem p = Parse("n2_c16_h48_w48_k16_r3_s3_p1_u1_d1_g1_f32_nchw_fwd");
  Data first = ExactData(p, 1);
  ASSERT_TRUE((*guard)->Run(p, first.io, WeightsAre::kNew).ok());
  ExpectExact(p, first);

  // New activations, the same weights: reuses the transformed weights.
  Data second = ExactData(p, 2);
  second.io.weight = first.io.weight;
  second.exact.weight = first.exact.weight;
  ReferenceConvolution(p, second.exact);
  ASSERT_TRUE((*guard)->Run(p, second.io, WeightsAre::kUnchanged).ok());
  ExpectExact(p, second);

  // New weights announced as unchanged: the guard keeps computing with the old ones,
  // which is what kUnchanged promises (and why kNew exists).
  Data third = ExactData(p, 3);
  Data third_with_old_weights = third;
  third_with_old_weights.exact.weight = first.exact.weight;
  ReferenceConvolution(p, third_with_old_weights.exact);
  const StatusOr<const Plan*> plan = (*guard)->PlanFor(p);
  ASSERT_TRUE(plan.ok());
  if ((*plan)->root.kind != StepKind::kNative &&
      (*plan)->root.kind != StepKind::kAlgorithmAvoidance) {
    ASSERT_TRUE((*guard)->Run(p, third.io, WeightsAre::kUnchanged).ok());
    third_with_old_weights.io.output = third.io.output;
    ExpectExact(p, third_with_old_weights);
  }
  // And kNew picks the new ones up.
  PoisonWithNaN(third.io.output);
  ASSERT_TRUE((*guard)->Run(p, third.io, WeightsAre::kNew).ok());
  ExpectExact(p, third);
}

TEST_F(GuardTest, EveryDirectionRunsThroughAPlan) {
  StatusOr<std::unique_ptr<Guard>> guard = OpenProbingGuard("emulated-rdna1");
  ASSERT_TRUE(guard.ok()) << guard.status().ToString();
  for (const char* text : {"n2_c8_h10_w9_k6_r3_s2_p1_u2_d1_g2_f32_nhwc_bwd-data",
                           "n3_c4_h7_w11_k6_r2_s3_p0_u1_d2_g1_f32_nchw_bwd-weights"}) {
    const Problem p = Parse(text);
    Data d = ExactData(p, 11);
    Status s = (*guard)->Run(p, d.io, WeightsAre::kNew);
    ASSERT_TRUE(s.ok()) << text << ": " << s.ToString();
    ExpectExact(p, d);
  }
}

#if defined(CONVGUARD_HAVE_ONEDNN)
// oneDNN for real, with a rule that makes 16-input-channel problems spin: the plan must
// avoid c = 16 and still compute the function. Which leaf algorithm wins depends on the
// CPU: where oneDNN has Winograd (AVX-512) it is often fastest and OK within its rounding
// bound, elsewhere it is UNSUPPORTED. So the default plan is checked with the tolerance
// the guard reports (0 when every leaf is bit-exact), and with exact leaves demanded it
// must be bit-exact on every CPU. A wrong rewrite (a halo, an offset, a padding) moves
// values by about their own size and fails either check.
class OneDnnGuardTest : public GuardTest {
 protected:
  StatusOr<std::unique_ptr<Guard>> OpenUnderRule(bool exact_leaves) {
    const std::string rules_text =
        "emulation: oneDNN with 16-channel problems made to spin\nspin when c == 16\n";
    const std::string rules = WriteFile(MakeTempDir("guard-rules") + "/c16.rules", rules_text);
    GuardOptions o;
    o.backend = "onednn";
    o.backend_options.fault_rules = rules_text;
    o.backend_options.fault_rules_origin = rules;
    o.planner.probe_missing = true;
    o.planner.exact_leaves = exact_leaves;
    o.probe = QuickProbes("onednn");
    o.probe.fault_rules_path = rules;
    return Guard::Open(o, store_.get());
  }

  // Plans p, checks that no leaf runs c = 16, runs it; returns the plan.
  const Plan* PlanAndRun(Guard& guard, const Problem& p, Data& d) {
    StatusOr<const Plan*> plan = guard.PlanFor(p);
    EXPECT_TRUE(plan.ok()) << plan.status().ToString();
    if (!plan.ok()) return nullptr;
    EXPECT_GE(LeafCount((*plan)->root), 1);
    std::vector<const PlanStep*> todo = {&(*plan)->root};
    while (!todo.empty()) {
      const PlanStep* step = todo.back();
      todo.pop_back();
      if (step->is_leaf()) {
        EXPECT_NE(step->problem.c, 16) << ToCanonical(step->problem);
      }
      for (const PlanStep& c : step->children) todo.push_back(&c);
    }
    Status s = guard.Run(p, d.io, WeightsAre::kNew);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return *plan;
  }
};

TEST_F(OneDnnGuardTest, UnderAFaultRuleThePlanMeetsItsLeavesTolerance) {
  StatusOr<std::unique_ptr<Guard>> guard = OpenUnderRule(/*exact_leaves=*/false);
  ASSERT_TRUE(guard.ok()) << guard.status().ToString();
  const Problem p = Parse("n2_c16_h20_w20_k24_r3_s3_p1_u1_d1_g1_f32_nchw_fwd");
  Data d = ExactData(p, 5);
  const Plan* plan = PlanAndRun(**guard, p, d);
  ASSERT_NE(plan, nullptr);
  // The guard's tolerance is the plan's: 0 exactly when every leaf's verdict was exact.
  EXPECT_EQ((*guard)->last_run_exact(), plan->exact) << PlanToText(*plan);
  EXPECT_EQ((*guard)->last_run_tolerance(), PlanTolerance(*plan));
  if (plan->exact) {
    EXPECT_EQ((*guard)->last_run_tolerance(), 0.0);
  } else {
    EXPECT_EQ((*guard)->last_run_tolerance(), DefaultTolerance(p, /*exact_filled=*/false));
  }
  const Comparison c = CompareFull(p, ResultTensor(p, d.io), ResultTensor(p, d.exact),
                                   (*guard)->last_run_tolerance());
  EXPECT_TRUE(c.passed()) << c.Summary() << "\n" << PlanToText(*plan);
  EXPECT_FALSE(c.mistrusted) << c.Summary();
}

TEST_F(OneDnnGuardTest, ExactLeavesDemandedGiveABitExactResultOnEveryCpu) {
  StatusOr<std::unique_ptr<Guard>> guard = OpenUnderRule(/*exact_leaves=*/true);
  ASSERT_TRUE(guard.ok()) << guard.status().ToString();
  const Problem p = Parse("n2_c16_h20_w20_k24_r3_s3_p1_u1_d1_g1_f32_nchw_fwd");
  Data d = ExactData(p, 5);
  const Plan* plan = PlanAndRun(**guard, p, d);
  ASSERT_NE(plan, nullptr);
  EXPECT_TRUE(plan->exact) << PlanToText(*plan);
  std::vector<const PlanStep*> todo = {&plan->root};
  while (!todo.empty()) {
    const PlanStep* step = todo.back();
    todo.pop_back();
    if (step->is_leaf()) {
      EXPECT_EQ(step->tolerance, 0.0) << step->algorithm;
    }
    for (const PlanStep& c : step->children) todo.push_back(&c);
  }
  EXPECT_TRUE((*guard)->last_run_exact());
  EXPECT_EQ((*guard)->last_run_tolerance(), 0.0);
  ExpectExact(p, d);
}
#endif

TEST_F(GuardTest, ClearErrors) {
  GuardOptions o;
  o.probe.worker_executable = testing_support::ConvguardBin();  // workers identify the stacks
  o.backend = "torch";
  StatusOr<std::unique_ptr<Guard>> g = Guard::Open(o, store_.get());
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("Python worker"), std::string::npos);

  o.backend = "no-such-backend";
  g = Guard::Open(o, store_.get());
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kNotFound);

  o.backend = "reference";
  o.fallbacks = {"reference"};
  g = Guard::Open(o, store_.get());
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("named twice"), std::string::npos);

  o.fallbacks = {};
  g = Guard::Open(o, nullptr);
  ASSERT_FALSE(g.ok());

  // Without probing and with an empty store there is no plan, and the error says so.
  g = Guard::Open(o, store_.get());
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const Problem p = Parse("n1_c4_h8_w8_k4_r3_s3_p1");
  ConvTensors<float> io = ConvTensors<float>::Allocate(p);
  Status s = (*g)->Run(p, io, WeightsAre::kNew);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("no exact plan"), std::string::npos);

  // Wrongly sized tensors are refused before anything runs.
  Verdict ok;
  ok.kind = VerdictKind::kOk;
  ok.stack_id = (*g)->stack().Id();
  ok.problem = ToCanonical(p);
  ok.algorithm = "direct";
  ok.time_ms_median = 1;
  ASSERT_TRUE(store_->PutVerdict(ok).ok());
  (*g)->ClearCache();
  io.output.resize(3);
  s = (*g)->Run(p, io, WeightsAre::kNew);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("not sized"), std::string::npos);

  // A backend that computes in host memory takes no device tensors, and says what to do.
  io = ConvTensors<float>::Allocate(p);
  const DeviceTensors host_addresses{io.input.data(), io.weight.data(), io.output.data(), nullptr};
  s = (*g)->RunOnDevice(p, host_addresses, WeightsAre::kNew);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("computes in host memory"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("pass host tensors to Run"), std::string::npos) << s.ToString();
  EXPECT_FALSE((*g)->last_run_device_resident());
  // Run still works on the same guard.
  s = (*g)->Run(p, io, WeightsAre::kNew);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

}  // namespace
}  // namespace convguard
