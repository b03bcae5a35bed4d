// The SQLite implementation of Store: stacks, verdicts, attempts and claims over the
// tables of docs/store.md. Opening and migrating the file is migrations.cc; the SQLite C
// API is behind sqlite_db.h; JSON Lines export and import are jsonl.cc, and moving records
// between stores is transfer.cc, which this store lends its rows (JsonLinesStorage,
// TransferStorage).
//
// Every write runs in a BEGIN IMMEDIATE transaction: it takes SQLite's write lock up
// front (waiting up to busy_timeout_ms for another process), so that the reads a write
// decides on (does a verdict exist? who holds the claim?) cannot change before it
// commits. Reads outside transactions see the last committed state (WAL mode).
//
// Ownership: a SqliteStore owns its Connection (closed when the store is destroyed) and a
// copy of its options. Thread-safety: as Store, one thread per object.
#include "store/sqlite_store.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "convguard/store.h"
#include "core/json_records.h"
#include "os/system.h"
#include "store/jsonl.h"
#include "store/migrations.h"
#include "store/sqlite_db.h"
#include "store/stored_records.h"
#include "store/transfer.h"

namespace convguard {
namespace {

using sqlite::Connection;
using sqlite::Int;
using sqlite::OptText;
using sqlite::Real;
using sqlite::Statement;
using sqlite::Text;
using sqlite::Transaction;

// Wall-clock Unix time: claims are compared across processes and hosts, so a monotonic
// clock (per boot, per host) cannot be used.
double UnixNowSeconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

class SqliteStore final : public GuardedStore, private TransferStorage {
 public:
  SqliteStore(std::unique_ptr<Connection> conn, SqliteStoreOptions options)
      : conn_(std::move(conn)), options_(std::move(options)) {}

 private:
  // -- stacks --

  // A row of "SELECT id, fingerprint, first_seen, last_seen FROM stacks".
  StatusOr<StoredStack> StackFromRow(const Statement& stmt) const {
    CG_ASSIGN_OR_RETURN(StackFingerprint fp, ParseStoredStack(stmt.ColumnText(1), path()));
    return StoredStack{stmt.ColumnText(0), std::move(fp), stmt.ColumnText(2), stmt.ColumnText(3)};
  }

  StatusOr<std::optional<StoredStack>> ReadStack(const std::string& stack_id) override {
    CG_ASSIGN_OR_RETURN(Statement stmt,
                        conn_->Prepare("SELECT id, fingerprint, first_seen, last_seen FROM stacks "
                                       "WHERE id = ?1"));
    CG_RETURN_IF_ERROR(stmt.Bind({Text(stack_id)}));
    CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<StoredStack>();
    CG_ASSIGN_OR_RETURN(StoredStack stored, StackFromRow(stmt));
    return std::optional<StoredStack>(std::move(stored));
  }

  StatusOr<std::vector<StoredStack>> SelectStacks(
      const std::optional<std::set<std::string>>& only) override {
    CG_ASSIGN_OR_RETURN(Statement stmt,
                        conn_->Prepare("SELECT id, fingerprint, first_seen, last_seen FROM "
                                       "stacks ORDER BY id"));
    std::vector<StoredStack> out;
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return out;
      // Skipped before parsing: a stack that is not asked for cannot fail the call.
      if (only && !only->contains(stmt.ColumnText(0))) continue;
      CG_ASSIGN_OR_RETURN(StoredStack stored, StackFromRow(stmt));
      out.push_back(std::move(stored));
    }
  }

  StatusOr<bool> HasStack(const std::string& stack_id) override {
    CG_ASSIGN_OR_RETURN(int64_t known, conn_->QueryInt("SELECT count(*) FROM stacks WHERE id = ?1",
                                                       {Text(stack_id)}));
    return known != 0;
  }

