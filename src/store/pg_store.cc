// The PostgreSQL implementation of Store: the tables of docs/store.md in one database
// that several hosts share (docs/store-postgresql.md). libpq is behind pg_db.h; the
// record rules and the argument checks are stored_records.h, JSON Lines export and import
// jsonl.h and moving records between stores transfer.h, shared with the SQLite store, so
// that both stores decide alike.
//
// Concurrency: SQLite serialises writers with one database lock (BEGIN IMMEDIATE); here
// many hosts write at once, so every write that first reads what it decides on (does a
// verdict exist? who holds the claim? which verdict does this one replace?) takes a
// transaction-scoped advisory lock on its key first (pg_advisory_xact_lock on a hash of
// the key). Writers of one key queue behind each other; writers of different keys do
// not wait (a hash collision only makes two keys wait for each other). Claims also lock
// their row (SELECT ... FOR UPDATE) and are written with INSERT ... ON CONFLICT, so that
// the rule holds for anything else that writes the table. An import locks the four
// tables it checks against, in the order the other writers take them (attempts,
// verdicts, claims, stacks), so that what it checked is what it writes. A merge of
// another store's records locks every key it touches, in one order (KeysOf), before it
// reads any, and the stack's sequence verdicts when it adds some. An export, and the
// reading of a stack's records for a transfer, read one REPEATABLE READ snapshot.
//
// When the server goes away: every operation runs through Retried, which runs it again as
// a whole on a new connection when it failed because the connection was lost (and only
// then), waiting for the server up to PostgresStoreOptions::reconnect_wait_s. Each
// operation is one transaction, so a try that was cut off left nothing behind, except
// where the COMMIT itself went unanswered: PutStack, PutVerdict, Claim and Release write
// the same rows again harmlessly (an identical verdict adds no history), and AddAttempt,
// AddSequenceVerdict and ImportJsonLines, which would append a second time, ask the server
// whether their lost COMMIT committed (CommitTracker) before writing again.
//
// Ownership: a PostgresStore owns its Connection (closed when the store is destroyed; a
// new one replaces it after a reconnect) and a copy of its options. Thread-safety: as
// Store, one thread per object; on_notice is called from that thread.
#include "store/pg_store.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "convguard/store.h"
#include "core/json_records.h"
#include "os/clock.h"
#include "os/system.h"
#include "store/jsonl.h"
#include "store/pg_db.h"
#include "store/stored_records.h"
#include "store/transfer.h"

