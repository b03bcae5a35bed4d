// convguard/plan.h — plans: how to compute a problem exactly through problems a stack
// handles, and the planner that finds them.
//
// A plan is a tree. Its leaves run a problem as is on a stack with an algorithm whose
// verdict is OK; its inner steps are exact rewrites (padded channels, spatial tiles with
// halos, batch chunks, group slices; docs/rewrites.md). Leaf kinds:
//   "native"              the problem itself, with an algorithm that is OK and has no
//                         bad sibling verdict
//   "algorithm-avoidance" the problem itself with another algorithm of the same backend,
//                         because some algorithm's verdict is bad (e.g. the default HANGs)
//   "backend-fallback"    the problem on another backend of the same machine; considered
//                         only when no plan on the primary stack exists (the last resort)
//
// Exactness. Every rewrite is exact (it computes the same function, proved at the top of
// its file); a leaf is as exact as its verdict says. A leaf whose verdict was checked with
// tolerance 0 reproduced the float64 reference bit for bit on exactly filled data; one
// whose algorithm rounds (Winograd, FFT) passed within its rounding bound, and a plan
// containing it is exact up to that rounding. PlannerOptions::exact_leaves demands
// bit-exact leaves; Plan::exact and PlanTolerance say which kind a plan is.
//
// The planner consults the store only: a plan is made of observations, never guesses.
// With probe_missing it asks a prober (the probe engine, in workers) about sub-problems
// it has no verdict for, within a budget, and plans again. Search is bounded
// (max_depth) and deterministic; the cheapest plan wins: measured times where the store
// has them, else a cost model calibrated from the stack's own measurements.
//
// Thread-safety: value types; MakePlan uses the store from the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "convguard/probe.h"
#include "convguard/problem.h"
#include "convguard/status.h"
#include "convguard/store.h"

namespace convguard {

// A stack a plan may run leaves on: a backend (by registry name) and the stack id it
// reports on this machine.
struct StackChoice {
  std::string backend;
  std::string stack_id;
  std::string summary;    // StackFingerprint::Summary(), for explanations
  bool fallback = false;  // used only when no plan on the primary stacks exists
};

// What a plan step is: a leaf that runs its problem as is (one of three ways, see the
// top of this file), or an exact rewrite.
enum class StepKind { kNative, kAlgorithmAvoidance, kBackendFallback, kRewrite };

struct PlanStep {
  StepKind kind = StepKind::kNative;
  // kRewrite: the rewrite's name (src/rewrite/, e.g. "pad-input-channels"); else empty.
  std::string rewrite;
  // A rewrite's parameters ("c=16->17", "tile=30x30"), or a leaf's reason
  // ("avoids HANG of 'auto'").
  std::string parameters;
  Problem problem;
  // Leaves: where and how the problem runs.
  std::string backend;
  std::string stack_id;
  std::string algorithm;
  double measured_ms = -1.0;  // the verdict's median time; -1 when none was measured
  // The tolerance the leaf's verdict was checked with (Verdict::tolerance): 0 bit-exact,
  // > 0 the algorithm rounds, < 0 not recorded (treated as rounding).
  double tolerance = -1.0;
  // Rewrites: one child per slot, each run runs[i] times per call.
  std::vector<PlanStep> children;
  std::vector<int64_t> runs;
  int64_t bytes_per_call = 0;
  int64_t bytes_per_weight_load = 0;
  // Predicted milliseconds per call of this step, children included.
  double predicted_ms = 0.0;
  // True when this step's time is (or contains) a model estimate, not a measurement.
  bool modelled = false;

