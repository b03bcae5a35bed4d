// store/stored_records.h — what a stored record means, the same for every store: a
// verdict's key, the canonical text that decides whether two verdicts are equal, when
// two stack fingerprints are the same stack, and reading a stored JSON record back.
//
// The JSON forms themselves are json_records.h; this adds the store's rules on top, so
// that the SQLite store and the JSON Lines import (jsonl.h) decide alike.
//
// Thread-safety: pure functions. None throws (except std::bad_alloc).
// The argument checks and Guarded are here too, so that every store refuses alike.
#pragma once

#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/sequence_verdict.h"
#include "convguard/stack.h"
#include "convguard/status.h"
#include "convguard/store.h"
#include "convguard/verdict.h"

namespace convguard {

VerdictKey KeyOf(const Verdict& v);

// Whether two fingerprints are the same stack. tool_version is left out, as it is from
// StackFingerprint::Id(): upgrading convguard must not make a stored stack a stranger.
bool SameIdentity(StackFingerprint a, StackFingerprint b);

// The canonical text of a stored or new verdict: equal texts mean equal verdicts.
std::string VerdictRecord(const Verdict& v);

// Whether `stored_record` holds the verdict whose canonical text is `record`, compared in
// today's form: a record written by an older convguard may differ in text (e.g. lack a
// field added since) and still hold the same verdict. An unreadable record holds none.
bool SameVerdict(const std::string& stored_record, const std::string& record);

// A record read back from the store at `path`. A record the store itself wrote that no
// longer reads is a broken invariant: kInternal, naming the store.
StatusOr<Verdict> ParseStoredVerdict(const std::string& record, const std::string& path);
StatusOr<StackFingerprint> ParseStoredStack(const std::string& record, const std::string& path);
StatusOr<SequenceVerdict> ParseStoredSequenceVerdict(const std::string& record,
                                                     const std::string& path);

// The arguments every store refuses alike (kInvalidArgument), before touching the database.
Status CheckKey(const VerdictKey& key);
Status CheckStackFields(const StackFingerprint& stack);
Status CheckFilter(const VerdictFilter& filter);
Status CheckClaimArguments(const VerdictKey& key, const std::string& owner, double stale_after_s);
Status CheckSequenceVerdict(const SequenceVerdict& v);

// The `detail` of the "abandoned" attempt a store keeps when `owner` takes over the claim
// of `holder`, made `age_s` seconds ago.
std::string TakeoverDetail(const std::string& holder, double age_s, const std::string& owner,
                           bool holder_alive);

// Runs `f`, turning any exception into a Status: exceptions never cross the Store API.
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

// The public face both stores share: every Store method runs its store's *Impl under
// Guarded, so that the list of operations and their guarding are written once. A store
// derives from it and implements the protected operations.
class GuardedStore : public Store {
 public:
  Status PutStack(const StackFingerprint& stack) final {
    return Guarded("PutStack", [&] { return PutStackImpl(stack); });
  }
  StatusOr<std::optional<StackFingerprint>> GetStack(const std::string& stack_id) final {
    return Guarded("GetStack", [&] { return GetStackImpl(stack_id); });
  }
  StatusOr<std::vector<StackFingerprint>> ListStacks() final {
    return Guarded("ListStacks", [&] { return ListStacksImpl(); });
  }
  Status PutVerdict(const Verdict& v) final {
    return Guarded("PutVerdict", [&] { return PutVerdictImpl(v); });
  }
  StatusOr<std::optional<Verdict>> GetVerdict(const VerdictKey& key) final {
    return Guarded("GetVerdict", [&] { return GetVerdictImpl(key); });
  }
  StatusOr<std::vector<Verdict>> ListVerdicts(const VerdictFilter& filter) final {
    return Guarded("ListVerdicts", [&] { return ListVerdictsImpl(filter); });
  }
  Status AddAttempt(const Attempt& a) final {
    return Guarded("AddAttempt", [&] { return AddAttemptImpl(a); });
  }
  StatusOr<std::vector<Attempt>> ListAttempts(const VerdictKey& key) final {
    return Guarded("ListAttempts", [&] { return ListAttemptsImpl(key); });
  }
  StatusOr<ClaimResult> Claim(const VerdictKey& key, const std::string& owner, bool redo,
                              double stale_after_s) final {
    return Guarded("Claim", [&] { return ClaimImpl(key, owner, redo, stale_after_s); });
  }
  Status Release(const std::string& owner, const std::optional<VerdictKey>& key) final {
    return Guarded("Release", [&] { return ReleaseImpl(owner, key); });
  }
  StatusOr<int64_t> AddSequenceVerdict(const SequenceVerdict& v) final {
    return Guarded("AddSequenceVerdict", [&] { return AddSequenceVerdictImpl(v); });
  }
  StatusOr<std::vector<SequenceVerdict>> ListSequenceVerdicts(
      const std::optional<std::string>& stack_id) final {
    return Guarded("ListSequenceVerdicts", [&] { return ListSequenceVerdictsImpl(stack_id); });
  }
  StatusOr<StackRecords> ReadStackRecords(const std::string& stack_id) final {
    return Guarded("ReadStackRecords", [&] { return ReadStackRecordsImpl(stack_id); });
  }
  StatusOr<MergeReport> MergeStackRecords(const StackRecords& records,
                                          const MergeOptions& options) final {
    return Guarded("MergeStackRecords", [&] { return MergeStackRecordsImpl(records, options); });
  }
  StatusOr<std::string> ExportJsonLines(const VerdictFilter& filter) final {
    return Guarded("ExportJsonLines", [&] { return ExportImpl(filter); });
  }
  StatusOr<ImportReport> ImportJsonLines(const std::string& text, bool replace) final {
    return Guarded("ImportJsonLines", [&] { return ImportImpl(text, replace); });
  }

 protected:
  virtual Status PutStackImpl(const StackFingerprint& stack) = 0;
  virtual StatusOr<std::optional<StackFingerprint>> GetStackImpl(const std::string& stack_id) = 0;
  virtual StatusOr<std::vector<StackFingerprint>> ListStacksImpl() = 0;
  virtual Status PutVerdictImpl(const Verdict& v) = 0;
  virtual StatusOr<std::optional<Verdict>> GetVerdictImpl(const VerdictKey& key) = 0;
  virtual StatusOr<std::vector<Verdict>> ListVerdictsImpl(const VerdictFilter& filter) = 0;
  virtual Status AddAttemptImpl(const Attempt& a) = 0;
  virtual StatusOr<std::vector<Attempt>> ListAttemptsImpl(const VerdictKey& key) = 0;
  virtual StatusOr<ClaimResult> ClaimImpl(const VerdictKey& key, const std::string& owner,
                                          bool redo, double stale_after_s) = 0;
  virtual Status ReleaseImpl(const std::string& owner, const std::optional<VerdictKey>& key) = 0;
  virtual StatusOr<int64_t> AddSequenceVerdictImpl(const SequenceVerdict& v) = 0;
  virtual StatusOr<std::vector<SequenceVerdict>> ListSequenceVerdictsImpl(
      const std::optional<std::string>& stack_id) = 0;
  virtual StatusOr<StackRecords> ReadStackRecordsImpl(const std::string& stack_id) = 0;
  virtual StatusOr<MergeReport> MergeStackRecordsImpl(const StackRecords& records,
                                                      const MergeOptions& options) = 0;
  virtual StatusOr<std::string> ExportImpl(const VerdictFilter& filter) = 0;
  virtual StatusOr<ImportReport> ImportImpl(const std::string& text, bool replace) = 0;
};

}  // namespace convguard