namespace convguard {
namespace {

using pg::Connection;
using pg::Int;
using pg::OptText;
using pg::Param;
using pg::Real;
using pg::Result;
using pg::Text;
using pg::Transaction;

// Wall-clock Unix time: claims are compared across processes and hosts, so a monotonic
// clock (per boot, per host) cannot be used.
double UnixNowSeconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

const char* ToolVersion() {
#ifdef CONVGUARD_VERSION
  return CONVGUARD_VERSION;
#else
  return "unknown";
#endif
}

// ---- identifying and migrating a database ----

struct DatabaseIdentity {
  std::string schema;     // the schema the store's tables live in (current_schema())
  int64_t relations = 0;  // tables, indexes, sequences, views of that schema
  bool marked = false;    // convguard_store exists
  int64_t application_id = 0;
  int64_t schema_version = 0;
};

StatusOr<DatabaseIdentity> ReadIdentity(Connection& conn) {
  CG_ASSIGN_OR_RETURN(
      Result r,
      conn.Exec("SELECT coalesce(current_schema(), ''),"
                " (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
                "   ON n.oid = c.relnamespace WHERE n.nspname = current_schema()),"
                " (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
                "   ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"
                "   AND c.relname = 'convguard_store' AND c.relkind = 'r')"));
  DatabaseIdentity id;
  id.schema = r.GetText(0, 0);
  id.relations = r.GetInt(0, 1);
  id.marked = r.GetInt(0, 2) > 0;
  if (id.marked) {
    CG_ASSIGN_OR_RETURN(Result marker,
                        conn.Exec("SELECT application_id, schema_version FROM convguard_store"));
    if (marker.Rows() == 1) {
      id.application_id = marker.GetInt(0, 0);
      id.schema_version = marker.GetInt(0, 1);
    }
  }
  return id;
}

std::string KnownVersions(int latest) {
  return latest == 1 ? "version 1" : "versions 1 to " + std::to_string(latest);
}

// OK for a convguard store this build can migrate, or for a database with nothing in its
// schema.
Status CheckIdentity(const DatabaseIdentity& id, const std::string& target, int latest) {
  if (id.marked && id.application_id == kPostgresStoreApplicationId) {
    if (id.schema_version > latest) {
      return Status::Unsupported("store " + target + " has schema version " +
                                 std::to_string(id.schema_version) +
                                 "; this build of convguard knows " + KnownVersions(latest) +
                                 " (open it with a newer convguard)");
    }
    return Status::Ok();
  }
  if (!id.marked && id.relations == 0) return Status::Ok();
  return Status::InvalidArgument(
      target + " is a PostgreSQL database but not a convguard store (schema '" + id.schema +
      "' holds " + std::to_string(id.relations) + " relation(s) and " +
      (id.marked ? "a convguard_store table without convguard's marker"
                 : "no convguard_store table") +
      "); refusing to modify it");
}

// Brings the store to the newest of `migrations`, all pending ones in one transaction
// under an advisory lock: a second process opening a new database at once waits for the
// first, then finds the store up to date.
Status Migrate(Connection& conn, std::span<const SchemaMigration> migrations) {
  const int latest = migrations.back().version;
  // Most opens find the store up to date: no transaction, no lock.
  CG_ASSIGN_OR_RETURN(DatabaseIdentity id, ReadIdentity(conn));
  CG_RETURN_IF_ERROR(CheckIdentity(id, conn.Target(), latest));
  if (id.marked && id.schema_version == latest) return Status::Ok();

  Transaction tx(conn);
  CG_RETURN_IF_ERROR(tx.Begin());
  CG_RETURN_IF_ERROR(conn.Exec("SELECT pg_advisory_xact_lock($1::integer, $2::integer)",
                               {Int(kPostgresStoreApplicationId), Int(1)})
                         .status());
  CG_ASSIGN_OR_RETURN(id, ReadIdentity(conn));  // another process may have migrated meanwhile
  CG_RETURN_IF_ERROR(CheckIdentity(id, conn.Target(), latest));
  if (!id.marked) {
    CG_RETURN_IF_ERROR(
        conn.ExecScript("CREATE TABLE convguard_store ("
                        " application_id INTEGER NOT NULL, schema_version INTEGER NOT NULL);"
                        "CREATE TABLE schema_migrations ("
                        " version INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL,"
                        " applied_at TEXT NOT NULL, tool_version TEXT NOT NULL)",
                        "creating the store's marker"));
    CG_RETURN_IF_ERROR(conn.Exec("INSERT INTO convguard_store (application_id, schema_version)"
                                 " VALUES ($1, 0)",
                                 {Int(kPostgresStoreApplicationId)})
                           .status());
  }
  for (const SchemaMigration& m : migrations) {
    if (m.version <= id.schema_version) continue;
    const std::string doing = "applying schema migration " + std::string(m.name);
    CG_RETURN_IF_ERROR(conn.ExecScript(m.sql, doing));
    if (!conn.InTransaction()) {
      return Status::Internal("store " + conn.Target() + ": " + doing +
                              ": the migration ended the runner's transaction (a schema file "
                              "must not BEGIN, COMMIT or ROLLBACK)");
    }
    CG_RETURN_IF_ERROR(
        conn.Exec("INSERT INTO schema_migrations (version, name, applied_at, tool_version)"
                  " VALUES ($1, $2, $3, $4)",
                  {Int(m.version), Text(m.name), Text(os::UtcNowIso8601()), Text(ToolVersion())})
            .status());
    CG_RETURN_IF_ERROR(
        conn.Exec("UPDATE convguard_store SET schema_version = $1", {Int(m.version)}).status());
  }
  return tx.Commit();
}

// ---- when the server goes away ----

const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const StatusOr<T>& s) {
  return s.status();
}

double SecondsSince(os::TimePoint t) {
  return std::chrono::duration<double>(os::RealClock().Now() - t).count();
}

// "60", "2.5": a number of seconds for people.
std::string SecondsText(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", s);
  return text;
}

// Sleeps `seconds`, in slices, so that an interrupt (Ctrl-C) ends the wait; false then.
bool PauseUnlessInterrupted(double seconds) {
  const os::TimePoint until = os::RealClock().Now() + std::chrono::duration_cast<os::Duration>(
                                                          std::chrono::duration<double>(seconds));
  while (os::RealClock().Now() < until) {
    if (os::InterruptRequested()) return false;
    os::RealClock().SleepFor(
        std::min<os::Duration>(std::chrono::milliseconds(100), until - os::RealClock().Now()));
  }
  return !os::InterruptRequested();
}

// How long a re-run waits for a transaction whose COMMIT was lost and that the server
// still shows in progress (its COMMIT may be being applied right now) to end.
constexpr double kInDoubtWaitS = 10.0;

// For the operations that append (a re-run would append again): the transaction of the
// last try, when its COMMIT went out but the connection was lost before the answer came,
// so that it may or may not have committed. Before the re-run writes, it asks the server
// (txid_status), which remembers every transaction's fate; the re-run then writes only
// when the lost try did not commit.
class CommitTracker {
 public:
  // Whether the last try committed after all (false when nothing is in doubt). On the
  // re-run's connection, before it writes.
  StatusOr<bool> LastTryCommitted(Connection& conn) {
    if (!in_doubt_) return false;
    const os::TimePoint asked = os::RealClock().Now();
    for (;;) {
      CG_ASSIGN_OR_RETURN(Result r, conn.Exec("SELECT txid_status($1)", {Int(xid_)}));
      const std::string fate = r.Rows() == 1 ? r.GetText(0, 0) : "";
      if (fate == "committed" || fate == "aborted") {
        in_doubt_ = false;
        return fate == "committed";
      }
      if (fate != "in progress" || SecondsSince(asked) >= kInDoubtWaitS ||
          !PauseUnlessInterrupted(0.25)) {
        return Status::IOError(
            "store " + conn.Target() + ": cannot tell whether transaction " + std::to_string(xid_) +
            ", whose COMMIT was cut off with the connection, committed (the "
            "server says: " +
            (fate.empty() ? "unknown" : fate) + "); not writing it a second time");
      }
    }
  }

  // The running try's transaction id (txid_current(), read by its first query).
  void Track(int64_t xid) {
    xid_ = xid;
    in_doubt_ = false;
  }

  // Commits `tx`; a COMMIT that the lost connection left unanswered is in doubt.
  Status Commit(Transaction& tx, const Connection& conn) {
    Status s = tx.Commit();
    in_doubt_ = !s.ok() && conn.Lost() && xid_ != 0;
    return s;
  }

