// store/transfer.h — reading a stack's records out of a store and merging records into
// one (Store::ReadStackRecords, Store::MergeStackRecords; rules: docs/store.md, "Moving
// records between stores"), written once for every store, as jsonl.h is for JSON Lines.
//
// These functions know the merge rules but no SQL: a store lends them its rows through
// TransferStorage and holds one transaction around each call: a read snapshot around
// CollectStackRecords, its write transaction (and, where writers do not queue on one
// lock, its locks on every key of the records) around MergeRecords, so that what was
// checked against the store is what gets written.
//
// Ownership: nothing here keeps a reference past the call.
// Thread-safety: they run on the thread that uses the storage (one thread, as Store).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "convguard/sequence_verdict.h"
#include "convguard/status.h"
#include "convguard/store.h"
#include "store/jsonl.h"

namespace convguard {

// What transfers need from a store beyond JsonLinesStorage. Every call runs inside the
// transaction the store holds.
class TransferStorage : public JsonLinesStorage {
 public:
  // The attempts of `key`, in the order stored.
  virtual StatusOr<std::vector<Attempt>> ReadAttempts(const VerdictKey& key) = 0;
  // Every attempt of the stack, grouped by key in key order, each key's in the order
  // stored.
  virtual StatusOr<std::vector<Attempt>> ReadStackAttempts(const std::string& stack_id) = 0;
  // Appends `a` to its key's history. REQUIRES: its stack is stored.
  virtual Status WriteAttempt(const Attempt& a) = 0;
  // The stack's sequence verdicts, oldest first.
  virtual StatusOr<std::vector<SequenceVerdict>> ReadSequenceVerdicts(
      const std::string& stack_id) = 0;
  // Appends `v` under a new id of this store (v.id is ignored) and returns the id.
  // REQUIRES: its stack is stored.
  virtual StatusOr<int64_t> WriteSequenceVerdict(const SequenceVerdict& v) = 0;
};

// Store::ReadStackRecords over `storage`: kNotFound (naming `store_label`) when the stack
// is not stored.
StatusOr<StackRecords> CollectStackRecords(TransferStorage& storage, const std::string& stack_id,
                                           const std::string& store_label);

// The keys `records` touch (its verdicts' and its attempts'), sorted and each once: the
// order in which a store that locks keys must lock them, so that two merges never wait
// for each other in a cycle.
std::vector<VerdictKey> KeysOf(const StackRecords& records);

// Store::MergeStackRecords over `storage`: checks all of `records` against the store, then
// writes. Rules and report: convguard/store.h.
StatusOr<MergeReport> MergeRecords(TransferStorage& storage, const StackRecords& records,
                                   const MergeOptions& options);

// The `detail` of the "conflict" attempt that keeps `incoming` in a key's history:
// {"from":SOURCE_LABEL,"verdict":{...the incoming verdict's record...}}.
std::string ConflictDetail(const Verdict& incoming, const std::string& source_label);

}  // namespace convguard