  bool is_leaf() const { return children.empty(); }
};

struct Plan {
  PlanStep root;
  // Predicted milliseconds per call of the plan, and of the problem run natively (its
  // measured time when any algorithm finished, else the cost model's estimate).
  double predicted_ms = 0.0;
  double native_ms = 0.0;
  bool native_measured = false;
  int64_t leaves = 0;  // leaf runs per call
  int depth = 0;       // rewrites on the longest path
  bool uses_fallback = false;
  // Every leaf's verdict was checked bit-exact (tolerance 0): on exactly filled data the
  // plan's output equals the float64 reference. False when some leaf's algorithm rounds.
  bool exact = true;
  // predicted_ms / native_ms
  double overhead() const { return native_ms > 0 ? predicted_ms / native_ms : 0.0; }
};

struct PlanReport {
  Problem problem;
  std::string problem_text;        // canonical
  std::optional<Plan> chosen;      // none: no exact plan exists (see suggestions)
  std::vector<Plan> alternatives;  // the next best plans, cheapest first
  // What the store says about the problem as is on the primary stack, one line per
  // algorithm ("auto: HANG"); empty when it has no verdict.
  std::vector<std::string> native_verdicts;
  // When no exact plan exists: options that CHANGE THE MODEL, for a person to weigh.
  // Never applied by convguard.
  std::vector<std::string> suggestions;
  int64_t probes_run = 0;          // probes asked of the prober (probe_missing)
  std::vector<std::string> notes;  // e.g. "probe budget exhausted"
};

struct PlannerOptions {
  int max_depth = 2;           // rewrites composed at most this deep (0: leaves only)
  int max_alternatives = 4;    // alternatives kept in the report
  bool probe_missing = false;  // probe sub-problems without a verdict (needs a prober)
  int probe_budget = 64;       // at most this many probes per plan
  // Cost model: host copy bandwidth for the rewrites' copies, and the throughput and
  // per-call latency assumed for a stack with no measurement to calibrate from.
  double copy_gb_per_s = 8.0;
  double default_gflops = 1.0;
  double call_latency_ms = 0.02;
  // A rewrite that runs device-resident (its node and every leaf below it on the primary
  // backend, whose tensors live in device memory: cuDNN; docs/gpu.md) copies within GPU
  // memory: a queued copy's latency plus its bytes at device bandwidth, instead of host
  // copies. Both are conservative for an H100 (a 2-D copy is queued in about 3 us; its
  // memory moves over 1 TB/s).
  double device_copy_latency_ms = 0.005;
  double device_copy_gb_per_s = 300.0;
  // Use only leaves whose verdict was bit-exact (tolerance 0), never an algorithm that
  // rounds (Winograd, FFT) even when it is OK and faster. A problem whose only OK
  // algorithms round then has no plan (the report's notes say so).
  bool exact_leaves = false;
  // Whether a leaf may run its problem with another algorithm than one that misbehaved
  // (algorithm-avoidance). An ONNX model or a framework that picks its own algorithms
  // cannot make that choice: there, a problem any of whose algorithms misbehaves needs a
  // rewrite, and only "native" leaves (no bad verdict at all) are used.
  bool allow_algorithm_choice = true;
  // Training through a rewritten forward problem: a framework differentiates each leaf of
  // the forward plan, running the leaf's own backward-data and backward-weights problems
  // with algorithms it picks. So every forward leaf must also have both backward problems
  // OK on its stack with no misbehaving verdict (probed with probe_missing when unknown),
  // and plan and native times include the backward problems. Backward problems are
  // planned as themselves.
  bool backward_too = false;
};

// Asked by a prober after each verdict it records: whether the planner now knows a plan
// good enough to stop probing (the prober may then start no further job of the round).
using ProbeEnough = std::function<bool(const Verdict& recorded)>;

// Probes `jobs` on `stack` and records the verdicts in the store the planner reads,
// cheapest first in the order given, and may stop early when `enough` says so (it may
// be empty). Returns how many probes ran. Errors stop the planning.
using Prober = std::function<StatusOr<int64_t>(
    const StackChoice& stack, const std::vector<ProbeJob>& jobs, const ProbeEnough& enough)>;

// Plans `p` on `stacks` (the primary ones first; fallback ones are marked). `prober` is
// used only with options.probe_missing (it may be empty otherwise).
// Errors: an invalid problem, no primary stack, store errors, prober errors.
StatusOr<PlanReport> MakePlan(const Problem& p, const std::vector<StackChoice>& stacks,
                              Store& store, const PlannerOptions& options,
                              const Prober& prober = {});

// A prober that runs jobs through the probe engine, in workers (one engine per backend,
// started on first use and kept warm while the prober lives). `base` configures every
// engine; its backend is replaced by the stack's, and fault rules are dropped for
// fallback stacks. The engine must report the stack id the planner was given (an
// in-process backend and its worker see the same stack), else the probe is an error.
// `store` receives the verdicts and must outlive the prober.
Prober MakeEngineProber(const ProbeOptions& base, Store* store, ProbeCallbacks callbacks = {});

// The tolerance (compare.h's units) a result of `plan` must be checked with on exactly
// filled data: 0 when plan.exact, else DefaultTolerance(root problem, inexact). Rewrites
// add no rounding of their own, so the root's bound covers its rounding leaves.
double PlanTolerance(const Plan& plan);

// "native", "algorithm-avoidance", "backend-fallback", or the rewrite's name: the words of
// the plan text and of the JSON's "kind".
std::string_view StepKindName(const PlanStep& step);

// A plan as indented text for people (one line per step), and as JSON.
std::string PlanToText(const Plan& plan);
std::string PlanToJson(const Plan& plan);
std::string PlanReportToText(const PlanReport& report);
std::string PlanReportToJson(const PlanReport& report);

}  // namespace convguard