 private:
  int64_t xid_ = 0;
  bool in_doubt_ = false;
};

// ---- the store ----

// One text per key for the advisory lock's hash; the unit separator cannot be confused
// with the text of a problem or an algorithm.
std::string KeyLockText(const VerdictKey& key) {
  return key.stack_id + '\x1f' + key.problem + '\x1f' + key.algorithm;
}

std::vector<Param> KeyParams(const VerdictKey& key) {
  return {Text(key.stack_id), Text(key.problem), Text(key.algorithm)};
}

class PostgresStore final : public GuardedStore, private TransferStorage {
 public:
  PostgresStore(std::unique_ptr<Connection> conn, std::string conninfo, int schema_version,
                PostgresStoreOptions options)
      : conn_(std::move(conn)),
        conninfo_(std::move(conninfo)),
        schema_version_(schema_version),
        options_(std::move(options)) {}

 private:
  // -- when the server goes away --

  // Runs `once` (one whole operation, one transaction), and again on a new connection
  // each time it fails because the connection was lost, until the server has been away
  // longer than reconnect_wait_s since this operation first lost it.
  template <typename F>
  auto Retried(F&& once) -> decltype(once()) {
    if (!closed_.ok()) return closed_;
    std::optional<os::TimePoint> since;
    for (;;) {
      auto result = once();
      if (StatusOf(result).ok() || !conn_->Lost()) return result;
      if (!since) since = os::RealClock().Now();
      if (Status back = AwaitServer(*since); !back.ok()) return back;
    }
  }

  void Notice(const std::string& text) const {
    if (options_.on_notice) options_.on_notice(text);
  }

  // After the connection was lost: a new one to the same store, tried at once and then
  // after pauses of 0.25 s doubling to 5 s, until reconnect_wait_s after `since`. When
  // that runs out (or an interrupt ends the wait), the store closes: this error is the
  // answer of every later call.
  Status AwaitServer(os::TimePoint since) {
    const std::string target = conn_->Target();
    const std::string lost = conn_->LastReason().empty() ? "connection lost" : conn_->LastReason();
    const std::string nothing_lost =
        "; nothing stored before was lost: run again to resume once the server is back";
    const double wait_s = options_.reconnect_wait_s;
    if (!(wait_s > 0)) {
      closed_ =
          Status::IOError("store " + target + " lost its connection (" + lost +
                          ") and does not wait for the server (reconnect wait 0 s)" + nothing_lost);
      return closed_;
    }
    bool told = false;
    double pause_s = 0.0;  // the first try is at once: a blip or a failover may be over
    std::string last = lost;
    for (;;) {
      const double left_s = wait_s - SecondsSince(since);
      if (pause_s > 0.0) {
        if (!told) {
          // The whole wait, counted from when the loss was found (moments ago).
          Notice("store " + target + " unreachable (" + lost + "); waiting up to " +
                 SecondsText(wait_s) + " s for it to come back");
          told = true;
        }
        if (!PauseUnlessInterrupted(std::min(pause_s, std::max(left_s, 0.0)))) {
          closed_ = Status::IOError("interrupted while waiting for store " + target +
                                    " to come back (" + last + ")" + nothing_lost);
          return closed_;
        }
      }
      // One try may not outlast the wait by much (libpq's minimum is 2 s).
      const int timeout_s = std::clamp(static_cast<int>(std::ceil(wait_s - SecondsSince(since))), 2,
                                       std::max(2, options_.connect_timeout_s));
      StatusOr<std::unique_ptr<Connection>> fresh = Connection::Open(conninfo_, timeout_s);
      if (fresh.ok()) {
        // The same store still: a server that came back empty, or newer, is not written to.
        Status same = CheckStillTheStore(**fresh);
        if (same.ok()) {
          conn_ = std::move(*fresh);
          Notice(told ? "store " + target + " back after " +
                            SecondsText(std::round(SecondsSince(since) * 10) / 10) + " s"
                      : "store " + target + ": connection lost (" + lost + "); reconnected");
          return Status::Ok();
        }
        if (!(*fresh)->Lost()) {
          closed_ = same;
          return closed_;
        }
        last = (*fresh)->LastReason();
      } else {
        if (fresh.status().code() != StatusCode::kIOError) {
          closed_ = fresh.status();
          return closed_;
        }
        last = fresh.status().message();
        const std::string prefix = "cannot connect to " + target + ": ";
        if (last.rfind(prefix, 0) == 0) last = last.substr(prefix.size());
      }
      if (SecondsSince(since) >= wait_s) {
        closed_ =
            Status::IOError("store " + target + " is unreachable and did not come back within " +
                            SecondsText(wait_s) + " s (" + last + ")" + nothing_lost);
        return closed_;
      }
      pause_s = pause_s == 0.0 ? 0.25 : std::min(pause_s * 2.0, 5.0);
    }
  }

  // OK when `conn` reaches the store this one opened: a convguard store at the schema
  // version it was migrated to.
  Status CheckStillTheStore(Connection& conn) {
    CG_ASSIGN_OR_RETURN(DatabaseIdentity id, ReadIdentity(conn));
    CG_RETURN_IF_ERROR(CheckIdentity(id, conn.Target(), schema_version_));
    if (!id.marked || id.schema_version != schema_version_) {
      return Status::IOError("store " + conn.Target() +
                             ": after reconnecting, the database is no longer the store that "
                             "was opened (" +
                             (id.marked ? "schema version " + std::to_string(id.schema_version)
                                        : std::string("no convguard_store table")) +
                             "); not writing to it");
    }
    return Status::Ok();
  }

  // REQUIRES: in a transaction; held until it ends.
  Status LockKey(const VerdictKey& key) {
    return conn_
        ->Exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", {Text(KeyLockText(key))})
        .status();
  }

