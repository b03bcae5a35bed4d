// Identifying a store file and running its schema migrations. Contract: migrations.h;
// rules for schema files: docs/store.md.
#include "store/migrations.h"

#include <cstdint>
#include <cstdio>
#include <string>

#include "os/system.h"

namespace convguard {
namespace {

using sqlite::Connection;
using sqlite::Int;
using sqlite::Statement;
using sqlite::Text;
using sqlite::Transaction;

struct FileIdentity {
  int64_t application_id = 0;
  int64_t user_version = 0;  // the schema version of a convguard store
  int64_t objects = 0;       // tables, indexes, views, triggers
};

StatusOr<FileIdentity> ReadIdentity(Connection& conn) {
  // One read transaction, so that the three values come from one snapshot: read one by
  // one, another process's first migration could commit between them and the file would
  // look like a foreign database (seen with six processes opening a new store at once).
  const bool own_transaction = conn.Exec("BEGIN").ok();
  auto read = [&]() -> StatusOr<FileIdentity> {
    FileIdentity id;
    CG_ASSIGN_OR_RETURN(id.objects, conn.QueryInt("SELECT count(*) FROM sqlite_master"));
    CG_ASSIGN_OR_RETURN(id.application_id, conn.QueryInt("PRAGMA application_id"));
    CG_ASSIGN_OR_RETURN(id.user_version, conn.QueryInt("PRAGMA user_version"));
    return id;
  };
  StatusOr<FileIdentity> id = read();
  if (own_transaction) (void)conn.Exec("COMMIT");
  return id;
}

std::string KnownVersions(int latest) {
  return latest == 1 ? "version 1" : "versions 1 to " + std::to_string(latest);
}

std::string Hex32(int64_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", static_cast<unsigned>(static_cast<uint32_t>(value)));
  return text;
}

// OK for a convguard store this build can migrate, or for an empty database.
Status CheckIdentity(const FileIdentity& id, const std::string& path, int latest) {
  if (id.application_id == kSqliteStoreApplicationId) {
    if (id.user_version > latest) {
      return Status::Unsupported("store " + path + " has schema version " +
                                 std::to_string(id.user_version) + "; this build of convguard " +
                                 "knows " + KnownVersions(latest) +
                                 " (open it with a newer convguard)");
    }
    return Status::Ok();
  }
  if (id.application_id == 0 && id.user_version == 0 && id.objects == 0) return Status::Ok();
  return Status::InvalidArgument(
      path + " is an SQLite database but not a convguard store (schema objects: " +
      std::to_string(id.objects) + ", application_id " + Hex32(id.application_id) +
      ", user_version " + std::to_string(id.user_version) +
      "; a convguard store has application_id " + Hex32(kSqliteStoreApplicationId) +
      "); refusing to modify it");
}

// Foreign keys are off while migrating (a table rebuild needs that); a migration must
// still leave none broken.
Status CheckForeignKeys(Connection& conn, const std::string& doing) {
  CG_ASSIGN_OR_RETURN(Statement check, conn.Prepare("PRAGMA foreign_key_check"));
  CG_ASSIGN_OR_RETURN(bool violation, check.Step());
  if (violation) {
    return Status::Internal("store " + conn.path() + ": " + doing +
                            ": leaves a foreign key violation in table " + check.ColumnText(0));
  }
  return Status::Ok();
}

// Applies every migration above the stored version, each in its own transaction. The
// version is re-read inside the transaction, so two processes opening a new store at
// once apply each migration exactly once.
Status Migrate(Connection& conn, std::span<const SchemaMigration> migrations) {
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  for (const SchemaMigration& m : migrations) {
    // Most opens find the store up to date: skip without taking the write lock.
    CG_ASSIGN_OR_RETURN(int64_t version, conn.QueryInt("PRAGMA user_version"));
    if (version >= m.version) continue;
    Transaction tx(conn);
    CG_RETURN_IF_ERROR(tx.Begin());
    CG_ASSIGN_OR_RETURN(FileIdentity id, ReadIdentity(conn));
    CG_RETURN_IF_ERROR(CheckIdentity(id, conn.path(), latest));
    if (id.user_version >= m.version) continue;  // rolls back an empty transaction

    const std::string doing = "applying schema migration " + std::string(m.name);
    CG_RETURN_IF_ERROR(
        conn.Exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                  " version INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL,"
                  " applied_at TEXT NOT NULL, tool_version TEXT NOT NULL)"));
    CG_RETURN_IF_ERROR(conn.ExecScript(m.sql, doing));
    if (!conn.InTransaction()) {
      return Status::Internal("store " + conn.path() + ": " + doing +
                              ": the migration ended the runner's transaction (a schema file "
                              "must not BEGIN, COMMIT or ROLLBACK)");
    }
    CG_RETURN_IF_ERROR(CheckForeignKeys(conn, doing));
#ifdef CONVGUARD_VERSION
    const char* tool_version = CONVGUARD_VERSION;
#else
    const char* tool_version = "unknown";
#endif
    CG_RETURN_IF_ERROR(
        conn.Exec("INSERT INTO schema_migrations (version, name, applied_at, tool_version)"
                  " VALUES (?1, ?2, ?3, ?4)",
                  {Int(m.version), Text(m.name), Text(os::UtcNowIso8601()), Text(tool_version)}));
    CG_RETURN_IF_ERROR(
        conn.Exec("PRAGMA application_id = " + std::to_string(kSqliteStoreApplicationId)));
    CG_RETURN_IF_ERROR(conn.Exec("PRAGMA user_version = " + std::to_string(m.version)));
    CG_RETURN_IF_ERROR(tx.Commit());
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<Connection>> OpenAndMigrate(const std::string& path, int busy_timeout_ms,
                                                     std::span<const SchemaMigration> migrations) {
  CG_RETURN_IF_ERROR(CheckMigrations(migrations));
  if (path.empty()) return Status::InvalidArgument("store path is empty");
  if (busy_timeout_ms < 0) {
    return Status::InvalidArgument("busy_timeout_ms = " + std::to_string(busy_timeout_ms) +
                                   " is out of range; allowed 0 and above");
  }
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connection::Open(path, busy_timeout_ms));

  // Identify the file before anything could write to it.
  const int latest = migrations.back().version;
  CG_ASSIGN_OR_RETURN(FileIdentity identity, ReadIdentity(*conn));
  CG_RETURN_IF_ERROR(CheckIdentity(identity, path, latest));
  if (conn->IsReadOnly()) {
    return Status::IOError("store " + path + " is read-only (a store must be writable)");
  }

  // Switching to WAL needs the file to itself for a moment: another connection creating
  // the same new file at that moment makes SQLite answer busy at once (seen with two
  // sweeps, and six threads, creating one store at once), hence the retries.
  const bool in_memory = path == ":memory:";
  CG_ASSIGN_OR_RETURN(std::string mode, conn->QueryTextRetryingBusy("PRAGMA journal_mode = WAL"));
  if (mode != "wal" && !(in_memory && mode == "memory")) {
    return Status::IOError("store " + path + ": cannot switch to WAL journal mode (it stays '" +
                           mode + "'); is it on a file system without shared memory?");
  }
  CG_RETURN_IF_ERROR(conn->Exec("PRAGMA synchronous = NORMAL"));
  CG_RETURN_IF_ERROR(conn->Exec("PRAGMA foreign_keys = OFF"));  // while migrating
  CG_RETURN_IF_ERROR(Migrate(*conn, migrations));
  CG_RETURN_IF_ERROR(conn->Exec("PRAGMA foreign_keys = ON"));
  CG_ASSIGN_OR_RETURN(int64_t foreign_keys, conn->QueryInt("PRAGMA foreign_keys"));
  if (foreign_keys != 1) {
    return Status::Unsupported("store " + path +
                               ": this SQLite library does not enforce "
                               "foreign keys");
  }
  return conn;
}

}  // namespace convguard
