// convguard/store_transfer.h — moving a store's contents into another store, losslessly
// (`convguard db push` and `db pull`; rules: docs/store.md, "Moving records between
// stores").
//
// TransferStore copies stacks (with their seen-times), verdicts, every attempt of the
// history and sequence verdicts from one store into another, of any kinds (SQLite to
// PostgreSQL, PostgreSQL to SQLite, SQLite to SQLite, ...), through the Store interface
// only: each stack is read from one snapshot of the source (Store::ReadStackRecords) and
// written in batches, one destination transaction each (Store::MergeStackRecords). It is
// idempotent: a second transfer adds nothing. Sequence verdicts get the destination's own
// ids; a stack's keep their order. A verdict that differs from the one the
// destination holds for its key is a conflict: neither is lost (see MergeStackRecords).
// Claims are not moved.
//
// Ownership: the stores are borrowed for the call. Thread-safety: as Store (each store
// used from the calling thread only); `progress` runs on the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "convguard/status.h"
#include "convguard/store.h"

namespace convguard {

// Where a transfer is, for a progress line.
struct TransferProgress {
  std::string stack_id;
  int stack_number = 0;  // 1-based
  int stacks = 0;        // stacks to transfer
  // Records of this stack (verdicts, attempts, sequence verdicts) read from the source,
  // and how many of them are merged into the destination so far.
  int64_t records = 0;
  int64_t records_done = 0;
};

struct TransferOptions {
  // Only this stack's records (its stack, verdicts, attempts, sequence verdicts); every
  // stack of the source when unset. A stack the source does not hold is kInvalidArgument.
  std::optional<std::string> stack_id;
  // As MergeOptions: names the source in the destination's conflict history, and makes
  // incoming verdicts current on a conflict.
  std::string source_label;
  bool prefer_incoming = false;
  // Records (verdicts, attempts, sequence verdicts) per destination transaction, at least
  // 1. A key's verdict and attempts always go in one transaction, even when more, and a
  // stack's sequence verdicts all in its last (a merge counts copies of one content).
  int64_t batch_records = 1000;
  // Called as each stack starts (records_done 0) and after each batch is committed.
  // Optional.
  std::function<void(const TransferProgress&)> progress;
};

struct TransferReport {
  // What was committed to the destination: the sum of every committed batch's report
  // (stacks counted once each). Also filled when the transfer fails part way: then it
  // holds exactly what the committed batches wrote; the failed batch wrote nothing.
  MergeReport merged;
  int64_t transactions = 0;  // batches committed
  int stacks_done = 0;       // stacks whose every record is merged
};

// Copies the contents of `source` (filtered by options.stack_id) into `destination`.
// `report` (required) is reset, then filled as batches commit. Errors: kInvalidArgument
// for bad options, an unknown options.stack_id, the same Store object as both, or records
// the destination refuses (MergeStackRecords); any error of either store as it comes.
Status TransferStore(Store& source, Store& destination, const TransferOptions& options,
                     TransferReport* report);

}  // namespace convguard
