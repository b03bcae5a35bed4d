// The store's rules on stored records. Contract: stored_records.h.
#include "store/stored_records.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/json_records.h"

namespace convguard {
namespace {

template <typename T>
StatusOr<T> FromRecord(const std::string& record, StatusOr<T> (*from_json)(const nlohmann::json&)) {
  StatusOr<nlohmann::json> j = ParseJson(record);
  if (!j.ok()) return j.status();
  return from_json(*j);
}

template <typename T>
StatusOr<T> ParseStored(const std::string& record, const std::string& path, const char* what,
                        StatusOr<T> (*from_json)(const nlohmann::json&)) {
  StatusOr<T> value = FromRecord(record, from_json);
  if (!value.ok()) {
    return Status::Internal("store " + path + ": a stored " + what +
                            " is unreadable: " + value.status().message());
  }
  return value;
}

}  // namespace

VerdictKey KeyOf(const Verdict& v) { return {v.stack_id, v.problem, v.algorithm}; }

bool SameIdentity(StackFingerprint a, StackFingerprint b) {
  a.tool_version.clear();
  b.tool_version.clear();
  return a == b;
}

std::string VerdictRecord(const Verdict& v) { return DumpJson(ToJson(v)); }

bool SameVerdict(const std::string& stored_record, const std::string& record) {
  StatusOr<Verdict> stored = FromRecord(stored_record, VerdictFromJson);
  return stored.ok() && VerdictRecord(*stored) == record;
}

StatusOr<Verdict> ParseStoredVerdict(const std::string& record, const std::string& path) {
  return ParseStored(record, path, "verdict", VerdictFromJson);
}

StatusOr<StackFingerprint> ParseStoredStack(const std::string& record, const std::string& path) {
  return ParseStored(record, path, "stack", StackFromJson);
}

StatusOr<SequenceVerdict> ParseStoredSequenceVerdict(const std::string& record,
                                                     const std::string& path) {
  return ParseStored(record, path, "sequence verdict", SequenceVerdictFromJson);
}

Status CheckKey(const VerdictKey& key) {
  if (key.stack_id.empty()) return Status::InvalidArgument("verdict key: stack_id is empty");
  if (key.problem.empty()) return Status::InvalidArgument("verdict key: problem is empty");
  if (key.algorithm.empty()) return Status::InvalidArgument("verdict key: algorithm is empty");
  return Status::Ok();
}

Status CheckStackFields(const StackFingerprint& stack) {
  if (stack.backend.empty()) return Status::InvalidArgument("stack fingerprint: backend is empty");
  return Status::Ok();
}

Status CheckFilter(const VerdictFilter& filter) {
  if (filter.limit < -1) {
    return Status::InvalidArgument("verdict filter: limit = " + std::to_string(filter.limit) +
                                   " is out of range; allowed -1 (no limit) or 0 and above");
  }
  return Status::Ok();
}

Status CheckClaimArguments(const VerdictKey& key, const std::string& owner, double stale_after_s) {
  CG_RETURN_IF_ERROR(CheckKey(key));
  if (owner.empty()) return Status::InvalidArgument("claim: owner is empty");
  if (std::isnan(stale_after_s)) {
    return Status::InvalidArgument(
        "claim: stale_after_s is NaN; allowed any number of "
        "seconds (+inf: never stale)");
  }
  return Status::Ok();
}

Status CheckSequenceVerdict(const SequenceVerdict& v) {
  if (v.stack_id.empty()) return Status::InvalidArgument("sequence verdict: stack_id is empty");
  if (v.digest.empty()) return Status::InvalidArgument("sequence verdict: digest is empty");
  return Status::Ok();
}

std::string TakeoverDetail(const std::string& holder, double age_s, const std::string& owner,
                           bool holder_alive) {
  char age_text[32];
  std::snprintf(age_text, sizeof age_text, "%.1f", age_s);
  return "claim of " + holder + " (" + age_text + " s old) taken over by " + owner + ": " +
         (holder_alive ? "stale" : "owner not alive");
}

}  // namespace convguard
