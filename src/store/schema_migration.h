// store/schema_migration.h — one versioned schema file, as every store kind embeds it.
//
// Each store kind keeps its schema as NNN_name.sql files (src/store/schema/ for SQLite,
// src/store/schema/pg/ for PostgreSQL) with the same version numbers, so that a store of
// either kind at version N holds the same logical schema. The build embeds the files
// (cmake/StoreSchema.cmake) as a list of SchemaMigration; each store's migration runner
// checks the list with CheckMigrations on every open.
//
// Thread-safety: plain data and a pure function.
#pragma once

#include <span>

#include "convguard/status.h"

namespace convguard {

// One schema file: version NNN from its name "NNN_name.sql", the name without ".sql",
// and its SQL text. The SQL runs inside the runner's transaction and must not BEGIN or
// COMMIT itself.
struct SchemaMigration {
  int version = 0;
  const char* name = "";
  const char* sql = "";
};

// OK when versions are exactly 1, 2, ..., N in order and every file has SQL; otherwise
// kInternal naming the offending entry (a build mistake, caught on every open).
Status CheckMigrations(std::span<const SchemaMigration> migrations);

}  // namespace convguard
