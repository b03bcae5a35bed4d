// convguard/store.h — the persistent verdict database.
//
// Verdicts are keyed by (stack id, canonical problem, algorithm). Each verdict is
// committed as it arrives; every attempt is kept as history. Several processes may use
// one store at once: work is claimed before it is probed so that two sweeps never probe
// the same key, and a claim whose owner died is taken over.
//
// SQLite is the default implementation (OpenSqliteStore); PostgreSQL is the other
// (OpenPostgresStore), for a store that several hosts share. Both keep the same logical
// schema in versioned .sql files (src/store/schema/ and src/store/schema/pg/, with the
// same version numbers) and migrate it on open; OpenStore picks one from a target text.
//
// Thread-safety: a Store object is used from one thread; open one per thread or process.
// Nothing stored is ever silently overwritten: Import keeps existing verdicts unless told
// to replace them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "convguard/sequence_verdict.h"
#include "convguard/stack.h"
#include "convguard/status.h"
#include "convguard/verdict.h"

namespace convguard {

struct VerdictKey {
  std::string stack_id;
  std::string problem;  // canonical
  std::string algorithm;
  friend bool operator==(const VerdictKey&, const VerdictKey&) = default;
};

// One probe attempt, kept as history (a HANG verdict has two: the first deadline miss
// and the confirmation in a fresh worker).
struct Attempt {
  VerdictKey key;
  int attempt_number = 1;
  std::string outcome;  // "reply", "deadline", "crash", "garbage", ... (free text)
  double deadline_ms = 0.0;
  double elapsed_ms = 0.0;
  int64_t worker_pid = 0;
  std::string started_at;  // UTC ISO 8601
  std::string detail;      // free text
};

struct VerdictFilter {
  std::optional<std::string> stack_id;
  std::optional<VerdictKind> kind;
  std::optional<std::string> problem;
  int64_t limit = -1;  // -1: no limit
};

enum class ClaimResult {
  kClaimed,       // this owner now holds the key
  kAlreadyKnown,  // a verdict exists (and redo was not asked for)
  kHeldByOther,   // a live owner holds it
};

struct ImportReport {
  int64_t inserted = 0;
  int64_t replaced = 0;
  int64_t kept_existing = 0;  // conflicts left untouched (replace = false)
  int64_t identical = 0;      // records already present with the same content
};

// A stack as a store holds it, with the times that store first and last saw it (UTC ISO
// 8601). `fingerprint` is as first recorded (its tool_version included).
struct StoredStack {
  std::string id;
  StackFingerprint fingerprint;
  std::string first_seen;
  std::string last_seen;
};

// Everything a store holds about one stack but its claims (work in progress, which means
// nothing to another store): what moves between stores (convguard/store_transfer.h).
struct StackRecords {
  StoredStack stack;
  std::vector<Verdict> verdicts;  // in key order; at most one per key
  // History, grouped by key in key order; a key's attempts in the order stored. A key
  // may have attempts and no verdict (a probe that never finished).
  std::vector<Attempt> attempts;
  // Oldest first, each with the id the store that holds it gave it.
  std::vector<SequenceVerdict> sequence_verdicts;
};

struct MergeOptions {
  // Where the records come from ("host:/path/verdicts.sqlite", a redacted connection
  // string): written into the history rows that keep a conflicting verdict.
  std::string source_label;
  // A stored verdict that differs from the incoming one is replaced (and goes to the
  // history as "superseded", as with PutVerdict) instead of being kept current.
  bool prefer_incoming = false;
};

// How many records of one kind a merge was given: `added` were new to the store and are
// now in it; `already` were there with the same content and were not written again.
struct MergeCounts {
  int64_t added = 0;
  int64_t already = 0;
  friend bool operator==(const MergeCounts&, const MergeCounts&) = default;
};

struct MergeReport {
  MergeCounts stacks;  // already: its seen-times widened where the incoming were wider
  MergeCounts verdicts;
  MergeCounts attempts;
  MergeCounts sequence_verdicts;
  // Keys whose stored verdict differed from the incoming one, in key order. Each is
  // counted once more below, in exactly one of the three.
  std::vector<VerdictKey> conflicts;
  int64_t conflicts_recorded = 0;          // incoming verdict kept in the history now
  int64_t conflicts_already_recorded = 0;  // ... it was, by an earlier merge
  int64_t replaced = 0;                    // prefer_incoming: incoming made current
};

class Store {
 public:
  virtual ~Store() = default;

