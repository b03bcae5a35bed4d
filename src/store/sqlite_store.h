// store/sqlite_store.h — internals of the SQLite store that tests and the build see.
//
// The public entry point is OpenSqliteStore (convguard/store.h). This header adds:
//   - the schema migrations embedded at build time (the build generates the definition
//     of EmbeddedMigrations() from src/store/schema/NNN_name.sql; see
//     tests/store/CMakeLists.fragment.txt);
//   - an opener that takes an explicit migration list, so that tests can exercise the
//     migration runner with a future "002" without shipping one.
//
// Schema and migration rules: docs/store.md.
//
// Thread-safety: as Store (one object per thread); the functions here are pure.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "convguard/status.h"
#include "convguard/store.h"

namespace convguard {

// One schema file: version NNN from its name "NNN_name.sql", the name without ".sql",
// and its SQL text. The SQL runs inside the runner's transaction and must not BEGIN or
// COMMIT itself.
struct SchemaMigration {
  int version = 0;
  const char* name = "";
  const char* sql = "";
};

// Every schema file of this build, in version order 1, 2, 3, ... (generated at build
// time).
const std::vector<SchemaMigration>& EmbeddedMigrations();

// PRAGMA application_id of every convguard store: "CvGd". A database with tables but
// without this id is not a convguard store and is never written to.
inline constexpr int32_t kSqliteStoreApplicationId = 0x43764764;

// OK when versions are exactly 1, 2, ..., N in order and every file has SQL; otherwise
// kInternal naming the offending entry (a build mistake, caught on every open).
Status CheckMigrations(std::span<const SchemaMigration> migrations);

// OpenSqliteStore with `migrations` in place of EmbeddedMigrations(). For tests.
StatusOr<std::unique_ptr<Store>> OpenSqliteStoreWithMigrations(
    const std::string& path, const SqliteStoreOptions& options,
    std::span<const SchemaMigration> migrations);

}  // namespace convguard
