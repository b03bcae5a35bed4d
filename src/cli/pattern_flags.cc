#include "cli/pattern_flags.h"

namespace convguard::cli {

std::vector<FlagSpec> PatternFlagSpecs() {
  return {
      {"--depth", "N", "most conditions per learned rule, 1 to 12 (default 6)"},
      {"--held-out", "PERCENT", "share of problems kept out of learning, 0 to 90 (default 20)"},
  };
}

Status PatternOptionsFromFlags(const FlagParser& flags, PatternOptions& options) {
  if (flags.Has("--depth")) {
    CG_ASSIGN_OR_RETURN(int64_t depth, ParseIntFlag("--depth", flags.Get("--depth"), 1, 12));
    options.max_depth = static_cast<int>(depth);
  }
  if (flags.Has("--held-out")) {
    CG_ASSIGN_OR_RETURN(int64_t share, ParseIntFlag("--held-out", flags.Get("--held-out"), 0, 90));
    options.held_out_percent = static_cast<int>(share);
  }
  return Status::Ok();
}

}  // namespace convguard::cli
