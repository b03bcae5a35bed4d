// plan/internal.h — the planner's parts: leaf choices, the cost model, executable leaves.
//
// Thread-safety: value types and functions of their arguments; BackendLeaf uses its
// backend from one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convguard/backend.h"
#include "convguard/plan.h"
#include "convguard/verdict.h"
#include "rewrite/rewrite.h"

namespace convguard::plan {

// One way to run a problem as is.
struct LeafOption {
  StepKind kind = StepKind::kNative;  // kNative, kAlgorithmAvoidance or kBackendFallback
  std::string reason;                 // why this kind ("avoids HANG of 'auto'"); "" for native
  std::string algorithm;              // "" when unknown (to be probed)
  double measured_ms = -1.0;
  double tolerance = -1.0;  // the verdict's check tolerance (Verdict::tolerance)
  bool unknown = false;     // no verdict yet: a probe would tell
};

// Which OK verdicts may become leaves: any, or only those checked bit-exact.
enum class LeafExactness { kAnyOk, kBitExactOnly };

// algorithm_avoidance.cc: the OK algorithms of a problem on its own (primary) stack,
// fastest first. "native" when no algorithm of the problem misbehaved, else
// "algorithm-avoidance" naming what it avoids.
std::vector<LeafOption> PrimaryLeafOptions(const std::vector<Verdict>& verdicts,
                                           LeafExactness exactness);

// backend_fallback.cc: the OK algorithms of a problem on another backend, fastest
// first, as "backend-fallback" leaves.
std::vector<LeafOption> FallbackLeafOptions(const std::vector<Verdict>& verdicts,
                                            const StackChoice& fallback, LeafExactness exactness);

// One leaf option of `kind` (with `reason`) per usable verdict (OK, and bit-exact when
// asked), fastest first, unmeasured last, ties by algorithm name (so that the same store
// always gives the same plan).
std::vector<LeafOption> UsableLeafOptions(const std::vector<Verdict>& verdicts, StepKind kind,
                                          const std::string& reason, LeafExactness exactness);

// The rewrite application a plan step records (its rewrite, parameters, runs, byte
// counts and child problems), as rewrite::Rewrite::Build and ForwardPieces take it.
rewrite::Application ApplicationOf(const PlanStep& step);

// The forward pieces of a rewrite step (rewrite/rewrite.h, ForwardPiece): how a program
// that is not convguard runs the step with its own operators. Errors: kInternal for an
// unknown rewrite; kInvalidArgument as ForwardPieces (not a forward rewrite step).
StatusOr<std::vector<rewrite::ForwardPiece>> ForwardPiecesOf(const PlanStep& step);

// Whether a verdict says the problem misbehaved (anything but OK and UNSUPPORTED).
bool IsMisbehaviour(VerdictKind kind);

// cost_model.cc: predicted times where nothing was measured.
class CostModel {
 public:
  explicit CostModel(const PlannerOptions& options) : options_(options) {}
  // Learns a stack's throughput from its OK verdicts (median FLOP/s over problems big
  // enough for throughput to dominate; all of them when none is).
  void Calibrate(const std::string& stack_id, const std::vector<Verdict>& ok_verdicts);
  double EstimateMs(const std::string& stack_id, const Problem& p) const;
  // A rewrite's copies per call: host copies, or device copies where the step runs
  // device-resident (PlannerOptions::device_copy_*).
  double CopyMs(int64_t bytes, bool device_resident = false) const;
  double GflopsOf(const std::string& stack_id) const;

 private:
  PlannerOptions options_;
  std::map<std::string, double> gflops_;
};

// backend_leaf.cc: a leaf that runs its problem on an in-process backend. When the
// backend says a run rounded (Winograd, FFT: RunResult::exact false), the leaf clears
// *rounded_sink's "exact" flag, so that a caller checking the output knows to allow a
// tolerance. The backend and the sink must outlive the node.
std::unique_ptr<rewrite::ExecNode> MakeBackendLeaf(Backend& backend, const Problem& p,
                                                   std::string algorithm, bool* exact_sink);

// Builds the executable tree of a plan step. `backends` maps backend names to in-process
// backends that outlive the tree; `exact_sink` as for MakeBackendLeaf.
StatusOr<std::unique_ptr<rewrite::ExecNode>> BuildExecTree(
    const PlanStep& step, const std::map<std::string, Backend*>& backends, bool* exact_sink);

// A leaf on device tensors: p with `algorithm` prepared once on `backend` (a
// DeviceCall); `exact_sink` as for MakeBackendLeaf. Errors as PrepareDeviceCall.
StatusOr<std::unique_ptr<rewrite::DeviceNode>> MakeDeviceLeaf(Backend& backend, const Problem& p,
                                                              const std::string& algorithm,
                                                              bool* exact_sink);

// The same tree on device tensors of `memory` (device-resident guarded execution):
// leaves prepared once on their backend (descriptors, algorithm, workspace: a
// DeviceCall), rewrites as their device nodes. kUnsupported when a step cannot run
// there: a rewrite without a device node, or a leaf on a backend whose device memory is
// not `memory` (another library, or one that computes in host memory).
StatusOr<std::unique_ptr<rewrite::DeviceNode>> BuildDeviceTree(
    const PlanStep& step, const std::map<std::string, Backend*>& backends, DeviceMemory& memory,
    bool* exact_sink);

}  // namespace convguard::plan
