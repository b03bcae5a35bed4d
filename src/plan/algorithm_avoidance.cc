// Algorithm avoidance: run a problem as is, with another algorithm of the same backend.
//
// Exactness contract: the leaf computes the same problem; an algorithm is chosen only
// when its own verdict on this stack is OK, i.e. it finished in time and matched the
// float64 reference (exactly on exact-filled data, or within the tolerance of a
// rounding algorithm such as Winograd, which the verdict records; LeafExactness::
// kBitExactOnly keeps only the former).
// Preconditions: an OK verdict for (stack, problem, algorithm) in the store.
#include <algorithm>

#include "plan/internal.h"

namespace convguard::plan {

bool IsMisbehaviour(VerdictKind kind) {
  return kind != VerdictKind::kOk && kind != VerdictKind::kUnsupported;
}

std::vector<LeafOption> UsableLeafOptions(const std::vector<Verdict>& verdicts, StepKind kind,
                                          const std::string& reason, LeafExactness exactness) {
  std::vector<LeafOption> options;
  for (const Verdict& v : verdicts) {
    if (!IsUsable(v.kind)) continue;
    if (exactness == LeafExactness::kBitExactOnly && v.tolerance != 0.0) continue;
    LeafOption o;
    o.kind = kind;
    o.reason = reason;
    o.algorithm = v.algorithm;
    o.measured_ms = v.time_ms_median > 0 ? v.time_ms_median : -1.0;
    o.tolerance = v.tolerance;
    options.push_back(std::move(o));
  }
  std::stable_sort(options.begin(), options.end(), [](const LeafOption& a, const LeafOption& b) {
    const bool am = a.measured_ms >= 0, bm = b.measured_ms >= 0;
    if (am != bm) return am;
    if (am && a.measured_ms != b.measured_ms) return a.measured_ms < b.measured_ms;
    return a.algorithm < b.algorithm;
  });
  return options;
}

std::vector<LeafOption> PrimaryLeafOptions(const std::vector<Verdict>& verdicts,
                                           LeafExactness exactness) {
  std::string avoided;
  for (const Verdict& v : verdicts) {
    if (!IsMisbehaviour(v.kind)) continue;
    if (!avoided.empty()) avoided += ", ";
    avoided += std::string(VerdictName(v.kind)) + " of '" + v.algorithm + "'";
  }
  return avoided.empty() ? UsableLeafOptions(verdicts, StepKind::kNative, "", exactness)
                         : UsableLeafOptions(verdicts, StepKind::kAlgorithmAvoidance,
                                             "avoids " + avoided, exactness);
}

}  // namespace convguard::plan
