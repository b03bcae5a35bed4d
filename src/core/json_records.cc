#include "core/json_records.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>

namespace convguard {
namespace {

using nlohmann::json;

std::string_view TypeName(const json& j) {
  if (j.is_number_integer()) return "integer";
  if (j.is_number_float()) return "number";
  return j.type_name();  // "null", "object", "array", "string", "boolean", ...
}

json DoubleToJson(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  return d;
}

// Reads the fields of one JSON object into a struct, remembering the first error and
// which fields were consumed, so that unknown fields can be reported at the end.
class FieldReader {
 public:
  explicit FieldReader(const json& j) : j_(j) {
    if (!j_.is_object()) {
      status_ = Status::InvalidArgument("expected a JSON object, got " + std::string(TypeName(j_)));
    }
  }

  void String(const char* name, std::string& out, bool required = false) {
    const json* v = Find(name, required);
    if (v == nullptr) return;
    if (!v->is_string()) return TypeError(name, "a string", *v);
    out = v->get<std::string>();
    if (required && out.empty()) Fail(name, "must not be empty");
  }

  void Int64(const char* name, int64_t& out) {
    const json* v = Find(name, false);
    if (v == nullptr) return;
    if (v->is_number_unsigned()) {
      uint64_t u = v->get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Fail(name, std::to_string(u) + " does not fit a 64-bit signed integer");
      }
      out = static_cast<int64_t>(u);
    } else if (v->is_number_integer()) {
      out = v->get<int64_t>();
    } else {
      TypeError(name, "an integer", *v);
    }
  }

  void Int(const char* name, int& out) {
    int64_t wide = out;
    Int64(name, wide);
    if (!status_.ok()) return;
    if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max()) {
      return Fail(name, std::to_string(wide) + " does not fit a 32-bit integer");
    }
    out = static_cast<int>(wide);
  }

  void Double(const char* name, double& out) {
    const json* v = Find(name, false);
    if (v == nullptr) return;
    if (v->is_number()) {
      out = v->get<double>();
    } else if (v->is_string() && *v == "inf") {
      out = std::numeric_limits<double>::infinity();
    } else if (v->is_string() && *v == "-inf") {
      out = -std::numeric_limits<double>::infinity();
    } else if (v->is_string() && *v == "nan") {
      out = std::numeric_limits<double>::quiet_NaN();
    } else {
      TypeError(name, "a number (or \"inf\", \"-inf\", \"nan\")", *v);
    }
  }

  void Bool(const char* name, bool& out) {
    const json* v = Find(name, false);
    if (v == nullptr) return;
    if (!v->is_boolean()) return TypeError(name, "true or false", *v);
    out = v->get<bool>();
  }

  void StringMap(const char* name, std::map<std::string, std::string>& out) {
    const json* v = Find(name, false);
    if (v == nullptr) return;
    if (!v->is_object()) return TypeError(name, "an object of strings", *v);
    std::map<std::string, std::string> result;
    for (const auto& [key, value] : v->items()) {
      if (!value.is_string()) {
        return Fail(
            name, "value of '" + key + "': expected a string, got " + std::string(TypeName(value)));
      }
      result.emplace(key, value.get<std::string>());
    }
    out = std::move(result);
  }

  // Reports the first error, else the first field that no reader call consumed.
  Status Finish() {
    if (!status_.ok()) return status_;
    for (const auto& [key, value] : j_.items()) {
      if (!consumed_.contains(key)) {
        return Status::InvalidArgument("unknown field '" + key + "'");
      }
    }
    return Status::Ok();
  }

  bool ok() const { return status_.ok(); }

 private:
  const json* Find(const char* name, bool required) {
    if (!status_.ok()) return nullptr;
    consumed_.insert(name);
    auto it = j_.find(name);
    if (it == j_.end()) {
      if (required) Fail(name, "is required");
      return nullptr;
    }
    return &*it;
  }

  void TypeError(const char* name, std::string_view expected, const json& got) {
    Fail(name, "expected " + std::string(expected) + ", got " + std::string(TypeName(got)));
  }

  void Fail(const char* name, const std::string& what) {
    if (status_.ok()) {
      status_ = Status::InvalidArgument("field '" + std::string(name) + "': " + what);
    }
  }

  const json& j_;
  Status status_;
  std::set<std::string, std::less<>> consumed_;
};

}  // namespace