  // Records the stack's fingerprint (idempotent; first seen and last seen times kept).
  virtual Status PutStack(const StackFingerprint& stack) = 0;
  virtual StatusOr<std::optional<StackFingerprint>> GetStack(const std::string& stack_id) = 0;
  virtual StatusOr<std::vector<StackFingerprint>> ListStacks() = 0;

  // Inserts or replaces the verdict for its key and releases any claim on it, in one
  // transaction. Earlier verdicts for the key stay in the attempts history.
  virtual Status PutVerdict(const Verdict& v) = 0;
  virtual StatusOr<std::optional<Verdict>> GetVerdict(const VerdictKey& key) = 0;
  virtual StatusOr<std::vector<Verdict>> ListVerdicts(const VerdictFilter& filter) = 0;

  virtual Status AddAttempt(const Attempt& a) = 0;
  virtual StatusOr<std::vector<Attempt>> ListAttempts(const VerdictKey& key) = 0;

  // Claims `key` for `owner` (an opaque id such as "host:pid:starttime"). A claim held by
  // an owner that the store's OwnerLiveness says is dead, or older than `stale_after_s`,
  // is taken over. With `redo`, an existing verdict does not prevent the claim.
  virtual StatusOr<ClaimResult> Claim(const VerdictKey& key, const std::string& owner, bool redo,
                                      double stale_after_s) = 0;
  // Releases claims held by `owner` (all keys when `key` is empty).
  virtual Status Release(const std::string& owner, const std::optional<VerdictKey>& key) = 0;

  // Appends a sequence verdict (every replay is kept; none is replaced) and returns the
  // id the store gave it. Its stack must be in the store (PutStack first).
  virtual StatusOr<int64_t> AddSequenceVerdict(const SequenceVerdict& v) = 0;
  // Sequence verdicts, oldest first; only those of `stack_id` when given.
  virtual StatusOr<std::vector<SequenceVerdict>> ListSequenceVerdicts(
      const std::optional<std::string>& stack_id) = 0;

  // Everything the store holds about `stack_id` (StackRecords), read from one consistent
  // snapshot. kNotFound when the stack is not in the store.
  virtual StatusOr<StackRecords> ReadStackRecords(const std::string& stack_id) = 0;
  // Merges `records` (of one stack, possibly a part of them) into this store, in one
  // transaction, losing nothing of either side (rules: docs/store.md, "Moving records
  // between stores"): the stack is added or its seen-times widened; attempts and sequence
  // verdicts are added unless the same content is already there, as many times as
  // `records` hold it (so give all of a key's attempts, and all of a stack's sequence
  // verdicts, in one call); a verdict is added when its key is new, and when the stored one
  // differs the stored one stays current and the incoming one goes to the key's history
  // as an attempt with outcome "conflict" (once), unless options.prefer_incoming. Checks
  // all of `records` before writing any: records of another stack, two verdicts of one
  // key, a stack stored under the same id with another identity are kInvalidArgument and
  // nothing is written. Merging the same records again adds nothing.
  virtual StatusOr<MergeReport> MergeStackRecords(const StackRecords& records,
                                                  const MergeOptions& options) = 0;

  // JSON Lines: one object per line, stacks first ({"type":"stack",...}) then verdicts
  // ({"type":"verdict",...}); format in docs/store.md.
  virtual StatusOr<std::string> ExportJsonLines(const VerdictFilter& filter) = 0;
  // Validates every line before writing anything; on error nothing is imported and the
  // message names the line number.
  virtual StatusOr<ImportReport> ImportJsonLines(const std::string& text, bool replace) = 0;
};

// Says whether the owner of a claim is still alive (e.g. a local process that still
// exists). Unset: claims are taken over only when stale by age.
using OwnerLiveness = std::function<bool(const std::string& owner)>;

struct SqliteStoreOptions {
  // Milliseconds SQLite waits on a lock held by another process before failing.
  int busy_timeout_ms = 10000;
  OwnerLiveness owner_is_alive;
};

// Opens (creating if absent) the SQLite store at `path`, in WAL mode, migrating its
// schema to the newest version. Refuses (kInvalidArgument) a file that is not a convguard
// store, and (kUnsupported) a store whose schema is newer than this build knows.
StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                                 const SqliteStoreOptions& options = {});

