// The SQLite implementation of Store. Schema, migrations and file format: docs/store.md.
//
// Every write runs in a BEGIN IMMEDIATE transaction: it takes SQLite's write lock up
// front (waiting up to busy_timeout_ms for another process), so that the reads a write
// decides on (does a verdict exist? who holds the claim?) cannot change before it
// commits. Reads outside transactions see the last committed state (WAL mode).
#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <map>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "convguard/store.h"
#include "store/json_records.h"

namespace convguard {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------
// Time

// UTC, ISO 8601 to the second: "2026-11-25T15:10:57Z" (sorts as text).
std::string UtcNowIso8601() {
  using namespace std::chrono;
  const auto now = floor<seconds>(system_clock::now());
  const auto day = floor<days>(now);
  const year_month_day ymd{day};
  const hh_mm_ss hms{now - day};
  char text[32];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return text;
}

// Wall-clock Unix time: claims are compared across processes and hosts, so a monotonic
// clock (per boot, per host) cannot be used.
double UnixNowSeconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// ---------------------------------------------------------------------------------------
// A thin, Status-returning layer over the SQLite C API.

using SqlValue = std::variant<std::nullptr_t, int64_t, double, std::string_view>;

// Non-finite doubles are stored as NULL: SQLite turns NaN into NULL anyway, and the
// authoritative JSON record keeps the exact value.
SqlValue Real(double d) { return std::isfinite(d) ? SqlValue(d) : SqlValue(nullptr); }
SqlValue Int(int64_t i) { return SqlValue(i); }
SqlValue Text(std::string_view s) { return SqlValue(s); }
SqlValue OptText(const std::optional<std::string>& s) {
  return s ? SqlValue(std::string_view(*s)) : SqlValue(nullptr);
}

class Connection;

class Statement {
 public:
  Statement(Connection* conn, sqlite3_stmt* stmt) : conn_(conn), stmt_(stmt) {}
  Statement(Statement&& other) noexcept
      : conn_(other.conn_), stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement& operator=(Statement&&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  // Binds ?1, ?2, ... in order.
  Status Bind(std::initializer_list<SqlValue> values);
  // true: a row is ready; false: done.
  StatusOr<bool> Step();

  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }
  double ColumnReal(int col) const {
    return IsNull(col) ? std::nan("") : sqlite3_column_double(stmt_, col);
  }
  std::string ColumnText(int col) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return text ? std::string(text, sqlite3_column_bytes(stmt_, col)) : std::string();
  }

 private:
  Connection* conn_;
  sqlite3_stmt* stmt_;
};

class Connection {
 public:
  Connection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { sqlite3_close_v2(db_); }

  sqlite3* db() const { return db_; }
  const std::string& path() const { return path_; }

  // A Status for SQLite result code `rc`, naming the file and what was being done.
  Status Error(int rc, std::string_view doing) const {
    const char* detail = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    std::string message = "store " + path_ + ": " + std::string(doing) + ": " + detail;
    switch (rc & 0xff) {
      case SQLITE_NOTADB:
        return Status::InvalidArgument(path_ + " is not an SQLite database (" + detail + ")");
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return Status::IOError(message +
                               " (another connection held the lock longer than "
                               "the busy timeout)");
      case SQLITE_NOMEM:
        return Status::ResourceExhausted(message);
      case SQLITE_CANTOPEN:
      case SQLITE_IOERR:
      case SQLITE_CORRUPT:
      case SQLITE_FULL:
      case SQLITE_READONLY:
      case SQLITE_PERM:
      case SQLITE_PROTOCOL:
        return Status::IOError(message);
      default:
        return Status::Internal(message);
    }
  }

  StatusOr<Statement> Prepare(std::string_view sql) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return Error(rc, "preparing \"" + std::string(sql.substr(0, 60)) + "\"");
    }
    return Statement(this, stmt);
  }

  // Runs one statement to completion.
  Status Exec(std::string_view sql, std::initializer_list<SqlValue> values = {}) {
    CG_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
    CG_RETURN_IF_ERROR(stmt.Bind(values));
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return Status::Ok();
    }
  }

  // Runs a script of several statements (a migration).
  Status ExecScript(const char* sql, std::string_view doing) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
    if (rc == SQLITE_OK) return Status::Ok();
    std::string detail = error ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    Status s = Error(rc, doing);
    return Status(s.code(), "store " + path_ + ": " + std::string(doing) + ": " + detail);
  }

  // One integer from a query returning one row (0 when no row).
  StatusOr<int64_t> QueryInt(std::string_view sql, std::initializer_list<SqlValue> values = {}) {
    CG_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
    CG_RETURN_IF_ERROR(stmt.Bind(values));
    CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
    return row ? stmt.ColumnInt(0) : 0;
  }

 private:
  sqlite3* db_;
  std::string path_;
};