  // REQUIRES: in a write transaction.
  Status WriteStack(const StackFingerprint& stack, const std::string& first_seen,
                    const std::string& last_seen) override {
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

  Status PutStackImpl(const StackFingerprint& stack) override {
    CG_RETURN_IF_ERROR(CheckStackFields(stack));
    Transaction tx(*conn_);
    CG_RETURN_IF_ERROR(tx.Begin());
    CG_ASSIGN_OR_RETURN(std::optional<StoredStack> stored, ReadStack(stack.Id()));
    if (stored && !SameIdentity(stored->fingerprint, stack)) {
      return StackCollision(stored->fingerprint, stack);
    }
    const std::string now = os::UtcNowIso8601();
    CG_RETURN_IF_ERROR(WriteStack(stack, now, now));
    return tx.Commit();
  }

  StatusOr<std::optional<StackFingerprint>> GetStackImpl(const std::string& stack_id) override {
    CG_ASSIGN_OR_RETURN(std::optional<StoredStack> stored, ReadStack(stack_id));
    if (!stored) return std::optional<StackFingerprint>();
    return std::optional<StackFingerprint>(std::move(stored->fingerprint));
  }

  StatusOr<std::vector<StackFingerprint>> ListStacksImpl() override {
    CG_ASSIGN_OR_RETURN(std::vector<StoredStack> stored, SelectStacks(std::nullopt));
    std::vector<StackFingerprint> out;
    out.reserve(stored.size());
    for (StoredStack& s : stored) out.push_back(std::move(s.fingerprint));
    return out;
  }

  Status RequireStack(const std::string& stack_id) {
    CG_ASSIGN_OR_RETURN(bool known, HasStack(stack_id));
    if (!known) {
      return Status::NotFound("stack " + stack_id + " is not in store " + path() +
                              " (PutStack it first)");
    }
    return Status::Ok();
  }

  // -- sequence verdicts --

  StatusOr<int64_t> AddSequenceVerdictImpl(const SequenceVerdict& v) override {
    CG_RETURN_IF_ERROR(CheckSequenceVerdict(v));
    Transaction tx(*conn_);
    CG_RETURN_IF_ERROR(tx.Begin());
    CG_RETURN_IF_ERROR(RequireStack(v.stack_id));
    CG_ASSIGN_OR_RETURN(int64_t id, WriteSequenceVerdict(v));
    CG_RETURN_IF_ERROR(tx.Commit());
    return id;
  }

  // REQUIRES: in a write transaction; the stack is stored.
  StatusOr<int64_t> WriteSequenceVerdict(const SequenceVerdict& v) override {
    // The id is the next row's, so that the stored record carries it too.
    CG_ASSIGN_OR_RETURN(int64_t id,
                        conn_->QueryInt("SELECT coalesce(max(id), 0) + 1 FROM sequence_verdicts"));
    SequenceVerdict stored = v;
    stored.id = id;
    CG_RETURN_IF_ERROR(conn_->Exec(
        "INSERT INTO sequence_verdicts (id, stack_id, digest, source, kind, calls, calls_run,"
        " failed_at, failed_problem, minimal_calls, recorded_at, record, stored_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        {Int(id), Text(v.stack_id), Text(v.digest), Text(v.source), Text(VerdictName(v.kind)),
         Int(v.calls), Int(v.calls_run), Int(v.failed_at), Text(v.failed_problem),
         Int(static_cast<int64_t>(v.minimal.size())), Text(v.recorded_at),
         Text(DumpJson(ToJson(stored))), Text(os::UtcNowIso8601())}));
    return id;
  }

  StatusOr<std::vector<SequenceVerdict>> ReadSequenceVerdicts(
      const std::string& stack_id) override {
    return ListSequenceVerdictsImpl(stack_id);
  }

  StatusOr<std::vector<SequenceVerdict>> ListSequenceVerdictsImpl(
      const std::optional<std::string>& stack_id) override {
    std::string sql = "SELECT record FROM sequence_verdicts WHERE 1";
    if (stack_id) sql += " AND stack_id = ?1";
    sql += " ORDER BY id";
    CG_ASSIGN_OR_RETURN(Statement stmt, conn_->Prepare(sql));
    if (stack_id) CG_RETURN_IF_ERROR(stmt.Bind({Text(*stack_id)}));
    std::vector<SequenceVerdict> out;
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return out;
      CG_ASSIGN_OR_RETURN(SequenceVerdict v,
                          ParseStoredSequenceVerdict(stmt.ColumnText(0), path()));
      out.push_back(std::move(v));
    }
  }

  // -- verdicts --