// A line for the person waiting (the store server went away, came back): called from
// the thread using the store, while it waits.
using StoreNotice = std::function<void(const std::string& text)>;

struct PostgresStoreOptions {
  // Seconds libpq waits for a server to answer a connection, unless the connection
  // string sets its own connect_timeout.
  int connect_timeout_s = 10;
  // How long an operation waits for a server that went away after the store was opened
  // (restart, failover, network cut) before it fails: the store reconnects, retrying with
  // a growing pause (0.25 s doubling to 5 s), and then runs the whole operation again.
  // 0: fail at once. See OpenPostgresStore.
  double reconnect_wait_s = 60.0;
  // Told once when a wait begins and once when the server is back. Unset: silent.
  StoreNotice on_notice;
  OwnerLiveness owner_is_alive;
};

// Connects to the PostgreSQL store named by `conninfo` and migrates its schema to the
// newest version, in one transaction under an advisory lock (several processes opening a
// new database at once migrate it once). `conninfo` is any libpq connection string:
// a URI (postgresql://user@host:5432/dbname?sslmode=require, or
// postgresql:///dbname?host=/run/postgresql for a Unix socket), keyword=value pairs
// ("host=db.lab dbname=convguard", "service=convguard"), or a plain database name.
// Credentials come from libpq's usual places (PGPASSFILE or ~/.pgpass, PGSERVICEFILE or
// ~/.pg_service.conf, PG* environment variables): a password is never needed in
// `conninfo`, and when one is there no message of the store repeats it; messages name the
// server by host, port, database and user only.
// Errors: kInvalidArgument for a string libpq cannot parse, or a database that holds
// tables but is not a convguard store (it is never written to); kIOError for a server that
// cannot be reached or refuses the connection; kUnsupported for a store whose schema is
// newer than this build knows. A server that cannot be reached when opening fails at once
// (a mistyped host should be heard of at once); the waiting is for one that goes away later.
//
// When the server goes away (docs/store-postgresql.md, "When the server goes away"): an
// operation that fails because the connection is lost (and only then: a constraint, bad
// SQL or a newer schema fail as before) reconnects and runs again as a whole, waiting up
// to `reconnect_wait_s` for the server. Each operation is one transaction, so a re-run
// neither loses nor repeats anything: where the COMMIT got no answer, the store asks the
// server whether that transaction committed (txid_status) before writing again. Unless
// the connection string sets them, TCP keepalives and tcp_user_timeout make a server
// that vanished from the network an error in about 25 s. When the wait runs out, the
// operation fails with kIOError naming the server (never the password); what was
// committed before stays, and the store stays closed: every later call fails at once
// with the same error (open it again to go on).
StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const std::string& conninfo,
                                                   const PostgresStoreOptions& options = {});

// Whether `target` names a PostgreSQL store rather than an SQLite file: it starts with
// postgresql:// or postgres://, or contains '=' (libpq's keyword=value form, e.g.
// "service=convguard" or "host=/tmp/pg dbname=cg"). Anything else is a file path.
bool IsPostgresStoreTarget(const std::string& target);

// `target` as it may be printed: a file path as is; a PostgreSQL connection string with
// its password replaced by "***".
std::string StoreTargetLabel(const std::string& target);

struct StoreOpenOptions {
  OwnerLiveness owner_is_alive;
  // SQLite only: create the file's folder when missing.
  bool create_folder = false;
  // PostgreSQL only: PostgresStoreOptions::reconnect_wait_s and on_notice.
  double reconnect_wait_s = 60.0;
  StoreNotice on_notice;
};

// Opens the store `target` names (IsPostgresStoreTarget): OpenPostgresStore or
// OpenSqliteStore, with their default options and `options`. The one place that decides.
StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& target,
                                           const StoreOpenOptions& options = {});

}  // namespace convguard
