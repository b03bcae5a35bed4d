// cli/sweep_queue.h — `convguard sweep --from-queue`: this host's share of a sweep
// enqueued in a shared PostgreSQL store (docs/work-queue.md).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cli/flags.h"
#include "convguard/probe.h"
#include "convguard/verdict.h"

namespace convguard::cli {

// The flags only a sweep from the queue takes.
std::vector<FlagSpec> QueueSweepFlagSpecs();

// Runs the sweep from the queue with the parsed `flags` (sweep's), printing the verdicts
// this host decided with `print_table` in the format `table`. Returns the exit status.
int SweepFromQueue(const FlagParser& flags, const std::string& table,
                   const std::function<void(const std::vector<Verdict>&, const std::string&,
                                            const std::vector<DeviceStack>&)>& print_table);

}  // namespace convguard::cli
