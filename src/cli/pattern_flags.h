// cli/pattern_flags.h — the learner's flags, shared by `pattern` and `report`.
#pragma once

#include <vector>

#include "cli/flags.h"
#include "convguard/pattern.h"
#include "convguard/status.h"

namespace convguard::cli {

// --depth N (1..12) and --held-out PERCENT (0..90).
std::vector<FlagSpec> PatternFlagSpecs();

// Sets options.max_depth and options.held_out_percent from those flags when given.
// kInvalidArgument (or kOutOfRange) naming the flag and what it allows.
Status PatternOptionsFromFlags(const FlagParser& flags, PatternOptions& options);

}  // namespace convguard::cli
