// cli/plan_common.h — what `plan` and `run` share: flags, the problem, the stacks.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/flags.h"
#include "convguard/guard.h"
#include "convguard/plan.h"
#include "convguard/probe.h"
#include "convguard/store.h"

namespace convguard::cli {

// The planner's flags plus the engine's (for --probe-missing); `for_run` adds run's.
std::vector<FlagSpec> PlanFlagSpecs(bool for_run);
// The help text of the planner's flags and exit statuses, shared by both commands.
std::string PlanFlagsHelp();

// Everything a planning command needs, checked before anything starts.
struct PlanSetup {
  Problem problem;
  GuardOptions guard;
  std::unique_ptr<Store> store;
};

// Parses PROBLEM and the flags, opens the store. kInvalidArgument for bad input.
StatusOr<PlanSetup> PlanSetupFromFlags(const FlagParser& flags);

}  // namespace convguard::cli