  StatusOr<std::optional<std::string>> ReadVerdictRecord(const VerdictKey& key) override {
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
         Text(detail), Text(os::UtcNowIso8601())});
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
         Text(record),           Text(os::UtcNowIso8601())});
  }

  Status ReleaseClaimOn(const VerdictKey& key) {
    return conn_->Exec("DELETE FROM claims WHERE stack_id = ?1 AND problem = ?2 AND algorithm = ?3",
                       {Text(key.stack_id), Text(key.problem), Text(key.algorithm)});
  }

  // REQUIRES: in a write transaction.
  Status WriteVerdict(const Verdict& v, const std::string& record,
                      const std::optional<std::string>& superseded) override {
    const VerdictKey key = KeyOf(v);
    if (superseded) CG_RETURN_IF_ERROR(Supersede(key, *superseded));
    CG_RETURN_IF_ERROR(WriteVerdictRow(v, record));
    return ReleaseClaimOn(key);
  }

  Status PutVerdictImpl(const Verdict& v) override {
    const VerdictKey key = KeyOf(v);
    CG_RETURN_IF_ERROR(CheckKey(key));
    const std::string record = VerdictRecord(v);
    Transaction tx(*conn_);
    CG_RETURN_IF_ERROR(tx.Begin());
    CG_RETURN_IF_ERROR(RequireStack(v.stack_id));
    CG_ASSIGN_OR_RETURN(std::optional<std::string> old, ReadVerdictRecord(key));
    // An identical verdict is not put into the history a second time.
    if (old && *old == record) old.reset();
    CG_RETURN_IF_ERROR(WriteVerdict(v, record, old));
    return tx.Commit();
  }

  StatusOr<std::optional<Verdict>> GetVerdictImpl(const VerdictKey& key) override {
    CG_ASSIGN_OR_RETURN(std::optional<std::string> record, ReadVerdictRecord(key));
    if (!record) return std::optional<Verdict>();
    CG_ASSIGN_OR_RETURN(Verdict v, ParseStoredVerdict(*record, path()));
    return std::optional<Verdict>(std::move(v));
  }

  // The verdicts selected by `filter`, in key order.
  StatusOr<std::vector<Verdict>> ListVerdictsImpl(const VerdictFilter& filter) override {
    return SelectVerdicts(filter);
  }
  StatusOr<std::vector<Verdict>> SelectVerdicts(const VerdictFilter& filter) override {
    CG_RETURN_IF_ERROR(CheckFilter(filter));
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
    std::vector<Verdict> out;
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return out;
      CG_ASSIGN_OR_RETURN(Verdict v, ParseStoredVerdict(stmt.ColumnText(0), path()));
      out.push_back(std::move(v));
    }
  }

  // -- attempts --

  // REQUIRES: in a write transaction; the stack is stored.
  Status WriteAttempt(const Attempt& a) override {
    return InsertAttemptRow(a.key, a.attempt_number, a.outcome, a.deadline_ms, a.elapsed_ms,
                            a.worker_pid, a.started_at, a.detail);
  }

  Status AddAttemptImpl(const Attempt& a) override {
    CG_RETURN_IF_ERROR(CheckKey(a.key));
    Transaction tx(*conn_);
    CG_RETURN_IF_ERROR(tx.Begin());
    CG_RETURN_IF_ERROR(RequireStack(a.key.stack_id));
    CG_RETURN_IF_ERROR(WriteAttempt(a));
    return tx.Commit();
  }

  // The attempts of a prepared "SELECT stack_id, problem, algorithm, attempt_number,
  // outcome, deadline_ms, elapsed_ms, worker_pid, started_at, detail FROM attempts ...".
  StatusOr<std::vector<Attempt>> AttemptRows(Statement& stmt) {
    std::vector<Attempt> out;
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return out;
      Attempt a;
      a.key = {stmt.ColumnText(0), stmt.ColumnText(1), stmt.ColumnText(2)};
      a.attempt_number = static_cast<int>(stmt.ColumnInt(3));
      a.outcome = stmt.ColumnText(4);
      a.deadline_ms = stmt.ColumnReal(5);
      a.elapsed_ms = stmt.ColumnReal(6);
      a.worker_pid = stmt.ColumnInt(7);
      a.started_at = stmt.ColumnText(8);
      a.detail = stmt.ColumnText(9);
      out.push_back(std::move(a));
    }
  }

  static constexpr const char* kSelectAttempts =
      "SELECT stack_id, problem, algorithm, attempt_number, outcome, deadline_ms, elapsed_ms,"
      " worker_pid, started_at, detail FROM attempts";

  StatusOr<std::vector<Attempt>> ReadAttempts(const VerdictKey& key) override {
    CG_ASSIGN_OR_RETURN(Statement stmt, conn_->Prepare(std::string(kSelectAttempts) +
                                                       " WHERE stack_id = ?1 AND problem = ?2"
                                                       " AND algorithm = ?3 ORDER BY id"));
    CG_RETURN_IF_ERROR(stmt.Bind({Text(key.stack_id), Text(key.problem), Text(key.algorithm)}));
    return AttemptRows(stmt);
  }

  StatusOr<std::vector<Attempt>> ReadStackAttempts(const std::string& stack_id) override {
    CG_ASSIGN_OR_RETURN(Statement stmt,
                        conn_->Prepare(std::string(kSelectAttempts) +
                                       " WHERE stack_id = ?1 ORDER BY problem, algorithm, id"));
    CG_RETURN_IF_ERROR(stmt.Bind({Text(stack_id)}));
    return AttemptRows(stmt);
  }

  StatusOr<std::vector<Attempt>> ListAttemptsImpl(const VerdictKey& key) override {
    return ReadAttempts(key);
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
                                  double stale_after_s) override {
    CG_RETURN_IF_ERROR(CheckClaimArguments(key, owner, stale_after_s));
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
      CG_ASSIGN_OR_RETURN(bool known, HasStack(key.stack_id));
      if (known) {
        const std::string detail = TakeoverDetail(holder->owner, age_s, owner, alive);
        CG_RETURN_IF_ERROR(InsertAttemptRow(key, 0, "abandoned", 0.0, age_s * 1000.0, 0,
                                            os::UtcNowIso8601(), detail));
      }
    }
    CG_RETURN_IF_ERROR(conn_->Exec(
        "INSERT OR REPLACE INTO claims (stack_id, problem, algorithm, owner, claimed_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5)",
        {Text(key.stack_id), Text(key.problem), Text(key.algorithm), Text(owner), Real(now)}));
    CG_RETURN_IF_ERROR(tx.Commit());
    return ClaimResult::kClaimed;
  }

  Status ReleaseImpl(const std::string& owner, const std::optional<VerdictKey>& key) override {
    if (owner.empty()) return Status::InvalidArgument("release: owner is empty");
    if (!key) return conn_->Exec("DELETE FROM claims WHERE owner = ?1", {Text(owner)});
    return conn_->Exec(
        "DELETE FROM claims WHERE owner = ?1 AND stack_id = ?2 AND problem = ?3 AND"
        " algorithm = ?4",
        {Text(owner), Text(key->stack_id), Text(key->problem), Text(key->algorithm)});
  }

  // -- JSON Lines (jsonl.h): this store holds the transaction, jsonl.cc the rules --

  StatusOr<std::string> ExportImpl(const VerdictFilter& filter) override {
    Transaction tx(*conn_);  // one snapshot for stacks and verdicts
    CG_RETURN_IF_ERROR(tx.Begin("BEGIN"));
    CG_ASSIGN_OR_RETURN(std::string out, DumpJsonLines(*this, filter));
    CG_RETURN_IF_ERROR(tx.Commit());
    return out;
  }

  StatusOr<ImportReport> ImportImpl(const std::string& text, bool replace) override {
    CG_ASSIGN_OR_RETURN(JsonLinesImport input, ParseJsonLines(text));
    Transaction tx(*conn_);
    CG_RETURN_IF_ERROR(tx.Begin());
    CG_ASSIGN_OR_RETURN(ImportReport report, ApplyJsonLines(*this, input, replace));
    CG_RETURN_IF_ERROR(tx.Commit());
    return report;
  }

  // -- moving records between stores (transfer.h): this store holds the transaction --

  StatusOr<StackRecords> ReadStackRecordsImpl(const std::string& stack_id) override {
    Transaction tx(*conn_);  // one snapshot for the stack's records
    CG_RETURN_IF_ERROR(tx.Begin("BEGIN"));
    CG_ASSIGN_OR_RETURN(StackRecords records, CollectStackRecords(*this, stack_id, path()));
    CG_RETURN_IF_ERROR(tx.Commit());
    return records;
  }

  StatusOr<MergeReport> MergeStackRecordsImpl(const StackRecords& records,
                                              const MergeOptions& options) override {
    Transaction tx(*conn_);  // the write lock: what is checked is what gets written
    CG_RETURN_IF_ERROR(tx.Begin());
    CG_ASSIGN_OR_RETURN(MergeReport report, MergeRecords(*this, records, options));
    CG_RETURN_IF_ERROR(tx.Commit());
    return report;
  }

  const std::string& path() const { return conn_->path(); }

  std::unique_ptr<Connection> conn_;
  SqliteStoreOptions options_;
};

StatusOr<std::unique_ptr<Store>> Open(const std::string& path, const SqliteStoreOptions& options,
                                      std::span<const SchemaMigration> migrations) {
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                      OpenAndMigrate(path, options.busy_timeout_ms, migrations));
  return std::unique_ptr<Store>(new SqliteStore(std::move(conn), options));
}

}  // namespace

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
