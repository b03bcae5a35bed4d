// core/json_records.h — JSON forms of StackFingerprint and Verdict.
//
// One JSON object per value; the same forms are used by the SQLite store (its `record`
// and `fingerprint` columns, its JSON Lines export) and by the worker protocol, so there
// is exactly one definition of each (documented in docs/store.md).
//
// Writing: every field is written, always, under the struct's own field name. Doubles
// that JSON cannot hold are written as the strings "inf", "-inf" and "nan". The verdict
// kind is written by name ("HANG"). Knobs are an object of strings.
//
// Reading is strict so that typos and foreign data fail loudly, with a message naming
// the field:
//   - the value must be an object;
//   - required: StackFingerprint "backend"; Verdict "kind", "stack_id", "problem",
//     "algorithm" (each a non-empty string);
//   - every other field may be absent and then keeps the struct's default;
//   - a field of the wrong type, an integer out of range, or an unknown field is
//     kInvalidArgument ("field 'attempts': expected an integer, got string").
// Envelope fields (e.g. the export's "type") must be removed by the caller.
//
// Strings are UTF-8. DumpJson never throws: invalid UTF-8 bytes in a string are written
// as U+FFFD.
//
// Thread-safety: pure functions. None throws (except std::bad_alloc).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "convguard/sequence_verdict.h"
#include "convguard/stack.h"
#include "convguard/status.h"
#include "convguard/verdict.h"

namespace convguard {

nlohmann::json ToJson(const StackFingerprint& stack);
StatusOr<StackFingerprint> StackFromJson(const nlohmann::json& j);

nlohmann::json ToJson(const Verdict& verdict);
StatusOr<Verdict> VerdictFromJson(const nlohmann::json& j);

// A SequenceVerdict: its fields under their names, the kind by name, `alone` an array of
// {"problem", "algorithm", "kind"}. Required when reading: "kind", "stack_id", "digest".
nlohmann::json ToJson(const SequenceVerdict& verdict);
StatusOr<SequenceVerdict> SequenceVerdictFromJson(const nlohmann::json& j);

// Compact one-line text of `j` (keys sorted, no spaces, no newline). Never throws.
std::string DumpJson(const nlohmann::json& j);
// Parses one JSON text; kInvalidArgument with the parser's message (and byte position)
// when it is not valid JSON.
StatusOr<nlohmann::json> ParseJson(std::string_view text);

}  // namespace convguard