  // -- stacks --

  // Row `row` of "SELECT id, fingerprint, first_seen, last_seen FROM stacks".
  StatusOr<StoredStack> StackFromRow(const Result& r, int row) const {
    CG_ASSIGN_OR_RETURN(StackFingerprint fp, ParseStoredStack(r.GetText(row, 1), target()));
    return StoredStack{r.GetText(row, 0), std::move(fp), r.GetText(row, 2), r.GetText(row, 3)};
  }

  StatusOr<std::optional<StoredStack>> ReadStack(const std::string& stack_id) override {
    CG_ASSIGN_OR_RETURN(Result r, conn_->Exec("SELECT id, fingerprint, first_seen, last_seen"
                                              " FROM stacks WHERE id = $1",
                                              {Text(stack_id)}));
    if (r.Rows() == 0) return std::optional<StoredStack>();
    CG_ASSIGN_OR_RETURN(StoredStack stored, StackFromRow(r, 0));
    return std::optional<StoredStack>(std::move(stored));
  }

  StatusOr<std::vector<StoredStack>> SelectStacks(
      const std::optional<std::set<std::string>>& only) override {
    CG_ASSIGN_OR_RETURN(Result r, conn_->Exec("SELECT id, fingerprint, first_seen, last_seen"
                                              " FROM stacks ORDER BY id"));
    std::vector<StoredStack> out;
    for (int row = 0; row < r.Rows(); ++row) {
      // Skipped before parsing: a stack that is not asked for cannot fail the call.
      if (only && !only->contains(r.GetText(row, 0))) continue;
      CG_ASSIGN_OR_RETURN(StoredStack stored, StackFromRow(r, row));
      out.push_back(std::move(stored));
    }
    return out;
  }

  StatusOr<bool> HasStack(const std::string& stack_id) override {
    CG_ASSIGN_OR_RETURN(int64_t known, conn_->QueryInt("SELECT count(*) FROM stacks WHERE id = $1",
                                                       {Text(stack_id)}));
    return known != 0;
  }

  // REQUIRES: in a transaction.
  Status WriteStack(const StackFingerprint& stack, const std::string& first_seen,
                    const std::string& last_seen) override {
    return conn_
        ->Exec(
            "INSERT INTO stacks (id, fingerprint, emulated, first_seen, last_seen)"
            " VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (id) DO UPDATE SET"
            "  first_seen = LEAST(stacks.first_seen, excluded.first_seen),"
            "  last_seen = GREATEST(stacks.last_seen, excluded.last_seen)",
            {Text(stack.Id()), Text(DumpJson(ToJson(stack))), Int(stack.is_emulated() ? 1 : 0),
             Text(first_seen), Text(last_seen)})
        .status();
  }

  // Re-run safely: the row is written with the same content again.
  Status PutStackImpl(const StackFingerprint& stack) override {
    CG_RETURN_IF_ERROR(CheckStackFields(stack));
    return Retried([&]() -> Status {
      Transaction tx(*conn_);
      CG_RETURN_IF_ERROR(tx.Begin());
      CG_ASSIGN_OR_RETURN(std::optional<StoredStack> stored, ReadStack(stack.Id()));
      if (stored && !SameIdentity(stored->fingerprint, stack)) {
        return Status::Internal(
            "store " + target() + ": stack id " + stack.Id() +
            " is already used by a different stack (stored: " + stored->fingerprint.Summary() +
            "; given: " + stack.Summary() + ")");
      }
      const std::string now = os::UtcNowIso8601();
      CG_RETURN_IF_ERROR(WriteStack(stack, now, now));
      return tx.Commit();
    });
  }

  StatusOr<std::optional<StackFingerprint>> GetStackImpl(const std::string& stack_id) override {
    return Retried([&]() -> StatusOr<std::optional<StackFingerprint>> {
      CG_ASSIGN_OR_RETURN(std::optional<StoredStack> stored, ReadStack(stack_id));
      if (!stored) return std::optional<StackFingerprint>();
      return std::optional<StackFingerprint>(std::move(stored->fingerprint));
    });
  }

  StatusOr<std::vector<StackFingerprint>> ListStacksImpl() override {
    return Retried([&]() -> StatusOr<std::vector<StackFingerprint>> {
      CG_ASSIGN_OR_RETURN(std::vector<StoredStack> stored, SelectStacks(std::nullopt));
      std::vector<StackFingerprint> out;
      out.reserve(stored.size());
      for (StoredStack& s : stored) out.push_back(std::move(s.fingerprint));
      return out;
    });
  }

  Status MissingStack(const std::string& stack_id) const {
    return Status::NotFound("stack " + stack_id + " is not in store " + target() +
                            " (PutStack it first)");
  }

  Status RequireStack(const std::string& stack_id) {
    CG_ASSIGN_OR_RETURN(bool known, HasStack(stack_id));
    if (!known) return MissingStack(stack_id);
    return Status::Ok();
  }

  // -- sequence verdicts --

  // Appends: a re-run after a lost COMMIT asks whether it committed (CommitTracker).
  StatusOr<int64_t> AddSequenceVerdictImpl(const SequenceVerdict& v) override {
    CG_RETURN_IF_ERROR(CheckSequenceVerdict(v));
    CommitTracker commit;
    int64_t id = 0;  // the id the last try took
    return Retried([&]() -> StatusOr<int64_t> {
      CG_ASSIGN_OR_RETURN(bool committed, commit.LastTryCommitted(*conn_));
      if (committed) return id;
      Transaction tx(*conn_);
      CG_RETURN_IF_ERROR(tx.Begin());
      CG_RETURN_IF_ERROR(RequireStack(v.stack_id));
      CG_ASSIGN_OR_RETURN(int64_t txid, conn_->QueryInt("SELECT txid_current()"));
      commit.Track(txid);
      CG_ASSIGN_OR_RETURN(id, WriteSequenceVerdict(v));
      CG_RETURN_IF_ERROR(commit.Commit(tx, *conn_));
      return id;
    });
  }

