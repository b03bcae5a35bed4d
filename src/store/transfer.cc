// Moving records between stores: the merge rules over TransferStorage (contract:
// transfer.h) and TransferStore over the Store interface (contract:
// convguard/store_transfer.h). Rules: docs/store.md, "Moving records between stores".
#include "store/transfer.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

#include "convguard/store_transfer.h"
#include "core/json_records.h"
#include "os/system.h"
#include "store/stored_records.h"

namespace convguard {
namespace {

using nlohmann::json;

// The outcome of the history row that keeps an incoming verdict the store did not take.
constexpr const char* kConflictOutcome = "conflict";

struct KeyOrder {
  bool operator()(const VerdictKey& a, const VerdictKey& b) const {
    return std::tie(a.stack_id, a.problem, a.algorithm) <
           std::tie(b.stack_id, b.problem, b.algorithm);
  }
};

std::string KeyText(const VerdictKey& k) {
  return k.stack_id + " / " + k.problem + " / " + k.algorithm;
}

// A double as text that tells every two values apart; every NaN alike, as a store reads
// back a non-finite number it could not keep in its column as NaN.
std::string ExactReal(double d) {
  if (std::isnan(d)) return "nan";
  char text[64];
  std::snprintf(text, sizeof text, "%a", d);
  return text;
}

// An attempt's whole content as one text: two attempts are the same attempt when their
// texts are equal. Every field counts, so that two different rows that share their number,
// outcome, times and pid (two verdicts superseded in the same second, say) are both kept.
// Each field is length-prefixed, so no field can imitate a boundary.
std::string AttemptContent(const Attempt& a) {
  std::string out;
  auto field = [&out](std::string_view value) {
    out += std::to_string(value.size());
    out += ':';
    out += value;
  };
  field(a.key.stack_id);
  field(a.key.problem);
  field(a.key.algorithm);
  field(std::to_string(a.attempt_number));
  field(a.outcome);
  field(ExactReal(a.deadline_ms));
  field(ExactReal(a.elapsed_ms));
  field(std::to_string(a.worker_pid));
  field(a.started_at);
  field(a.detail);
  return out;
}

// A sequence verdict's content without the id its store gave it: stores number their
// sequence verdicts independently, so only the content tells whether one is already there.
std::string SequenceContent(SequenceVerdict v) {
  v.id = 0;
  return DumpJson(ToJson(v));
}

// Whether `a` is a conflict row keeping the verdict whose canonical text is `record`
// (from whichever source).
bool KeepsConflict(const Attempt& a, const std::string& record) {
  if (a.outcome != kConflictOutcome) return false;
  StatusOr<json> detail = ParseJson(a.detail);
  if (!detail.ok() || !detail->is_object()) return false;
  auto it = detail->find("verdict");
  if (it == detail->end()) return false;
  StatusOr<Verdict> kept = VerdictFromJson(*it);
  return kept.ok() && VerdictRecord(*kept) == record;
}

// Checks `records` against themselves and the store; returns the stored stack, if any.
StatusOr<std::optional<StoredStack>> CheckRecords(TransferStorage& storage,
                                                  const StackRecords& records) {
  const std::string& id = records.stack.id;
  CG_RETURN_IF_ERROR(CheckStackFields(records.stack.fingerprint));
  const std::string computed = records.stack.fingerprint.Id();
  if (id != computed) {
    return Status::InvalidArgument("stack id " + id + " does not match its fingerprint (" +
                                   computed + ")");
  }
  auto other_stack = [&id](const char* what, const std::string& stack_id) {
    return Status::InvalidArgument("records of stack " + id + " hold " + what + " of stack " +
                                   stack_id);
  };
  std::set<VerdictKey, KeyOrder> keys;
  for (const Verdict& v : records.verdicts) {
    CG_RETURN_IF_ERROR(CheckKey(KeyOf(v)));
    if (v.stack_id != id) return other_stack("a verdict", v.stack_id);
    if (!keys.insert(KeyOf(v)).second) {
      return Status::InvalidArgument("records hold a second verdict for " + KeyText(KeyOf(v)));
    }
  }
  for (const Attempt& a : records.attempts) {
    CG_RETURN_IF_ERROR(CheckKey(a.key));
    if (a.key.stack_id != id) return other_stack("an attempt", a.key.stack_id);
  }
  for (const SequenceVerdict& v : records.sequence_verdicts) {
    CG_RETURN_IF_ERROR(CheckSequenceVerdict(v));
    if (v.stack_id != id) return other_stack("a sequence verdict", v.stack_id);
  }
  CG_ASSIGN_OR_RETURN(std::optional<StoredStack> stored, storage.ReadStack(id));
  if (stored && !SameIdentity(stored->fingerprint, records.stack.fingerprint)) {
    return Status::InvalidArgument(
        "stack " + id + " differs from the stack stored under the same id (stored: " +
        stored->fingerprint.Summary() + "; incoming: " + records.stack.fingerprint.Summary() + ")");
  }
  return stored;
}

// Adds the stack, or widens its seen-times where the incoming ones are wider.
Status MergeStack(TransferStorage& storage, const StoredStack& incoming,
                  const std::optional<StoredStack>& stored, MergeReport& report) {
  if (!stored) {
    // Times missing from the incoming record are the merge's, as an import does.
    const std::string now = os::UtcNowIso8601();
    const std::string& first = incoming.first_seen.empty() ? now : incoming.first_seen;
    const std::string& last = incoming.last_seen.empty() ? first : incoming.last_seen;
    CG_RETURN_IF_ERROR(storage.WriteStack(incoming.fingerprint, first, last));
    ++report.stacks.added;
    return Status::Ok();
  }
  ++report.stacks.already;
  const bool earlier = !incoming.first_seen.empty() && incoming.first_seen < stored->first_seen;
  const bool later = incoming.last_seen > stored->last_seen;
  if (!earlier && !later) return Status::Ok();  // nothing to write: a second merge changes nothing
  return storage.WriteStack(stored->fingerprint, earlier ? incoming.first_seen : stored->first_seen,
                            later ? incoming.last_seen : stored->last_seen);
}

// A key's incoming records.
struct KeyRecords {
  const Verdict* verdict = nullptr;
  std::vector<const Attempt*> attempts;
};

std::map<VerdictKey, KeyRecords, KeyOrder> GroupByKey(const StackRecords& records) {
  std::map<VerdictKey, KeyRecords, KeyOrder> by_key;
  for (const Verdict& v : records.verdicts) by_key[KeyOf(v)].verdict = &v;
  for (const Attempt& a : records.attempts) by_key[a.key].attempts.push_back(&a);
  return by_key;
}

Status MergeKey(TransferStorage& storage, const VerdictKey& key, const KeyRecords& incoming,
                const MergeOptions& options, MergeReport& report) {
  CG_ASSIGN_OR_RETURN(std::vector<Attempt> history, storage.ReadAttempts(key));
  // As many copies of each attempt as the incoming hold, counting those already there.
  std::map<std::string, int64_t> stored_copies;
  for (const Attempt& a : history) ++stored_copies[AttemptContent(a)];
  for (const Attempt* a : incoming.attempts) {
    auto it = stored_copies.find(AttemptContent(*a));
    if (it != stored_copies.end() && it->second > 0) {
      --it->second;
      ++report.attempts.already;
      continue;
    }
    CG_RETURN_IF_ERROR(storage.WriteAttempt(*a));
    history.push_back(*a);
    ++report.attempts.added;
  }
  if (incoming.verdict == nullptr) return Status::Ok();

  const Verdict& v = *incoming.verdict;
  const std::string record = VerdictRecord(v);
  CG_ASSIGN_OR_RETURN(std::optional<std::string> stored, storage.ReadVerdictRecord(key));
  if (!stored) {
    CG_RETURN_IF_ERROR(storage.WriteVerdict(v, record, std::nullopt));
    ++report.verdicts.added;
    return Status::Ok();
  }
  if (SameVerdict(*stored, record)) {
    ++report.verdicts.already;
    return Status::Ok();
  }
  report.conflicts.push_back(key);
  if (options.prefer_incoming) {
    // The stored verdict goes to the history as "superseded", as with PutVerdict.
    CG_RETURN_IF_ERROR(storage.WriteVerdict(v, record, stored));
    ++report.replaced;
    return Status::Ok();
  }
  for (const Attempt& a : history) {
    if (KeepsConflict(a, record)) {
      ++report.conflicts_already_recorded;
      return Status::Ok();
    }
  }
  // Kept as a "superseded" row keeps a replaced verdict: its times, and its whole record.
  Attempt conflict;
  conflict.key = key;
  conflict.attempt_number = 0;
  conflict.outcome = kConflictOutcome;
  conflict.deadline_ms = v.deadline_ms;
  conflict.elapsed_ms = v.elapsed_ms;
  conflict.worker_pid = 0;
  conflict.started_at = v.recorded_at;
  conflict.detail = ConflictDetail(v, options.source_label);
  CG_RETURN_IF_ERROR(storage.WriteAttempt(conflict));
  ++report.conflicts_recorded;
  return Status::Ok();
}

Status MergeSequenceVerdicts(TransferStorage& storage, const StackRecords& records,
                             MergeReport& report) {
  if (records.sequence_verdicts.empty()) return Status::Ok();
  CG_ASSIGN_OR_RETURN(std::vector<SequenceVerdict> stored,
                      storage.ReadSequenceVerdicts(records.stack.id));
  std::map<std::string, int64_t> stored_copies;
  for (const SequenceVerdict& v : stored) ++stored_copies[SequenceContent(v)];
  for (const SequenceVerdict& v : records.sequence_verdicts) {
    auto it = stored_copies.find(SequenceContent(v));
    if (it != stored_copies.end() && it->second > 0) {
      --it->second;
      ++report.sequence_verdicts.already;
      continue;
    }
    CG_RETURN_IF_ERROR(storage.WriteSequenceVerdict(v).status());
    ++report.sequence_verdicts.added;
  }
  return Status::Ok();
}

void Add(MergeCounts& total, const MergeCounts& part) {
  total.added += part.added;
  total.already += part.already;
}

void Accumulate(MergeReport& total, const MergeReport& part, bool count_stack) {
  if (count_stack) Add(total.stacks, part.stacks);
  Add(total.verdicts, part.verdicts);
  Add(total.attempts, part.attempts);
  Add(total.sequence_verdicts, part.sequence_verdicts);
  total.conflicts.insert(total.conflicts.end(), part.conflicts.begin(), part.conflicts.end());
  total.conflicts_recorded += part.conflicts_recorded;
  total.conflicts_already_recorded += part.conflicts_already_recorded;
  total.replaced += part.replaced;
}

// The stack ids a transfer covers, in id order.
StatusOr<std::vector<std::string>> StacksToTransfer(Store& source,
                                                    const std::optional<std::string>& only) {
  CG_ASSIGN_OR_RETURN(std::vector<StackFingerprint> stacks, source.ListStacks());
  std::vector<std::string> ids;
  for (const StackFingerprint& s : stacks) ids.push_back(s.Id());
  if (!only) return ids;
  for (const std::string& id : ids) {
    if (id == *only) return std::vector<std::string>{id};
  }
  std::string held;
  for (size_t i = 0; i < ids.size() && i < 5; ++i) held += (i == 0 ? "" : ", ") + ids[i];
  if (ids.size() > 5) held += ", ... (" + std::to_string(ids.size()) + " in all)";
  return Status::InvalidArgument("stack " + *only + " is not in the source store; " +
                                 (ids.empty() ? "it holds no stacks" : "it holds " + held));
}

// Merges one stack's records into `destination` in batches of about
// options.batch_records records. A key's verdict and attempts always go in one batch, and
// the stack's sequence verdicts all in the last: a merge adds as many copies of a content
// as it is given, so copies of one content must not be split between merges.
Status TransferStack(Store& destination, const StackRecords& all, const MergeOptions& merge,
                     const TransferOptions& options, TransferProgress& progress,
                     TransferReport& report) {
  StackRecords batch;
  batch.stack = all.stack;
  int64_t in_batch = 0;
  bool stack_counted = false;
  auto commit = [&]() -> Status {
    CG_ASSIGN_OR_RETURN(MergeReport part, destination.MergeStackRecords(batch, merge));
    Accumulate(report.merged, part, !stack_counted);
    stack_counted = true;
    ++report.transactions;
    progress.records_done += in_batch;
    if (options.progress) options.progress(progress);
    batch.verdicts.clear();
    batch.attempts.clear();
    in_batch = 0;
    return Status::Ok();
  };
  for (const auto& [key, records] : GroupByKey(all)) {
    const int64_t size = static_cast<int64_t>(records.attempts.size()) + (records.verdict ? 1 : 0);
    if (in_batch > 0 && in_batch + size > options.batch_records) CG_RETURN_IF_ERROR(commit());
    for (const Attempt* a : records.attempts) batch.attempts.push_back(*a);
    if (records.verdict != nullptr) batch.verdicts.push_back(*records.verdict);
    in_batch += size;
  }
  const int64_t sequences = static_cast<int64_t>(all.sequence_verdicts.size());
  if (in_batch > 0 && in_batch + sequences > options.batch_records) {
    CG_RETURN_IF_ERROR(commit());
  }
  batch.sequence_verdicts = all.sequence_verdicts;
  in_batch += sequences;
  // The last batch; for a stack without records, the stack alone.
  if (in_batch > 0 || !stack_counted) CG_RETURN_IF_ERROR(commit());
  return Status::Ok();
}

}  // namespace

std::string ConflictDetail(const Verdict& incoming, const std::string& source_label) {
  json detail = json::object();
  detail["from"] = source_label;
  detail["verdict"] = ToJson(incoming);
  return DumpJson(detail);
}

StatusOr<StackRecords> CollectStackRecords(TransferStorage& storage, const std::string& stack_id,
                                           const std::string& store_label) {
  CG_ASSIGN_OR_RETURN(std::optional<StoredStack> stack, storage.ReadStack(stack_id));
  if (!stack) return Status::NotFound("stack " + stack_id + " is not in store " + store_label);
  StackRecords records;
  records.stack = std::move(*stack);
  VerdictFilter of_stack;
  of_stack.stack_id = stack_id;
  CG_ASSIGN_OR_RETURN(records.verdicts, storage.SelectVerdicts(of_stack));
  CG_ASSIGN_OR_RETURN(records.attempts, storage.ReadStackAttempts(stack_id));
  CG_ASSIGN_OR_RETURN(records.sequence_verdicts, storage.ReadSequenceVerdicts(stack_id));
  return records;
}

std::vector<VerdictKey> KeysOf(const StackRecords& records) {
  std::set<VerdictKey, KeyOrder> keys;
  for (const Verdict& v : records.verdicts) keys.insert(KeyOf(v));
  for (const Attempt& a : records.attempts) keys.insert(a.key);
  return {keys.begin(), keys.end()};
}

StatusOr<MergeReport> MergeRecords(TransferStorage& storage, const StackRecords& records,
                                   const MergeOptions& options) {
  // Everything is checked before anything is written.
  CG_ASSIGN_OR_RETURN(std::optional<StoredStack> stored, CheckRecords(storage, records));
  MergeReport report;
  CG_RETURN_IF_ERROR(MergeStack(storage, records.stack, stored, report));
  for (const auto& [key, incoming] : GroupByKey(records)) {
    CG_RETURN_IF_ERROR(MergeKey(storage, key, incoming, options, report));
  }
  CG_RETURN_IF_ERROR(MergeSequenceVerdicts(storage, records, report));
  return report;
}

Status TransferStore(Store& source, Store& destination, const TransferOptions& options,
                     TransferReport* report) {
  if (report == nullptr) return Status::InvalidArgument("TransferStore: report is null");
  *report = TransferReport{};
  return Guarded("TransferStore", [&]() -> Status {
    if (&source == &destination) {
      return Status::InvalidArgument(
          "the source and the destination are the same store; allowed two different stores");
    }
    if (options.batch_records < 1) {
      return Status::InvalidArgument("batch_records = " + std::to_string(options.batch_records) +
                                     " is out of range; allowed 1 and above");
    }
    CG_ASSIGN_OR_RETURN(std::vector<std::string> stack_ids,
                        StacksToTransfer(source, options.stack_id));
    const MergeOptions merge{options.source_label, options.prefer_incoming};
    for (size_t i = 0; i < stack_ids.size(); ++i) {
      CG_ASSIGN_OR_RETURN(StackRecords all, source.ReadStackRecords(stack_ids[i]));
      TransferProgress progress;
      progress.stack_id = stack_ids[i];
      progress.stack_number = static_cast<int>(i) + 1;
      progress.stacks = static_cast<int>(stack_ids.size());
      progress.records = static_cast<int64_t>(all.verdicts.size() + all.attempts.size() +
                                              all.sequence_verdicts.size());
      if (options.progress) options.progress(progress);
      CG_RETURN_IF_ERROR(TransferStack(destination, all, merge, options, progress, *report));
      ++report->stacks_done;
    }
    return Status::Ok();
  });
}

}  // namespace convguard
