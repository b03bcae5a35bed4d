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

#include <exception>
#include <new>
#include <string>
#include <string_view>

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

}  // namespace convguard
