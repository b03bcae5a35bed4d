// Backend fallback: run a problem as is on another backend of the same machine.
//
// Exactness contract: the leaf computes the same problem on another stack whose verdict
// for it is OK (finished in time, matched the float64 reference). The plan's output is
// then as exact as that stack's; data moves between the backends only through the host
// tensors every backend reads and writes.
// Preconditions: the fallback backend runs in this process and the store holds an OK
// verdict for the problem on its stack. The planner offers it only when no plan on the
// primary stack exists: it is the last resort, since the other backend is usually much
// slower (a GPU model falling back to the CPU).
#include "plan/internal.h"

namespace convguard::plan {

std::vector<LeafOption> FallbackLeafOptions(const std::vector<Verdict>& verdicts,
                                            const StackChoice& fallback, LeafExactness exactness) {
  return UsableLeafOptions(verdicts, StepKind::kBackendFallback,
                           "runs on " + fallback.backend + " (stack " + fallback.stack_id + ")",
                           exactness);
}

}  // namespace convguard::plan
