// store/migrations.h — opening an SQLite file as a convguard store: identifying the
// file before anything writes to it, switching it to WAL, and migrating its schema to
// the newest version (docs/store.md, "Opening a file" and "Migrations").
//
// SchemaMigration and CheckMigrations() are schema_migration.h, shared with the
// PostgreSQL store; EmbeddedMigrations() is declared in sqlite_store.h, where the tests
// and the generated schema source reach it, and defined by the build.
//
// Ownership: the opened Connection is the caller's; `migrations` is read during the call
// only.
// Thread-safety: OpenAndMigrate may run on any thread, and several threads or processes
// may open one file at once: each migration is applied exactly once.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "convguard/status.h"
#include "store/sqlite_db.h"
#include "store/sqlite_store.h"

namespace convguard {

// Opens (creating if absent) the file at `path`, waiting up to `busy_timeout_ms` on
// locks, and brings it to the newest version in `migrations`, with foreign keys on.
// Refuses before writing anything: a malformed migration list (kInternal), a file that
// is not a convguard store (kInvalidArgument), a store newer than `migrations`
// (kUnsupported), a read-only file or one that cannot use WAL (kIOError).
StatusOr<std::unique_ptr<sqlite::Connection>> OpenAndMigrate(
    const std::string& path, int busy_timeout_ms, std::span<const SchemaMigration> migrations);

}  // namespace convguard
