// cli/problem_flags.h — the problem sources that `sweep` and `queue add` read: --grid,
// --list and --log (docs/problem-sources.md), with --algo for problems that name none.
#pragma once

#include <vector>

#include "cli/flags.h"
#include "convguard/probe.h"

namespace convguard::cli {

// Appends every problem of the flags' grids, lists and logs to `jobs`, in that order. What
// was skipped (invalid grid combinations, unread log lines) and a list read as a log are
// reported on stderr, each line starting with `who` ("convguard sweep"). On bad input one
// message goes to stderr and false is returned (the caller exits with status 2).
bool ReadProblemSourceFlags(const FlagParser& flags, const char* who, std::vector<ProbeJob>& jobs);

}  // namespace convguard::cli