  // REQUIRES: in a transaction; the stack is stored.
  StatusOr<int64_t> WriteSequenceVerdict(const SequenceVerdict& v) override {
    // The id is taken first, so that the stored record carries it too.
    CG_ASSIGN_OR_RETURN(
        int64_t id,
        conn_->QueryInt("SELECT nextval(pg_get_serial_sequence('sequence_verdicts', 'id'))"));
    SequenceVerdict stored = v;
    stored.id = id;
    CG_RETURN_IF_ERROR(
        conn_
            ->Exec("INSERT INTO sequence_verdicts (id, stack_id, digest, source, kind, calls,"
                   " calls_run, failed_at, failed_problem, minimal_calls, recorded_at, record,"
                   " stored_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                   {Int(id), Text(v.stack_id), Text(v.digest), Text(v.source),
                    Text(VerdictName(v.kind)), Int(v.calls), Int(v.calls_run), Int(v.failed_at),
                    Text(v.failed_problem), Int(static_cast<int64_t>(v.minimal.size())),
                    Text(v.recorded_at), Text(DumpJson(ToJson(stored))), Text(os::UtcNowIso8601())})
            .status());
    return id;
  }

  StatusOr<std::vector<SequenceVerdict>> ReadSequenceVerdicts(
      const std::string& stack_id) override {
    return ListSequenceVerdictsImpl(stack_id);
  }

  StatusOr<std::vector<SequenceVerdict>> ListSequenceVerdictsImpl(
      const std::optional<std::string>& stack_id) override {
    std::string sql = "SELECT record FROM sequence_verdicts";
    std::vector<Param> params;
    if (stack_id) {
      sql += " WHERE stack_id = $1";
      params.push_back(Text(*stack_id));
    }
    sql += " ORDER BY id";
    return Retried([&]() -> StatusOr<std::vector<SequenceVerdict>> {
      CG_ASSIGN_OR_RETURN(Result r, conn_->Exec(sql, params));
      std::vector<SequenceVerdict> out;
      for (int row = 0; row < r.Rows(); ++row) {
        CG_ASSIGN_OR_RETURN(SequenceVerdict v,
                            ParseStoredSequenceVerdict(r.GetText(row, 0), target()));
        out.push_back(std::move(v));
      }
      return out;
    });
  }

  // -- verdicts --

  StatusOr<std::optional<std::string>> ReadVerdictRecord(const VerdictKey& key) override {
    CG_ASSIGN_OR_RETURN(Result r, conn_->Exec("SELECT record FROM verdicts WHERE stack_id = $1"
                                              " AND problem = $2 AND algorithm = $3",
                                              KeyParams(key)));
    if (r.Rows() == 0) return std::optional<std::string>();
    return std::optional<std::string>(r.GetText(0, 0));
  }

