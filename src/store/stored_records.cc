// The store's rules on stored records. Contract: stored_records.h.
#include "store/stored_records.h"

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

}  // namespace convguard