Status Statement::Bind(std::initializer_list<SqlValue> values) {
  int index = 1;
  for (const SqlValue& value : values) {
    int rc = SQLITE_OK;
    if (std::holds_alternative<std::nullptr_t>(value)) {
      rc = sqlite3_bind_null(stmt_, index);
    } else if (const auto* i = std::get_if<int64_t>(&value)) {
      rc = sqlite3_bind_int64(stmt_, index, *i);
    } else if (const auto* d = std::get_if<double>(&value)) {
      rc = sqlite3_bind_double(stmt_, index, *d);
    } else {
      std::string_view s = std::get<std::string_view>(value);
      rc = sqlite3_bind_text64(stmt_, index, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    if (rc != SQLITE_OK) return conn_->Error(rc, "binding parameter " + std::to_string(index));
    ++index;
  }
  return Status::Ok();
}

StatusOr<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const char* sql = sqlite3_sql(stmt_);
  return conn_->Error(rc, "running \"" + std::string(sql ? sql : "").substr(0, 60) + "\"");
}

// A transaction that rolls back unless committed.
class Transaction {
 public:
  explicit Transaction(Connection& conn) : conn_(conn) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    // SQLite may already have rolled back by itself after some errors.
    if (active_ && !sqlite3_get_autocommit(conn_.db())) {
      sqlite3_exec(conn_.db(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }

  // "BEGIN IMMEDIATE" for writes (takes the write lock now), "BEGIN" for a consistent read.
  Status Begin(const char* begin = "BEGIN IMMEDIATE") {
    CG_RETURN_IF_ERROR(conn_.Exec(begin));
    active_ = true;
    return Status::Ok();
  }
  Status Commit() {
    CG_RETURN_IF_ERROR(conn_.Exec("COMMIT"));
    active_ = false;
    return Status::Ok();
  }

 private:
  Connection& conn_;
  bool active_ = false;
};

// Runs `f`, turning any exception into a Status: exceptions never cross the API.
template <typename F>
auto Guarded(std::string_view what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted(std::string(what) + ": out of memory");
  } catch (const std::exception& e) {
    return Status::Internal(std::string(what) + ": unexpected exception: " + e.what());
  } catch (...) {
    return Status::Internal(std::string(what) + ": unexpected exception");
  }
}

// ---------------------------------------------------------------------------------------
// Opening and migrating

// The first column of the first row as text ("" when no row); the statement is finished
// before this returns (an unfinished one would block COMMIT).
// Switches the file to WAL (a no-op when it already is). The switch needs the file to
// itself for a moment, and SQLite answers SQLITE_BUSY at once, without calling the busy
// handler, when another connection is opening the same new file at that moment (seen
// with two sweeps, and six threads, creating one store at once). So it is retried here,
// for as long as the busy timeout allows.
StatusOr<std::string> SwitchToWal(Connection& conn, int busy_timeout_ms) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms);
  for (;;) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(conn.db(), "PRAGMA journal_mode = WAL", -1, &raw, nullptr);
    std::string mode;
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(raw);
      if (rc == SQLITE_ROW) {
        const unsigned char* text = sqlite3_column_text(raw, 0);
        mode = text != nullptr ? reinterpret_cast<const char*>(text) : "";
        rc = SQLITE_OK;
      }
    }
    sqlite3_finalize(raw);
    if (rc == SQLITE_OK || rc == SQLITE_DONE) return mode;
    const int primary = rc & 0xff;
    if ((primary != SQLITE_BUSY && primary != SQLITE_LOCKED) || std::chrono::steady_clock::now() >= give_up) {
      return conn.Error(rc, "running \"PRAGMA journal_mode = WAL\"");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

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
    if (sqlite3_get_autocommit(conn.db())) {
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
                  {Int(m.version), Text(m.name), Text(UtcNowIso8601()), Text(tool_version)}));
    CG_RETURN_IF_ERROR(
        conn.Exec("PRAGMA application_id = " + std::to_string(kSqliteStoreApplicationId)));
    CG_RETURN_IF_ERROR(conn.Exec("PRAGMA user_version = " + std::to_string(m.version)));
    CG_RETURN_IF_ERROR(tx.Commit());
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Records

bool SameIdentity(StackFingerprint a, StackFingerprint b) {
  a.tool_version.clear();
  b.tool_version.clear();
  return a == b;
}

Status CheckKey(const VerdictKey& key) {
  if (key.stack_id.empty()) return Status::InvalidArgument("verdict key: stack_id is empty");
  if (key.problem.empty()) return Status::InvalidArgument("verdict key: problem is empty");
  if (key.algorithm.empty()) return Status::InvalidArgument("verdict key: algorithm is empty");
  return Status::Ok();
}

VerdictKey KeyOf(const Verdict& v) { return {v.stack_id, v.problem, v.algorithm}; }

std::string KeyText(const VerdictKey& k) {
  return k.stack_id + " / " + k.problem + " / " + k.algorithm;
}

// The canonical text of a stored or new verdict: equal texts mean equal verdicts.
std::string VerdictRecord(const Verdict& v) { return DumpJson(ToJson(v)); }

