#include "core/json_records.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

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

  void StringList(const char* name, std::vector<std::string>& out) {
    const json* v = Find(name, false);
    if (v == nullptr) return;
    if (!v->is_array()) return TypeError(name, "an array of strings", *v);
    std::vector<std::string> result;
    for (const json& item : *v) {
      if (!item.is_string()) {
        return Fail(name, "expected an array of strings, got an element of type " +
                              std::string(TypeName(item)));
      }
      result.push_back(item.get<std::string>());
    }
    out = std::move(result);
  }

  // Each element of the array `name` (absent: none), read by `read_one`, which returns
  // a Status; the first error names the element.
  template <typename ReadOne>
  void Array(const char* name, ReadOne&& read_one) {
    const json* v = Find(name, false);
    if (v == nullptr) return;
    if (!v->is_array()) return TypeError(name, "an array", *v);
    for (size_t i = 0; i < v->size(); ++i) {
      if (Status s = read_one((*v)[i]); !s.ok()) {
        return Fail(name, "element " + std::to_string(i) + ": " + s.message());
      }
    }
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

// Writes fields under their names: the counterpart of FieldReader, so that one list of
// fields per struct (below) serves both directions.
class FieldWriter {
 public:
  void String(const char* name, const std::string& v, bool /*required*/ = false) { j_[name] = v; }
  void Int64(const char* name, int64_t v) { j_[name] = v; }
  void Int(const char* name, int v) { j_[name] = v; }
  void Double(const char* name, double v) { j_[name] = DoubleToJson(v); }
  void Bool(const char* name, bool v) { j_[name] = v; }
  void StringMap(const char* name, const std::map<std::string, std::string>& m) {
    json object = json::object();
    for (const auto& [key, value] : m) object[key] = value;
    j_[name] = std::move(object);
  }
  void StringList(const char* name, const std::vector<std::string>& v) { j_[name] = v; }
  json Take() { return std::move(j_); }

 private:
  json j_ = json::object();
};

// Every field of a StackFingerprint, in reading order (errors name the first bad one).
// `S` is StackFingerprint (reading) or const StackFingerprint (writing).
template <typename Fields, typename S>
void StackFields(Fields& f, S& s) {
  f.String("backend", s.backend, /*required=*/true);
  f.String("device", s.device);
  f.String("architecture", s.architecture);
  f.Int64("compute_units", s.compute_units);
  f.String("driver", s.driver);
  f.String("runtime", s.runtime);
  f.String("library", s.library);
  f.StringMap("knobs", s.knobs);
  f.String("emulation", s.emulation);
  f.String("fault_rules_digest", s.fault_rules_digest);
  f.String("tool_version", s.tool_version);
}

// Every field of a Verdict but its kind (an enum, read and written by name), in reading
// order.
template <typename Fields, typename V>
void VerdictFields(Fields& f, V& v) {
  f.String("stack_id", v.stack_id, /*required=*/true);
  f.String("problem", v.problem, /*required=*/true);
  f.String("algorithm", v.algorithm, /*required=*/true);
  f.Double("time_ms_min", v.time_ms_min);
  f.Double("time_ms_median", v.time_ms_median);
  f.Int("crash_signal", v.crash_signal);
  f.Int("exit_code", v.exit_code);
  f.String("message", v.message);
  f.String("check", v.check);
  f.Double("tolerance", v.tolerance);
  f.Double("max_abs_error", v.max_abs_error);
  f.Double("max_rel_error", v.max_rel_error);
  f.Int64("mismatches", v.mismatches);
  f.Int64("non_finite", v.non_finite);
  f.String("implementation", v.implementation);
  f.Int("attempts", v.attempts);
  f.Double("deadline_ms", v.deadline_ms);
  f.Double("elapsed_ms", v.elapsed_ms);
  f.String("tool_version", v.tool_version);
  f.String("recorded_at", v.recorded_at);
  f.String("repro", v.repro);
  f.Bool("emulated", v.emulated);
}

// Every scalar or list field of a SequenceVerdict (not its kind or `alone`), in reading
// order.
template <typename Fields, typename V>
void SequenceVerdictFields(Fields& f, V& v) {
  f.Int64("id", v.id);
  f.String("stack_id", v.stack_id, /*required=*/true);
  f.String("digest", v.digest, /*required=*/true);
  f.String("source", v.source);
  f.Int64("calls", v.calls);
  f.Int64("calls_run", v.calls_run);
  f.Int64("failed_at", v.failed_at);
  f.String("failed_problem", v.failed_problem);
  f.String("failed_algorithm", v.failed_algorithm);
  f.String("failed_origin", v.failed_origin);
  f.Int64("slow_calls", v.slow_calls);
  f.Int64("unsupported_calls", v.unsupported_calls);
  f.String("message", v.message);
  f.Double("elapsed_ms", v.elapsed_ms);
  f.StringList("minimal", v.minimal);
  f.String("minimal_note", v.minimal_note);
  f.String("repro", v.repro);
  f.String("tool_version", v.tool_version);
  f.String("recorded_at", v.recorded_at);
  f.Bool("emulated", v.emulated);
}

}  // namespace

json ToJson(const SequenceVerdict& v) {
  FieldWriter w;
  w.String("kind", std::string(VerdictName(v.kind)));
  SequenceVerdictFields(w, v);
  json j = w.Take();
  json alone = json::array();
  for (const ProblemAlone& a : v.alone) {
    alone.push_back(json{{"problem", a.problem},
                         {"algorithm", a.algorithm},
                         {"kind", std::string(VerdictName(a.kind))}});
  }
  j["alone"] = std::move(alone);
  return j;
}

StatusOr<SequenceVerdict> SequenceVerdictFromJson(const json& j) {
  SequenceVerdict v;
  FieldReader r(j);
  std::string kind;
  r.String("kind", kind, /*required=*/true);
  if (r.ok()) {
    StatusOr<VerdictKind> parsed = ParseVerdictName(kind);
    if (!parsed.ok()) return parsed.status().WithContext("sequence verdict: field 'kind'");
    v.kind = *parsed;
  }
  SequenceVerdictFields(r, v);
  r.Array("alone", [&](const json& item) -> Status {
    ProblemAlone a;
    FieldReader ar(item);
    std::string alone_kind;
    ar.String("problem", a.problem, /*required=*/true);
    ar.String("algorithm", a.algorithm, /*required=*/true);
    ar.String("kind", alone_kind, /*required=*/true);
    CG_RETURN_IF_ERROR(ar.Finish());
    CG_ASSIGN_OR_RETURN(a.kind, ParseVerdictName(alone_kind));
    v.alone.push_back(std::move(a));
    return Status::Ok();
  });
  CG_RETURN_IF_ERROR(r.Finish().WithContext("sequence verdict"));
  return v;
}

json ToJson(const StackFingerprint& s) {
  FieldWriter w;
  StackFields(w, s);
  return w.Take();
}

StatusOr<StackFingerprint> StackFromJson(const json& j) {
  StackFingerprint s;
  FieldReader r(j);
  StackFields(r, s);
  CG_RETURN_IF_ERROR(r.Finish().WithContext("stack fingerprint"));
  return s;
}

json ToJson(const Verdict& v) {
  FieldWriter w;
  w.String("kind", std::string(VerdictName(v.kind)));
  VerdictFields(w, v);
  return w.Take();
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
  VerdictFields(r, v);
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