json ToJson(const StackFingerprint& s) {
  json knobs = json::object();
  for (const auto& [name, value] : s.knobs) knobs[name] = value;
  return json{
      {"backend", s.backend},
      {"device", s.device},
      {"architecture", s.architecture},
      {"compute_units", s.compute_units},
      {"driver", s.driver},
      {"runtime", s.runtime},
      {"library", s.library},
      {"knobs", std::move(knobs)},
      {"emulation", s.emulation},
      {"fault_rules_digest", s.fault_rules_digest},
      {"tool_version", s.tool_version},
  };
}

StatusOr<StackFingerprint> StackFromJson(const json& j) {
  StackFingerprint s;
  FieldReader r(j);
  r.String("backend", s.backend, /*required=*/true);
  r.String("device", s.device);
  r.String("architecture", s.architecture);
  r.Int64("compute_units", s.compute_units);
  r.String("driver", s.driver);
  r.String("runtime", s.runtime);
  r.String("library", s.library);
  r.StringMap("knobs", s.knobs);
  r.String("emulation", s.emulation);
  r.String("fault_rules_digest", s.fault_rules_digest);
  r.String("tool_version", s.tool_version);
  CG_RETURN_IF_ERROR(r.Finish().WithContext("stack fingerprint"));
  return s;
}

json ToJson(const Verdict& v) {
  return json{
      {"kind", VerdictName(v.kind)},
      {"stack_id", v.stack_id},
      {"problem", v.problem},
      {"algorithm", v.algorithm},
      {"time_ms_min", DoubleToJson(v.time_ms_min)},
      {"time_ms_median", DoubleToJson(v.time_ms_median)},
      {"crash_signal", v.crash_signal},
      {"exit_code", v.exit_code},
      {"message", v.message},
      {"check", v.check},
      {"tolerance", DoubleToJson(v.tolerance)},
      {"max_abs_error", DoubleToJson(v.max_abs_error)},
      {"max_rel_error", DoubleToJson(v.max_rel_error)},
      {"mismatches", v.mismatches},
      {"non_finite", v.non_finite},
      {"implementation", v.implementation},
      {"attempts", v.attempts},
      {"deadline_ms", DoubleToJson(v.deadline_ms)},
      {"elapsed_ms", DoubleToJson(v.elapsed_ms)},
      {"tool_version", v.tool_version},
      {"recorded_at", v.recorded_at},
      {"repro", v.repro},
      {"emulated", v.emulated},
  };
}

StatusOr<Verdict> VerdictFromJson(const json& j) {
  Verdict v;
  FieldReader r(j);
  std::string kind;
  r.String("kind", kind, /*required=*/true);
  if (r.ok()) {
    StatusOr<VerdictKind> parsed = ParseVerdictName(kind);
    if (!parsed.ok()) return parsed.status().WithContext("verdict: field 'kind'");
    v.kind = *parsed;
  }
  r.String("stack_id", v.stack_id, /*required=*/true);
  r.String("problem", v.problem, /*required=*/true);
  r.String("algorithm", v.algorithm, /*required=*/true);
  r.Double("time_ms_min", v.time_ms_min);
  r.Double("time_ms_median", v.time_ms_median);
  r.Int("crash_signal", v.crash_signal);
  r.Int("exit_code", v.exit_code);
  r.String("message", v.message);
  r.String("check", v.check);
  r.Double("tolerance", v.tolerance);
  r.Double("max_abs_error", v.max_abs_error);
  r.Double("max_rel_error", v.max_rel_error);
  r.Int64("mismatches", v.mismatches);
  r.Int64("non_finite", v.non_finite);
  r.String("implementation", v.implementation);
  r.Int("attempts", v.attempts);
  r.Double("deadline_ms", v.deadline_ms);
  r.Double("elapsed_ms", v.elapsed_ms);
  r.String("tool_version", v.tool_version);
  r.String("recorded_at", v.recorded_at);
  r.String("repro", v.repro);
  r.Bool("emulated", v.emulated);
  CG_RETURN_IF_ERROR(r.Finish().WithContext("verdict"));
  return v;
}

std::string DumpJson(const json& j) {
  return j.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

StatusOr<json> ParseJson(std::string_view text) {
  // The throwing parser is the one that explains what is wrong; the exception stays here.
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 5: ..." -> keep the
    // part after the bracketed id.
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    return Status::InvalidArgument("not valid JSON: " + what);
  }
}

}  // namespace convguard