StatusOr<Verdict> ParseStoredVerdict(const std::string& record, const std::string& path) {
  StatusOr<json> j = ParseJson(record);
  StatusOr<Verdict> v = j.ok() ? VerdictFromJson(*j) : StatusOr<Verdict>(j.status());
  if (!v.ok()) {
    return Status::Internal("store " + path +
                            ": a stored verdict is unreadable: " + v.status().message());
  }
  return v;
}

StatusOr<StackFingerprint> ParseStoredStack(const std::string& record, const std::string& path) {
  StatusOr<json> j = ParseJson(record);
  StatusOr<StackFingerprint> s =
      j.ok() ? StackFromJson(*j) : StatusOr<StackFingerprint>(j.status());
  if (!s.ok()) {
    return Status::Internal("store " + path +
                            ": a stored stack is unreadable: " + s.status().message());
  }
  return s;
}

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<Connection> conn, SqliteStoreOptions options)
      : conn_(std::move(conn)), options_(std::move(options)) {}

  Status PutStack(const StackFingerprint& stack) override {
    return Guarded("PutStack", [&] { return PutStackImpl(stack); });
  }
  StatusOr<std::optional<StackFingerprint>> GetStack(const std::string& stack_id) override {
    return Guarded("GetStack", [&] { return GetStackImpl(stack_id); });
  }
  StatusOr<std::vector<StackFingerprint>> ListStacks() override {
    return Guarded("ListStacks", [&] { return ListStacksImpl(); });
  }
  Status PutVerdict(const Verdict& v) override {
    return Guarded("PutVerdict", [&] { return PutVerdictImpl(v); });
  }
  StatusOr<std::optional<Verdict>> GetVerdict(const VerdictKey& key) override {
    return Guarded("GetVerdict", [&] { return GetVerdictImpl(key); });
  }
  StatusOr<std::vector<Verdict>> ListVerdicts(const VerdictFilter& filter) override {
    return Guarded("ListVerdicts", [&] { return ListVerdictsImpl(filter); });
  }
  Status AddAttempt(const Attempt& a) override {
    return Guarded("AddAttempt", [&] { return AddAttemptImpl(a); });
  }
  StatusOr<std::vector<Attempt>> ListAttempts(const VerdictKey& key) override {
    return Guarded("ListAttempts", [&] { return ListAttemptsImpl(key); });
  }
  StatusOr<ClaimResult> Claim(const VerdictKey& key, const std::string& owner, bool redo,
                              double stale_after_s) override {
    return Guarded("Claim", [&] { return ClaimImpl(key, owner, redo, stale_after_s); });
  }
  Status Release(const std::string& owner, const std::optional<VerdictKey>& key) override {
    return Guarded("Release", [&] { return ReleaseImpl(owner, key); });
  }
  StatusOr<std::string> ExportJsonLines(const VerdictFilter& filter) override {
    return Guarded("ExportJsonLines", [&] { return ExportImpl(filter); });
  }
  StatusOr<ImportReport> ImportJsonLines(const std::string& text, bool replace) override {
    return Guarded("ImportJsonLines", [&] { return ImportImpl(text, replace); });
  }

 private:
  struct StoredStack {
    StackFingerprint fingerprint;
    std::string first_seen;
    std::string last_seen;
  };

  // -- stacks --

  StatusOr<std::optional<StoredStack>> ReadStack(const std::string& stack_id) {
    CG_ASSIGN_OR_RETURN(Statement stmt,
                        conn_->Prepare("SELECT fingerprint, first_seen, last_seen FROM stacks "
                                       "WHERE id = ?1"));
    CG_RETURN_IF_ERROR(stmt.Bind({Text(stack_id)}));
    CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<StoredStack>();
    CG_ASSIGN_OR_RETURN(StackFingerprint fp, ParseStoredStack(stmt.ColumnText(0), path()));
    return std::optional<StoredStack>(
        StoredStack{std::move(fp), stmt.ColumnText(1), stmt.ColumnText(2)});
  }

  Status CheckStackFields(const StackFingerprint& stack) {
    if (stack.backend.empty()) {
      return Status::InvalidArgument("stack fingerprint: backend is empty");
    }
    return Status::Ok();
  }

  // Inserts a new stack, or merges the seen-times of a stored one. REQUIRES: in a write
  // transaction, and no stored stack under the same id with another identity.
  Status WriteStack(const StackFingerprint& stack, const std::string& first_seen,
                    const std::string& last_seen) {
    return conn_->Exec(
        "INSERT INTO stacks (id, fingerprint, emulated, first_seen, last_seen)"
        " VALUES (?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT (id) DO UPDATE SET"
        "  first_seen = min(first_seen, excluded.first_seen),"
        "  last_seen = max(last_seen, excluded.last_seen)",
        {Text(stack.Id()), Text(DumpJson(ToJson(stack))), Int(stack.is_emulated() ? 1 : 0),
         Text(first_seen), Text(last_seen)});
  }

  Status StackCollision(const StackFingerprint& stored, const StackFingerprint& given) {
    return Status::Internal("store " + path() + ": stack id " + given.Id() +
                            " is already used by a different stack (stored: " + stored.Summary() +
                            "; given: " + given.Summary() + ")");
  }

  Status PutStackImpl(const StackFingerprint& stack) {
    CG_RETURN_IF_ERROR(CheckStackFields(stack));
    Transaction tx(*conn_);
    CG_RETURN_IF_ERROR(tx.Begin());
    CG_ASSIGN_OR_RETURN(std::optional<StoredStack> stored, ReadStack(stack.Id()));
    if (stored && !SameIdentity(stored->fingerprint, stack)) {
      return StackCollision(stored->fingerprint, stack);
    }
    const std::string now = UtcNowIso8601();
    CG_RETURN_IF_ERROR(WriteStack(stack, now, now));
    return tx.Commit();
  }

  StatusOr<std::optional<StackFingerprint>> GetStackImpl(const std::string& stack_id) {
    CG_ASSIGN_OR_RETURN(std::optional<StoredStack> stored, ReadStack(stack_id));
    if (!stored) return std::optional<StackFingerprint>();
    return std::optional<StackFingerprint>(std::move(stored->fingerprint));
  }

  StatusOr<std::vector<StackFingerprint>> ListStacksImpl() {
    CG_ASSIGN_OR_RETURN(Statement stmt,
                        conn_->Prepare("SELECT fingerprint FROM stacks ORDER BY id"));
    std::vector<StackFingerprint> out;
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return out;
      CG_ASSIGN_OR_RETURN(StackFingerprint fp, ParseStoredStack(stmt.ColumnText(0), path()));
      out.push_back(std::move(fp));
    }
  }

  Status RequireStack(const std::string& stack_id) {
    CG_ASSIGN_OR_RETURN(int64_t known, conn_->QueryInt("SELECT count(*) FROM stacks WHERE id = ?1",
                                                       {Text(stack_id)}));
    if (known == 0) {
      return Status::NotFound("stack " + stack_id + " is not in store " + path() +
                              " (PutStack it first)");
    }
    return Status::Ok();
  }

  // -- verdicts --

  StatusOr<std::optional<std::string>> ReadVerdictRecord(const VerdictKey& key) {
    CG_ASSIGN_OR_RETURN(Statement stmt,
                        conn_->Prepare("SELECT record FROM verdicts WHERE stack_id = ?1 AND "
                                       "problem = ?2 AND algorithm = ?3"));
    CG_RETURN_IF_ERROR(stmt.Bind({Text(key.stack_id), Text(key.problem), Text(key.algorithm)}));
    CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(stmt.ColumnText(0));
  }

  Status InsertAttemptRow(const VerdictKey& key, int64_t attempt_number, std::string_view outcome,
                          double deadline_ms, double elapsed_ms, int64_t worker_pid,
                          std::string_view started_at, std::string_view detail) {
    return conn_->Exec(
        "INSERT INTO attempts (stack_id, problem, algorithm, attempt_number, outcome,"
        " deadline_ms, elapsed_ms, worker_pid, started_at, detail, stored_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        {Text(key.stack_id), Text(key.problem), Text(key.algorithm), Int(attempt_number),
         Text(outcome), Real(deadline_ms), Real(elapsed_ms), Int(worker_pid), Text(started_at),
         Text(detail), Text(UtcNowIso8601())});
  }

  // Moves the stored verdict `old_record` of `key` to the history. REQUIRES: in a write
  // transaction.
  Status Supersede(const VerdictKey& key, const std::string& old_record) {
    StatusOr<Verdict> old = ParseStoredVerdict(old_record, path());
    // An unreadable old record is still kept, verbatim, in `detail`.
    const double deadline = old.ok() ? old->deadline_ms : 0.0;
    const double elapsed = old.ok() ? old->elapsed_ms : 0.0;
    const std::string recorded_at = old.ok() ? old->recorded_at : "";
    return InsertAttemptRow(key, 0, "superseded", deadline, elapsed, 0, recorded_at, old_record);
  }

  // Inserts or replaces the row of `v`. REQUIRES: in a write transaction.
  Status WriteVerdictRow(const Verdict& v, const std::string& record) {
    return conn_->Exec(
        "INSERT OR REPLACE INTO verdicts (stack_id, problem, algorithm, kind, time_ms_min,"
        " time_ms_median, crash_signal, exit_code, message, check_method, max_abs_error,"
        " max_rel_error, mismatches, non_finite, implementation, attempts, deadline_ms,"
        " elapsed_ms, tool_version, recorded_at, repro, emulated, record, stored_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
        " ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
        {Text(v.stack_id),       Text(v.problem),
         Text(v.algorithm),      Text(VerdictName(v.kind)),
         Real(v.time_ms_min),    Real(v.time_ms_median),
         Int(v.crash_signal),    Int(v.exit_code),
         Text(v.message),        Text(v.check),
         Real(v.max_abs_error),  Real(v.max_rel_error),
         Int(v.mismatches),      Int(v.non_finite),
         Text(v.implementation), Int(v.attempts),
         Real(v.deadline_ms),    Real(v.elapsed_ms),
         Text(v.tool_version),   Text(v.recorded_at),
         Text(v.repro),          Int(v.emulated ? 1 : 0),
         Text(record),           Text(UtcNowIso8601())});
  }

  Status ReleaseClaimOn(const VerdictKey& key) {
    return conn_->Exec("DELETE FROM claims WHERE stack_id = ?1 AND problem = ?2 AND algorithm = ?3",
                       {Text(key.stack_id), Text(key.problem), Text(key.algorithm)});
  }

  Status PutVerdictImpl(const Verdict& v) {
    const VerdictKey key = KeyOf(v);
    CG_RETURN_IF_ERROR(CheckKey(key));
    const std::string record = VerdictRecord(v);
    Transaction tx(*conn_);
    CG_RETURN_IF_ERROR(tx.Begin());
    CG_RETURN_IF_ERROR(RequireStack(v.stack_id));
    CG_ASSIGN_OR_RETURN(std::optional<std::string> old, ReadVerdictRecord(key));
    if (old && *old != record) CG_RETURN_IF_ERROR(Supersede(key, *old));
    CG_RETURN_IF_ERROR(WriteVerdictRow(v, record));
    CG_RETURN_IF_ERROR(ReleaseClaimOn(key));
    return tx.Commit();
  }

  StatusOr<std::optional<Verdict>> GetVerdictImpl(const VerdictKey& key) {
    CG_ASSIGN_OR_RETURN(std::optional<std::string> record, ReadVerdictRecord(key));
    if (!record) return std::optional<Verdict>();
    CG_ASSIGN_OR_RETURN(Verdict v, ParseStoredVerdict(*record, path()));
    return std::optional<Verdict>(std::move(v));
  }

  // Records of the verdicts selected by `filter`, in key order.
  StatusOr<std::vector<std::string>> SelectVerdictRecords(const VerdictFilter& filter) {
    if (filter.limit < -1) {
      return Status::InvalidArgument("verdict filter: limit = " + std::to_string(filter.limit) +
                                     " is out of range; allowed -1 (no limit) or 0 and above");
    }
    // Only the conditions asked for, so that SQLite can use the indexes.
    std::string sql = "SELECT record FROM verdicts WHERE 1";
    if (filter.stack_id) sql += " AND stack_id = ?1";
    if (filter.kind) sql += " AND kind = ?2";
    if (filter.problem) sql += " AND problem = ?3";
    sql += " ORDER BY stack_id, problem, algorithm LIMIT ?4";
    const std::optional<std::string> kind =
        filter.kind ? std::optional<std::string>(VerdictName(*filter.kind)) : std::nullopt;
    CG_ASSIGN_OR_RETURN(Statement stmt, conn_->Prepare(sql));
    CG_RETURN_IF_ERROR(stmt.Bind(
        {OptText(filter.stack_id), OptText(kind), OptText(filter.problem), Int(filter.limit)}));
    std::vector<std::string> out;
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return out;
      out.push_back(stmt.ColumnText(0));
    }
  }

  StatusOr<std::vector<Verdict>> ListVerdictsImpl(const VerdictFilter& filter) {
    CG_ASSIGN_OR_RETURN(std::vector<std::string> records, SelectVerdictRecords(filter));
    std::vector<Verdict> out;
    out.reserve(records.size());
    for (const std::string& record : records) {
      CG_ASSIGN_OR_RETURN(Verdict v, ParseStoredVerdict(record, path()));
      out.push_back(std::move(v));
    }
    return out;
  }

  // -- attempts --

  Status AddAttemptImpl(const Attempt& a) {
    CG_RETURN_IF_ERROR(CheckKey(a.key));
    Transaction tx(*conn_);
    CG_RETURN_IF_ERROR(tx.Begin());
    CG_RETURN_IF_ERROR(RequireStack(a.key.stack_id));
    CG_RETURN_IF_ERROR(InsertAttemptRow(a.key, a.attempt_number, a.outcome, a.deadline_ms,
                                        a.elapsed_ms, a.worker_pid, a.started_at, a.detail));
    return tx.Commit();
  }

  StatusOr<std::vector<Attempt>> ListAttemptsImpl(const VerdictKey& key) {
    CG_ASSIGN_OR_RETURN(
        Statement stmt,
        conn_->Prepare("SELECT attempt_number, outcome, deadline_ms, elapsed_ms, worker_pid,"
                       " started_at, detail FROM attempts"
                       " WHERE stack_id = ?1 AND problem = ?2 AND algorithm = ?3 ORDER BY id"));
    CG_RETURN_IF_ERROR(stmt.Bind({Text(key.stack_id), Text(key.problem), Text(key.algorithm)}));
    std::vector<Attempt> out;
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return out;
      Attempt a;
      a.key = key;
      a.attempt_number = static_cast<int>(stmt.ColumnInt(0));
      a.outcome = stmt.ColumnText(1);
      a.deadline_ms = stmt.ColumnReal(2);
      a.elapsed_ms = stmt.ColumnReal(3);
      a.worker_pid = stmt.ColumnInt(4);
      a.started_at = stmt.ColumnText(5);
      a.detail = stmt.ColumnText(6);
      out.push_back(std::move(a));
    }
  }

  // -- claims --

  struct Holder {
    std::string owner;
    double claimed_at = 0.0;  // Unix seconds
  };

  StatusOr<std::optional<Holder>> ReadClaim(const VerdictKey& key) {
    CG_ASSIGN_OR_RETURN(Statement stmt,
                        conn_->Prepare("SELECT owner, claimed_at FROM claims WHERE"
                                       " stack_id = ?1 AND problem = ?2 AND algorithm = ?3"));
    CG_RETURN_IF_ERROR(stmt.Bind({Text(key.stack_id), Text(key.problem), Text(key.algorithm)}));
    CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<Holder>();
    return std::optional<Holder>(Holder{stmt.ColumnText(0), stmt.ColumnReal(1)});
  }

  StatusOr<ClaimResult> ClaimImpl(const VerdictKey& key, const std::string& owner, bool redo,
                                  double stale_after_s) {
    CG_RETURN_IF_ERROR(CheckKey(key));
    if (owner.empty()) return Status::InvalidArgument("claim: owner is empty");
    if (std::isnan(stale_after_s)) {
      return Status::InvalidArgument(
          "claim: stale_after_s is NaN; allowed any number of "
          "seconds (+inf: never stale)");
    }
    Transaction tx(*conn_);
    CG_RETURN_IF_ERROR(tx.Begin());
    if (!redo) {
      CG_ASSIGN_OR_RETURN(std::optional<std::string> record, ReadVerdictRecord(key));
      if (record) return ClaimResult::kAlreadyKnown;  // rolls back the empty transaction
    }
    CG_ASSIGN_OR_RETURN(std::optional<Holder> holder, ReadClaim(key));
    const double now = UnixNowSeconds();
    if (holder && holder->owner != owner) {
      const double age_s = now - holder->claimed_at;
      // An unset liveness check counts every owner as alive: only age frees the claim.
      const bool alive = !options_.owner_is_alive || options_.owner_is_alive(holder->owner);
      if (alive && age_s < stale_after_s) return ClaimResult::kHeldByOther;
      // The previous owner died or stalled holding this key: possibly the probe itself
      // took it down. Keep that as evidence when the stack is known.
      CG_ASSIGN_OR_RETURN(int64_t known, conn_->QueryInt("SELECT count(*) FROM stacks "
                                                         "WHERE id = ?1",
                                                         {Text(key.stack_id)}));
      if (known != 0) {
        char age_text[32];
        std::snprintf(age_text, sizeof age_text, "%.1f", age_s);
        const std::string detail = "claim of " + holder->owner + " (" + age_text +
                                   " s old) taken over by " + owner + ": " +
                                   (alive ? "stale" : "owner not alive");
        CG_RETURN_IF_ERROR(
            InsertAttemptRow(key, 0, "abandoned", 0.0, age_s * 1000.0, 0, UtcNowIso8601(), detail));
      }
    }
    CG_RETURN_IF_ERROR(conn_->Exec(
        "INSERT OR REPLACE INTO claims (stack_id, problem, algorithm, owner, claimed_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5)",
        {Text(key.stack_id), Text(key.problem), Text(key.algorithm), Text(owner), Real(now)}));
    CG_RETURN_IF_ERROR(tx.Commit());
    return ClaimResult::kClaimed;
  }

  Status ReleaseImpl(const std::string& owner, const std::optional<VerdictKey>& key) {
    if (owner.empty()) return Status::InvalidArgument("release: owner is empty");
    if (!key) return conn_->Exec("DELETE FROM claims WHERE owner = ?1", {Text(owner)});
    return conn_->Exec(
        "DELETE FROM claims WHERE owner = ?1 AND stack_id = ?2 AND problem = ?3 AND"
        " algorithm = ?4",
        {Text(owner), Text(key->stack_id), Text(key->problem), Text(key->algorithm)});
  }

  // -- JSON Lines --

  StatusOr<std::string> ExportImpl(const VerdictFilter& filter) {
    Transaction tx(*conn_);  // one snapshot for stacks and verdicts
    CG_RETURN_IF_ERROR(tx.Begin("BEGIN"));
    CG_ASSIGN_OR_RETURN(std::vector<std::string> records, SelectVerdictRecords(filter));
    std::vector<Verdict> verdicts;
    std::set<std::string> stack_ids;
    for (const std::string& record : records) {
      CG_ASSIGN_OR_RETURN(Verdict v, ParseStoredVerdict(record, path()));
      stack_ids.insert(v.stack_id);
      verdicts.push_back(std::move(v));
    }
    const bool everything =
        !filter.stack_id && !filter.kind && !filter.problem && filter.limit == -1;
    if (filter.stack_id) stack_ids.insert(*filter.stack_id);

    std::string out;
    CG_ASSIGN_OR_RETURN(Statement stmt,
                        conn_->Prepare("SELECT id, fingerprint, first_seen, last_seen FROM "
                                       "stacks ORDER BY id"));
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      const std::string id = stmt.ColumnText(0);
      if (!everything && !stack_ids.contains(id)) continue;
      CG_ASSIGN_OR_RETURN(StackFingerprint fp, ParseStoredStack(stmt.ColumnText(1), path()));
      json line = ToJson(fp);
      line["type"] = "stack";
      line["id"] = id;
      line["first_seen"] = stmt.ColumnText(2);
      line["last_seen"] = stmt.ColumnText(3);
      out += DumpJson(line);
      out += '\n';
    }
    for (const Verdict& v : verdicts) {
      json line = ToJson(v);
      line["type"] = "verdict";
      out += DumpJson(line);
      out += '\n';
    }
    CG_RETURN_IF_ERROR(tx.Commit());
    return out;
  }

  struct StackLine {
    int line = 0;
    StackFingerprint fingerprint;
    std::string first_seen;  // may be empty: import time
    std::string last_seen;
  };
  struct VerdictLine {
    int line = 0;
    Verdict verdict;
  };

  // Validates one line of an import; appends what it holds to `stacks` or `verdicts`.
  static Status ParseImportLine(std::string_view text, int line,
                                std::map<std::string, StackLine>& stacks,
                                std::vector<VerdictLine>& verdicts,
                                std::map<std::vector<std::string>, int>& verdict_lines) {
    CG_ASSIGN_OR_RETURN(json j, ParseJson(text));
    if (!j.is_object()) return Status::InvalidArgument("expected a JSON object");
    auto type_it = j.find("type");
    if (type_it == j.end() || !type_it->is_string()) {
      return Status::InvalidArgument(
          "field 'type' is missing or not a string; allowed "
          "\"stack\", \"verdict\"");
    }
    const std::string type = type_it->get<std::string>();
    j.erase("type");
    if (type == "stack") {
      StackLine s;
      s.line = line;
      std::string id;
      for (auto [name, out] : {std::pair<const char*, std::string*>{"id", &id},
                               {"first_seen", &s.first_seen},
                               {"last_seen", &s.last_seen}}) {
        auto it = j.find(name);
        if (it == j.end()) continue;
        if (!it->is_string()) {
          return Status::InvalidArgument("field '" + std::string(name) + "': expected a string");
        }
        *out = it->get<std::string>();
        j.erase(it);
      }
      CG_ASSIGN_OR_RETURN(s.fingerprint, StackFromJson(j));
      const std::string computed = s.fingerprint.Id();
      if (!id.empty() && id != computed) {
        return Status::InvalidArgument("stack id " + id + " does not match its fingerprint (" +
                                       computed + ")");
      }
      auto [it, inserted] = stacks.try_emplace(computed, s);
      if (!inserted) {
        if (!SameIdentity(it->second.fingerprint, s.fingerprint)) {
          return Status::InvalidArgument("stack " + computed +
                                         " differs from the stack of the same id on line " +
                                         std::to_string(it->second.line));
        }
        StackLine& merged = it->second;  // the same stack twice (concatenated exports)
        if (!s.first_seen.empty() &&
            (merged.first_seen.empty() || s.first_seen < merged.first_seen)) {
          merged.first_seen = s.first_seen;
        }
        if (s.last_seen > merged.last_seen) merged.last_seen = s.last_seen;
      }
      return Status::Ok();
    }
    if (type == "verdict") {
      CG_ASSIGN_OR_RETURN(Verdict v, VerdictFromJson(j));
      auto [it, inserted] = verdict_lines.try_emplace({v.stack_id, v.problem, v.algorithm}, line);
      if (!inserted) {
        return Status::InvalidArgument("a second verdict for " + KeyText(KeyOf(v)) +
                                       " (the first is on line " + std::to_string(it->second) +
                                       ")");
      }
      verdicts.push_back({line, std::move(v)});
      return Status::Ok();
    }
    return Status::InvalidArgument("field 'type': unknown record type '" + type +
                                   "'; allowed \"stack\", \"verdict\"");
  }

  StatusOr<ImportReport> ImportImpl(const std::string& text, bool replace) {
    // 1. Every line alone.
    std::map<std::string, StackLine> stacks;  // by id
    std::vector<VerdictLine> verdicts;
    std::map<std::vector<std::string>, int> verdict_lines;
    int line = 0;
    for (size_t start = 0; start < text.size();) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string_view content(text.data() + start, end - start);
      start = end + 1;
      ++line;
      if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
      if (content.find_first_not_of(" \t") == std::string_view::npos) continue;
      Status s = ParseImportLine(content, line, stacks, verdicts, verdict_lines);
      if (!s.ok()) return Status(s.code(), "line " + std::to_string(line) + ": " + s.message());
    }

    // 2. Against the store, under the write lock; nothing is written before all passed.
    Transaction tx(*conn_);
    CG_RETURN_IF_ERROR(tx.Begin());
    for (const auto& [id, s] : stacks) {
      CG_ASSIGN_OR_RETURN(std::optional<StoredStack> stored, ReadStack(id));
      if (stored && !SameIdentity(stored->fingerprint, s.fingerprint)) {
        return Status::InvalidArgument("line " + std::to_string(s.line) + ": stack " + id +
                                       " differs from the stack stored under the same id");
      }
    }
    for (const VerdictLine& v : verdicts) {
      if (stacks.contains(v.verdict.stack_id)) continue;
      CG_ASSIGN_OR_RETURN(int64_t known, conn_->QueryInt("SELECT count(*) FROM stacks WHERE "
                                                         "id = ?1",
                                                         {Text(v.verdict.stack_id)}));
      if (known == 0) {
        return Status::InvalidArgument("line " + std::to_string(v.line) +
                                       ": verdict refers to stack " + v.verdict.stack_id +
                                       ", which is neither in the input nor in the store");
      }
    }

    // 3. Write.
    const std::string now = UtcNowIso8601();
    for (const auto& [id, s] : stacks) {
      const std::string& first = s.first_seen.empty() ? now : s.first_seen;
      const std::string& last = s.last_seen.empty() ? first : s.last_seen;
      CG_RETURN_IF_ERROR(WriteStack(s.fingerprint, first, last));
    }
    ImportReport report;
    for (const VerdictLine& line_verdict : verdicts) {
      const Verdict& v = line_verdict.verdict;
      const VerdictKey key = KeyOf(v);
      const std::string record = VerdictRecord(v);
      CG_ASSIGN_OR_RETURN(std::optional<std::string> old, ReadVerdictRecord(key));
      if (old) {
        // Compare in today's form: a record written by an older convguard may differ in
        // text (e.g. lack a field added since) and still hold the same verdict.
        StatusOr<Verdict> old_verdict = ParseStoredVerdict(*old, path());
        if (old_verdict.ok() && VerdictRecord(*old_verdict) == record) {
          ++report.identical;
          continue;
        }
        if (!replace) {
          ++report.kept_existing;
          continue;
        }
        CG_RETURN_IF_ERROR(Supersede(key, *old));
        ++report.replaced;
      } else {
        ++report.inserted;
      }
      CG_RETURN_IF_ERROR(WriteVerdictRow(v, record));
      CG_RETURN_IF_ERROR(ReleaseClaimOn(key));
    }
    CG_RETURN_IF_ERROR(tx.Commit());
    return report;
  }

  const std::string& path() const { return conn_->path(); }

  std::unique_ptr<Connection> conn_;
  SqliteStoreOptions options_;
};

