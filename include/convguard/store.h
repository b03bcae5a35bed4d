// convguard/store.h — the persistent verdict database.
//
// Verdicts are keyed by (stack id, canonical problem, algorithm). Each verdict is
// committed as it arrives; every attempt is kept as history. Several processes may use
// one store at once: work is claimed before it is probed so that two sweeps never probe
// the same key, and a claim whose owner died is taken over.
//
// SQLite is the default implementation (OpenSqliteStore); the schema lives in versioned
// .sql files under src/store/schema/ and is migrated on open.
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

}  // namespace convguard