  Status InsertAttemptRow(const VerdictKey& key, int64_t attempt_number, std::string_view outcome,
                          double deadline_ms, double elapsed_ms, int64_t worker_pid,
                          std::string_view started_at, std::string_view detail) {
    return conn_
        ->Exec(
            "INSERT INTO attempts (stack_id, problem, algorithm, attempt_number, outcome,"
            " deadline_ms, elapsed_ms, worker_pid, started_at, detail, stored_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            {Text(key.stack_id), Text(key.problem), Text(key.algorithm), Int(attempt_number),
             Text(outcome), Real(deadline_ms), Real(elapsed_ms), Int(worker_pid), Text(started_at),
             Text(detail), Text(os::UtcNowIso8601())})
        .status();
  }

  // Moves the stored verdict `old_record` of `key` to the history. REQUIRES: in a
  // transaction holding the key's lock.
  Status Supersede(const VerdictKey& key, const std::string& old_record) {
    StatusOr<Verdict> old = ParseStoredVerdict(old_record, target());
    // An unreadable old record is still kept, verbatim, in `detail`.
    const double deadline = old.ok() ? old->deadline_ms : 0.0;
    const double elapsed = old.ok() ? old->elapsed_ms : 0.0;
    const std::string recorded_at = old.ok() ? old->recorded_at : "";
    return InsertAttemptRow(key, 0, "superseded", deadline, elapsed, 0, recorded_at, old_record);
  }

  // Inserts or replaces the row of `v`. REQUIRES: in a transaction.
  Status WriteVerdictRow(const Verdict& v, const std::string& record) {
    return conn_
        ->Exec(
            "INSERT INTO verdicts (stack_id, problem, algorithm, kind, time_ms_min,"
            " time_ms_median, crash_signal, exit_code, message, check_method, max_abs_error,"
            " max_rel_error, mismatches, non_finite, implementation, attempts, deadline_ms,"
            " elapsed_ms, tool_version, recorded_at, repro, emulated, record, stored_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
            " $17, $18, $19, $20, $21, $22, $23, $24)"
            " ON CONFLICT (stack_id, problem, algorithm) DO UPDATE SET"
            "  kind = excluded.kind, time_ms_min = excluded.time_ms_min,"
            "  time_ms_median = excluded.time_ms_median, crash_signal = excluded.crash_signal,"
            "  exit_code = excluded.exit_code, message = excluded.message,"
            "  check_method = excluded.check_method, max_abs_error = excluded.max_abs_error,"
            "  max_rel_error = excluded.max_rel_error, mismatches = excluded.mismatches,"
            "  non_finite = excluded.non_finite, implementation = excluded.implementation,"
            "  attempts = excluded.attempts, deadline_ms = excluded.deadline_ms,"
            "  elapsed_ms = excluded.elapsed_ms, tool_version = excluded.tool_version,"
            "  recorded_at = excluded.recorded_at, repro = excluded.repro,"
            "  emulated = excluded.emulated, record = excluded.record,"
            "  stored_at = excluded.stored_at",
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
             Text(record),           Text(os::UtcNowIso8601())})
        .status();
  }

  Status ReleaseClaimOn(const VerdictKey& key) {
    return conn_
        ->Exec("DELETE FROM claims WHERE stack_id = $1 AND problem = $2 AND algorithm = $3",
               KeyParams(key))
        .status();
  }

  // REQUIRES: in a transaction that holds the key's lock or the import's table locks.
  Status WriteVerdict(const Verdict& v, const std::string& record,
                      const std::optional<std::string>& superseded) override {
    const VerdictKey key = KeyOf(v);
    if (superseded) CG_RETURN_IF_ERROR(Supersede(key, *superseded));
    CG_RETURN_IF_ERROR(WriteVerdictRow(v, record));
    return ReleaseClaimOn(key);
  }

  // Re-run safely: when the lost try committed, the verdict it stored is identical to
  // this one, which therefore adds no history row and writes the same row again.
  Status PutVerdictImpl(const Verdict& v) override {
    const VerdictKey key = KeyOf(v);
    CG_RETURN_IF_ERROR(CheckKey(key));
    const std::string record = VerdictRecord(v);
    return Retried([&]() -> Status {
      Transaction tx(*conn_);
      CG_RETURN_IF_ERROR(tx.Begin());
      CG_RETURN_IF_ERROR(LockKey(key));
      CG_RETURN_IF_ERROR(RequireStack(v.stack_id));
      CG_ASSIGN_OR_RETURN(std::optional<std::string> old, ReadVerdictRecord(key));
      // An identical verdict is not put into the history a second time.
      if (old && *old == record) old.reset();
      CG_RETURN_IF_ERROR(WriteVerdict(v, record, old));
      return tx.Commit();
    });
  }

  StatusOr<std::optional<Verdict>> GetVerdictImpl(const VerdictKey& key) override {
    return Retried([&]() -> StatusOr<std::optional<Verdict>> {
      CG_ASSIGN_OR_RETURN(std::optional<std::string> record, ReadVerdictRecord(key));
      if (!record) return std::optional<Verdict>();
      CG_ASSIGN_OR_RETURN(Verdict v, ParseStoredVerdict(*record, target()));
      return std::optional<Verdict>(std::move(v));
    });
  }

  // The verdicts selected by `filter`, in key order.
  StatusOr<std::vector<Verdict>> ListVerdictsImpl(const VerdictFilter& filter) override {
    return Retried([&] { return SelectVerdicts(filter); });
  }
  StatusOr<std::vector<Verdict>> SelectVerdicts(const VerdictFilter& filter) override {
    CG_RETURN_IF_ERROR(CheckFilter(filter));
    // Only the conditions asked for, numbered as they come (PostgreSQL wants every
    // parameter it is given to appear).
    std::string sql = "SELECT record FROM verdicts WHERE true";
    std::vector<Param> params;
    auto condition = [&](const char* column, Param value) {
      params.push_back(std::move(value));
      sql += std::string(" AND ") + column + " = $" + std::to_string(params.size());
    };
    if (filter.stack_id) condition("stack_id", Text(*filter.stack_id));
    if (filter.kind) condition("kind", Text(VerdictName(*filter.kind)));
    if (filter.problem) condition("problem", Text(*filter.problem));
    sql += " ORDER BY stack_id, problem, algorithm";
    if (filter.limit >= 0) {
      params.push_back(Int(filter.limit));
      sql += " LIMIT $" + std::to_string(params.size());
    }
    CG_ASSIGN_OR_RETURN(Result r, conn_->Exec(sql, params));
    std::vector<Verdict> out;
    out.reserve(static_cast<size_t>(r.Rows()));
    for (int row = 0; row < r.Rows(); ++row) {
      CG_ASSIGN_OR_RETURN(Verdict v, ParseStoredVerdict(r.GetText(row, 0), target()));
      out.push_back(std::move(v));
    }
    return out;
  }

  // -- attempts --

  // REQUIRES: in a transaction; the stack is stored.
  Status WriteAttempt(const Attempt& a) override {
    return InsertAttemptRow(a.key, a.attempt_number, a.outcome, a.deadline_ms, a.elapsed_ms,
                            a.worker_pid, a.started_at, a.detail);
  }

  // Appends: a re-run after a lost COMMIT asks whether it committed (CommitTracker).
  Status AddAttemptImpl(const Attempt& a) override {
    CG_RETURN_IF_ERROR(CheckKey(a.key));
    CommitTracker commit;
    return Retried([&]() -> Status {
      CG_ASSIGN_OR_RETURN(bool committed, commit.LastTryCommitted(*conn_));
      if (committed) return Status::Ok();
      Transaction tx(*conn_);
      CG_RETURN_IF_ERROR(tx.Begin());
      // The transaction's id with the stack check: no round trip more than before.
      CG_ASSIGN_OR_RETURN(Result r, conn_->Exec("SELECT txid_current(),"
                                                " (SELECT count(*) FROM stacks WHERE id = $1)",
                                                {Text(a.key.stack_id)}));
      commit.Track(r.GetInt(0, 0));
      if (r.GetInt(0, 1) == 0) return MissingStack(a.key.stack_id);
      CG_RETURN_IF_ERROR(WriteAttempt(a));
      return commit.Commit(tx, *conn_);
    });
  }

  static constexpr const char* kSelectAttempts =
      "SELECT stack_id, problem, algorithm, attempt_number, outcome, deadline_ms, elapsed_ms,"
      " worker_pid, started_at, detail FROM attempts";

  // The attempts of the result of a kSelectAttempts query.
  static std::vector<Attempt> AttemptRows(const Result& r) {
    std::vector<Attempt> out;
    out.reserve(static_cast<size_t>(r.Rows()));
    for (int row = 0; row < r.Rows(); ++row) {
      Attempt a;
      a.key = {r.GetText(row, 0), r.GetText(row, 1), r.GetText(row, 2)};
      a.attempt_number = static_cast<int>(r.GetInt(row, 3));
      a.outcome = r.GetText(row, 4);
      a.deadline_ms = r.GetReal(row, 5);
      a.elapsed_ms = r.GetReal(row, 6);
      a.worker_pid = r.GetInt(row, 7);
      a.started_at = r.GetText(row, 8);
      a.detail = r.GetText(row, 9);
      out.push_back(std::move(a));
    }
    return out;
  }

  StatusOr<std::vector<Attempt>> ReadAttempts(const VerdictKey& key) override {
    CG_ASSIGN_OR_RETURN(
        Result r, conn_->Exec(std::string(kSelectAttempts) + " WHERE stack_id = $1 AND problem = $2"
                                                             " AND algorithm = $3 ORDER BY id",
                              KeyParams(key)));
    return AttemptRows(r);
  }

  StatusOr<std::vector<Attempt>> ReadStackAttempts(const std::string& stack_id) override {
    CG_ASSIGN_OR_RETURN(
        Result r, conn_->Exec(std::string(kSelectAttempts) + " WHERE stack_id = $1"
                                                             " ORDER BY problem, algorithm, id",
                              {Text(stack_id)}));
    return AttemptRows(r);
  }

  StatusOr<std::vector<Attempt>> ListAttemptsImpl(const VerdictKey& key) override {
    return Retried([&]() -> StatusOr<std::vector<Attempt>> { return ReadAttempts(key); });
  }

  // -- claims --

  // Re-run safely: when the lost try committed, this owner holds the claim and takes it
  // again (no second "abandoned" row); a released claim is released again.
  StatusOr<ClaimResult> ClaimImpl(const VerdictKey& key, const std::string& owner, bool redo,
                                  double stale_after_s) override {
    CG_RETURN_IF_ERROR(CheckClaimArguments(key, owner, stale_after_s));
    return Retried([&] { return ClaimOnce(key, owner, redo, stale_after_s); });
  }

  StatusOr<ClaimResult> ClaimOnce(const VerdictKey& key, const std::string& owner, bool redo,
                                  double stale_after_s) {
    Transaction tx(*conn_);
    CG_RETURN_IF_ERROR(tx.Begin());
    CG_RETURN_IF_ERROR(LockKey(key));
    if (!redo) {
      CG_ASSIGN_OR_RETURN(std::optional<std::string> record, ReadVerdictRecord(key));
      if (record) return ClaimResult::kAlreadyKnown;  // rolls back
    }
    CG_ASSIGN_OR_RETURN(Result holder,
                        conn_->Exec("SELECT owner, claimed_at FROM claims WHERE stack_id = $1"
                                    " AND problem = $2 AND algorithm = $3 FOR UPDATE",
                                    KeyParams(key)));
    const double now = UnixNowSeconds();
    if (holder.Rows() > 0 && holder.GetText(0, 0) != owner) {
      const std::string holder_owner = holder.GetText(0, 0);
      const double age_s = now - holder.GetReal(0, 1);
      // An unset liveness check counts every owner as alive: only age frees the claim.
      const bool alive = !options_.owner_is_alive || options_.owner_is_alive(holder_owner);
      if (alive && age_s < stale_after_s) return ClaimResult::kHeldByOther;
      // The previous owner died or stalled holding this key: possibly the probe itself
      // took it down. Keep that as evidence when the stack is known.
      CG_ASSIGN_OR_RETURN(bool known, HasStack(key.stack_id));
      if (known) {
        CG_RETURN_IF_ERROR(InsertAttemptRow(key, 0, "abandoned", 0.0, age_s * 1000.0, 0,
                                            os::UtcNowIso8601(),
                                            TakeoverDetail(holder_owner, age_s, owner, alive)));
      }
    }
    CG_RETURN_IF_ERROR(conn_
                           ->Exec("INSERT INTO claims (stack_id, problem, algorithm, owner,"
                                  " claimed_at) VALUES ($1, $2, $3, $4, $5)"
                                  " ON CONFLICT (stack_id, problem, algorithm) DO UPDATE SET"
                                  "  owner = excluded.owner, claimed_at = excluded.claimed_at",
                                  {Text(key.stack_id), Text(key.problem), Text(key.algorithm),
                                   Text(owner), Real(now)})
                           .status());
    CG_RETURN_IF_ERROR(tx.Commit());
    return ClaimResult::kClaimed;
  }

  Status ReleaseImpl(const std::string& owner, const std::optional<VerdictKey>& key) override {
    if (owner.empty()) return Status::InvalidArgument("release: owner is empty");
    return Retried([&]() -> Status {
      if (!key) return conn_->Exec("DELETE FROM claims WHERE owner = $1", {Text(owner)}).status();
      return conn_
          ->Exec(
              "DELETE FROM claims WHERE owner = $1 AND stack_id = $2 AND problem = $3 AND"
              " algorithm = $4",
              {Text(owner), Text(key->stack_id), Text(key->problem), Text(key->algorithm)})
          .status();
    });
  }

  // -- JSON Lines (jsonl.h): this store holds the transaction, jsonl.cc the rules --

  StatusOr<std::string> ExportImpl(const VerdictFilter& filter) override {
    return Retried([&]() -> StatusOr<std::string> {
      Transaction tx(*conn_);  // one snapshot for stacks and verdicts
      CG_RETURN_IF_ERROR(tx.Begin("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"));
      CG_ASSIGN_OR_RETURN(std::string out, DumpJsonLines(*this, filter));
      CG_RETURN_IF_ERROR(tx.Commit());
      return out;
    });
  }

  // A re-run after a lost COMMIT that did commit answers with the lost try's report (a
  // second try would count everything as identical).
  StatusOr<ImportReport> ImportImpl(const std::string& text, bool replace) override {
    CG_ASSIGN_OR_RETURN(JsonLinesImport input, ParseJsonLines(text));
    CommitTracker commit;
    ImportReport report;  // the last try's
    return Retried([&]() -> StatusOr<ImportReport> {
      CG_ASSIGN_OR_RETURN(bool committed, commit.LastTryCommitted(*conn_));
      if (committed) return report;
      Transaction tx(*conn_);
      CG_RETURN_IF_ERROR(tx.Begin());
      CG_RETURN_IF_ERROR(conn_->ExecScript(
          "LOCK TABLE attempts, verdicts, claims, stacks IN SHARE ROW EXCLUSIVE MODE",
          "locking the store for an import"));
      CG_ASSIGN_OR_RETURN(int64_t xid, conn_->QueryInt("SELECT txid_current()"));
      commit.Track(xid);
      CG_ASSIGN_OR_RETURN(report, ApplyJsonLines(*this, input, replace));
      CG_RETURN_IF_ERROR(commit.Commit(tx, *conn_));
      return report;
    });
  }

  // -- moving records between stores (transfer.h): this store holds the transaction --

  StatusOr<StackRecords> ReadStackRecordsImpl(const std::string& stack_id) override {
    Transaction tx(*conn_);  // one snapshot for the stack's records
    CG_RETURN_IF_ERROR(tx.Begin("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"));
    CG_ASSIGN_OR_RETURN(StackRecords records, CollectStackRecords(*this, stack_id, target()));
    CG_RETURN_IF_ERROR(tx.Commit());
    return records;
  }

  StatusOr<MergeReport> MergeStackRecordsImpl(const StackRecords& records,
                                              const MergeOptions& options) override {
    Transaction tx(*conn_);
    CG_RETURN_IF_ERROR(tx.Begin());
    // Every key before anything is read, in the one order every merge takes them, so that
    // a merge waits only for writers of its keys and two merges never wait in a cycle.
    for (const VerdictKey& key : KeysOf(records)) CG_RETURN_IF_ERROR(LockKey(key));
    if (!records.sequence_verdicts.empty()) {
      // Sequence verdicts are compared by content: two merges of the same ones must queue.
      // One separator only, so that the text is never a key's (KeyLockText has two).
      CG_RETURN_IF_ERROR(conn_
                             ->Exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                    {Text("sequence_verdicts\x1f" + records.stack.id)})
                             .status());
    }
    CG_ASSIGN_OR_RETURN(MergeReport report, MergeRecords(*this, records, options));
    CG_RETURN_IF_ERROR(tx.Commit());
    return report;
  }

  const std::string& target() const { return conn_->Target(); }

  std::unique_ptr<Connection> conn_;
  const std::string conninfo_;  // to reconnect
  const int schema_version_;    // the version Open migrated the store to
  PostgresStoreOptions options_;
  Status closed_;  // not OK once a wait for the server ran out: every call's answer
};

