// cli/probe_common.h — what `probe` and `sweep` share: engine flags, the store, output.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/flags.h"
#include "convguard/probe.h"
#include "convguard/store.h"
#include "convguard/verdict.h"

namespace convguard::cli {

// The flags that configure the probe engine and the store.
std::vector<FlagSpec> EngineFlagSpecs();
// The help text describing those flags' defaults, appended to each command's help.
std::string EngineFlagsHelp();

// Builds ProbeOptions from parsed flags, checking every value before anything starts.
StatusOr<ProbeOptions> ProbeOptionsFromFlags(const FlagParser& flags);

// --db-wait: how long a PostgreSQL store waits for its server when it goes away mid-run.
// Every command that takes --db takes it too.
FlagSpec DbWaitFlagSpec();

// The store target (a path or a PostgreSQL connection string): --db, else $CONVGUARD_DB, else
// $XDG_DATA_HOME/convguard/verdicts.sqlite
// (~/.local/share/... when XDG_DATA_HOME is unset). "" with --no-store.
std::string StorePathFromFlags(const FlagParser& flags);
// Opens the store (OpenStore: an SQLite file, creating its folder, or a PostgreSQL
// connection string), or returns null for --no-store. A PostgreSQL store waits
// --db-wait seconds, else $CONVGUARD_DB_WAIT, else 60, for a server that goes away, and
// says so on stderr; a value that is not a number of seconds is kInvalidArgument.
StatusOr<std::unique_ptr<Store>> OpenStoreFromFlags(const FlagParser& flags);
// The options of a PostgreSQL store or work queue opened for these flags: --db-wait (or
// $CONVGUARD_DB_WAIT) and notices on stderr. Errors: a bad --db-wait value.
StatusOr<PostgresStoreOptions> PostgresOptionsFromFlags(const FlagParser& flags);
// The store target as it may be printed (StoreTargetLabel: no password).
std::string StoreLabelFromFlags(const FlagParser& flags);

// Multi-line description of one verdict for people.
std::string FormatVerdict(const Verdict& v, const StackFingerprint* stack);

// The exit status for several verdicts: the most severe one's.
int ExitStatusForVerdicts(const std::vector<Verdict>& verdicts);

}  // namespace convguard::cli
