// store/jsonl.h — JSON Lines export and import of a store (format and rules: docs/store.md,
// "JSON Lines export and import"), written once for every store.
//
// These functions know the format and the import rules but no SQL: a store lends them its
// rows through JsonLinesStorage and holds one transaction around each call that takes
// the storage: a read snapshot around DumpJsonLines (stacks and verdicts from one state),
// its write lock around ApplyJsonLines (what was checked against the store is what gets
// written). ParseJsonLines takes no storage, so that the whole text is validated before
// the write lock is taken.
//
// Ownership: nothing here keeps a reference past the call.
// Thread-safety: ParseJsonLines is pure; the others run on the thread that uses the
// storage (one thread, as Store).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "convguard/stack.h"
#include "convguard/status.h"
#include "convguard/store.h"
#include "convguard/verdict.h"

namespace convguard {

// What export and import need from a store. Every call runs inside the transaction the
// store holds around DumpJsonLines or ApplyJsonLines; a stored record that no longer
// reads is kInternal (ParseStoredVerdict).
class JsonLinesStorage {
 public:
  virtual ~JsonLinesStorage() = default;

  // Stacks in id order: every stack when `only` is unset, else those with an id in it.
  virtual StatusOr<std::vector<StoredStack>> SelectStacks(
      const std::optional<std::set<std::string>>& only) = 0;
  // As Store::ListVerdicts.
  virtual StatusOr<std::vector<Verdict>> SelectVerdicts(const VerdictFilter& filter) = 0;

  virtual StatusOr<std::optional<StoredStack>> ReadStack(const std::string& stack_id) = 0;
  virtual StatusOr<bool> HasStack(const std::string& stack_id) = 0;
  // The stored text of the verdict of `key`, as written (possibly by an older convguard).
  virtual StatusOr<std::optional<std::string>> ReadVerdictRecord(const VerdictKey& key) = 0;

  // Inserts a new stack, or widens the seen-times of a stored one. REQUIRES: no stack is
  // stored under the same id with another identity (SameIdentity).
  virtual Status WriteStack(const StackFingerprint& stack, const std::string& first_seen,
                            const std::string& last_seen) = 0;
  // Makes `v` (canonical text `record`) the current verdict of its key and releases any
  // claim on the key. `superseded`, the stored record it replaces, goes to the history
  // first. REQUIRES: the verdict's stack is stored.
  virtual Status WriteVerdict(const Verdict& v, const std::string& record,
                              const std::optional<std::string>& superseded) = 0;
};

// Export: stacks, then the verdicts selected by `filter` (the stacks they refer to, and
// filter.stack_id's; every stack when nothing is filtered), one object a line.
StatusOr<std::string> DumpJsonLines(JsonLinesStorage& storage, const VerdictFilter& filter);

// An import's text, every line checked on its own.
struct JsonLinesImport {
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
  std::map<std::string, StackLine> stacks;  // by id; the same stack twice is merged
  std::vector<VerdictLine> verdicts;        // in input order; at most one per key
};

// kInvalidArgument "line N: ..." for the first line that is not a valid record.
StatusOr<JsonLinesImport> ParseJsonLines(const std::string& text);

// Checks all of `input` against the store before writing any of it: a line that conflicts
// with the store is kInvalidArgument "line N: ..." and nothing is written. A stored
// verdict that differs is replaced only with `replace`. The report counts verdicts.
StatusOr<ImportReport> ApplyJsonLines(JsonLinesStorage& storage, const JsonLinesImport& input,
                                      bool replace);

}  // namespace convguard