StatusOr<std::unique_ptr<Store>> Open(const std::string& conninfo,
                                      const PostgresStoreOptions& options,
                                      std::span<const SchemaMigration> migrations) {
  CG_RETURN_IF_ERROR(CheckMigrations(migrations));
  if (options.connect_timeout_s < 1) {
    return Status::InvalidArgument(
        "connect_timeout_s = " + std::to_string(options.connect_timeout_s) +
        " is out of range; allowed 1 and above");
  }
  if (!(options.reconnect_wait_s >= 0) || options.reconnect_wait_s > 7 * 86400.0) {
    return Status::InvalidArgument("reconnect_wait_s = " + SecondsText(options.reconnect_wait_s) +
                                   " is out of range; allowed 0 to 604800 (a week)");
  }
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                      Connection::Open(conninfo, options.connect_timeout_s));
  CG_RETURN_IF_ERROR(Migrate(*conn, migrations));
  return std::unique_ptr<Store>(
      new PostgresStore(std::move(conn), conninfo, migrations.back().version, options));
}

}  // namespace

StatusOr<std::unique_ptr<Store>> OpenPostgresStoreWithMigrations(
    const std::string& conninfo, const PostgresStoreOptions& options,
    std::span<const SchemaMigration> migrations) {
  return Guarded("OpenPostgresStore", [&] { return Open(conninfo, options, migrations); });
}

StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const std::string& conninfo,
                                                   const PostgresStoreOptions& options) {
  return OpenPostgresStoreWithMigrations(conninfo, options, EmbeddedPostgresMigrations());
}

}  // namespace convguard
