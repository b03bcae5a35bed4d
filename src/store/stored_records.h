// store/stored_records.h — what a stored record means, the same for every store: a
// verdict's key, the canonical text that decides whether two verdicts are equal, when
// two stack fingerprints are the same stack, and reading a stored JSON record back.
//
// The JSON forms themselves are json_records.h; this adds the store's rules on top, so
// that the SQLite store and the JSON Lines import (jsonl.h) decide alike.
//
// Thread-safety: pure functions. None throws (except std::bad_alloc).
#pragma once

#include <string>

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

}  // namespace convguard
