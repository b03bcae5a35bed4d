// The planner's prober through the probe engine: unknown sub-problems are probed in
// workers under the watchdog, never in the planning process.
#include <map>
#include <memory>

#include "convguard/plan.h"

namespace convguard {

Prober MakeEngineProber(const ProbeOptions& base, Store* store, ProbeCallbacks callbacks) {
  auto engines = std::make_shared<std::map<std::string, std::unique_ptr<ProbeEngine>>>();
  return [base, store, callbacks, engines](const StackChoice& stack,
                                           const std::vector<ProbeJob>& jobs,
                                           const ProbeEnough& enough) -> StatusOr<int64_t> {
    std::unique_ptr<ProbeEngine>& engine = (*engines)[stack.backend];
    if (!engine) {
      ProbeOptions o = base;
      o.backend = stack.backend;
      if (stack.fallback) o.fault_rules_path.clear();
      CG_ASSIGN_OR_RETURN(engine, ProbeEngine::Start(o, store, callbacks));
    }
    if (engine->stack().Id() != stack.stack_id) {
      return Status::Internal("the " + stack.backend + " worker reports stack " +
                              engine->stack().Id() + " but the plan is for stack " +
                              stack.stack_id +
                              "; the two see different stacks (environment or fault rules differ)");
    }
    CG_ASSIGN_OR_RETURN(ProbeRunResult run, engine->Run(jobs, enough));
    if (run.interrupted) return Status::Internal("probing was interrupted");
    return static_cast<int64_t>(run.verdicts.size() + run.known.size());
  };
}

}  // namespace convguard
