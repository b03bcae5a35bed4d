// cli/db_transfer.h — `convguard db push TARGET` and `convguard db pull SOURCE`: copying
// the local store's contents into another store, or another's into the local one
// (TransferStore, convguard/store_transfer.h; docs/store.md, "Moving records between
// stores").
#pragma once

#include <string>
#include <vector>

#include "cli/flags.h"

namespace convguard::cli {

// `action` is "push" or "pull"; `rest` the positionals after it; `flags` parsed with
// db's flag specs. Returns the exit status: 0 when everything was copied (conflicts
// included: both verdicts are kept), 2 for bad input (nothing opened or written), 1 when
// a store failed (the report says what was committed before).
int DbTransferMain(const FlagParser& flags, const std::string& action,
                   const std::vector<std::string>& rest);

}  // namespace convguard::cli
