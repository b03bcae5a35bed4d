// store/sqlite_store.h — internals of the SQLite store that tests and the build see.
//
// The public entry point is OpenSqliteStore (convguard/store.h). This header adds:
//   - the schema migrations embedded at build time (SchemaMigration: schema_migration.h;
//     the build generates the definition of EmbeddedMigrations() from
//     src/store/schema/NNN_name.sql, see cmake/StoreSchema.cmake);
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
#include "store/schema_migration.h"

namespace convguard {

// Every schema file of this build, in version order 1, 2, 3, ... (generated at build
// time).
const std::vector<SchemaMigration>& EmbeddedMigrations();

// PRAGMA application_id of every convguard store: "CvGd". A database with tables but
// without this id is not a convguard store and is never written to.
inline constexpr int32_t kSqliteStoreApplicationId = 0x43764764;

// OpenSqliteStore with `migrations` in place of EmbeddedMigrations(). For tests.
StatusOr<std::unique_ptr<Store>> OpenSqliteStoreWithMigrations(
    const std::string& path, const SqliteStoreOptions& options,
    std::span<const SchemaMigration> migrations);

}  // namespace convguard