StatusOr<std::unique_ptr<Store>> Open(const std::string& path, const SqliteStoreOptions& options,
                                      std::span<const SchemaMigration> migrations) {
  CG_RETURN_IF_ERROR(CheckMigrations(migrations));
  if (path.empty()) return Status::InvalidArgument("store path is empty");
  if (options.busy_timeout_ms < 0) {
    return Status::InvalidArgument("busy_timeout_ms = " + std::to_string(options.busy_timeout_ms) +
                                   " is out of range; allowed 0 and above");
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  auto conn = std::make_unique<Connection>(db, path);  // closes `db` on every return
  if (rc != SQLITE_OK) return conn->Error(rc, "cannot open");
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);

  // Identify the file before anything could write to it.
  const int latest = migrations.back().version;
  CG_ASSIGN_OR_RETURN(FileIdentity identity, ReadIdentity(*conn));
  CG_RETURN_IF_ERROR(CheckIdentity(identity, path, latest));
  if (sqlite3_db_readonly(db, "main") == 1) {
    return Status::IOError("store " + path + " is read-only (a store must be writable)");
  }

  const bool in_memory = path == ":memory:";
  CG_ASSIGN_OR_RETURN(std::string mode, SwitchToWal(*conn, options.busy_timeout_ms));
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
  return std::unique_ptr<Store>(new SqliteStore(std::move(conn), options));
}

}  // namespace

Status CheckMigrations(std::span<const SchemaMigration> migrations) {
  if (migrations.empty()) return Status::Internal("no schema migrations are embedded");
  for (size_t i = 0; i < migrations.size(); ++i) {
    const SchemaMigration& m = migrations[i];
    const std::string name = m.name ? m.name : "(null)";
    if (m.version != static_cast<int>(i) + 1) {
      return Status::Internal("schema migration " + name + " has version " +
                              std::to_string(m.version) + " at position " + std::to_string(i + 1) +
                              "; versions must be 1, 2, 3, ... in order");
    }
    if (m.name == nullptr || m.sql == nullptr || m.sql[0] == '\0') {
      return Status::Internal("schema migration " + name + " has no SQL");
    }
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<Store>> OpenSqliteStoreWithMigrations(
    const std::string& path, const SqliteStoreOptions& options,
    std::span<const SchemaMigration> migrations) {
  return Guarded("OpenSqliteStore", [&] { return Open(path, options, migrations); });
}

StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                                 const SqliteStoreOptions& options) {
  return OpenSqliteStoreWithMigrations(path, options, EmbeddedMigrations());
}

}  // namespace convguard
