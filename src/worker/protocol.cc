#include "worker/protocol.h"

#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/json_records.h"

namespace convguard::worker {
namespace {

using nlohmann::json;

json Envelope(std::string_view type) {
  json j;
  j["v"] = kProtocolVersion;
  j["type"] = type;
  return j;
}

// Reading one value is strict: json::get<T>() would convert between JSON types (true
// reads as 1, 2.9 as 2) and cast a number that T cannot hold, which for a floating-point
// number is undefined behaviour (a "seed" of 1e20). A value must have the JSON type of its
// field, and an integer must fit the field's type.
Status ReadValue(const json& v, std::string& out) {
  if (!v.is_string()) return Status::InvalidArgument("has the wrong type (expected a string)");
  out = v.get<std::string>();
  return Status::Ok();
}

Status ReadValue(const json& v, bool& out) {
  if (!v.is_boolean())
    return Status::InvalidArgument("has the wrong type (expected true or false)");
  out = v.get<bool>();
  return Status::Ok();
}

Status ReadValue(const json& v, double& out) {
  // JSON numbers are finite (the parser refuses 1e400), and every one is a double.
  if (!v.is_number()) return Status::InvalidArgument("has the wrong type (expected a number)");
  out = v.get<double>();
  return Status::Ok();
}

// Integers of every width; bool, also integral, has its own overload above, which
// overload resolution prefers to this template.
template <std::integral T>
Status ReadValue(const json& v, T& out) {
  std::optional<T> value;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (std::in_range<T>(u)) value = static_cast<T>(u);
  } else if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (std::in_range<T>(i)) value = static_cast<T>(i);
  } else {
    return Status::InvalidArgument("has the wrong type (expected an integer)");
  }
  if (!value) {
    return Status::InvalidArgument("is out of range: " + v.dump() + " (allowed " +
                                   std::to_string(std::numeric_limits<T>::min()) + ".." +
                                   std::to_string(std::numeric_limits<T>::max()) + ")");
  }
  out = *value;
  return Status::Ok();
}

template <typename T>
Status ReadValue(const json& v, std::vector<T>& out) {
  if (!v.is_array()) return Status::InvalidArgument("has the wrong type (expected an array)");
  std::vector<T> values(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (Status s = ReadValue(v[i], values[i]); !s.ok()) {
      return Status::InvalidArgument("element " + std::to_string(i) + " " + s.message());
    }
  }
  out = std::move(values);
  return Status::Ok();
}

// An object of numbers, e.g. {"benchmark": 2000}.
Status ReadValue(const json& v, std::map<std::string, double>& out) {
  if (!v.is_object()) return Status::InvalidArgument("has the wrong type (expected an object)");
  std::map<std::string, double> values;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (Status s = ReadValue(it.value(), values[it.key()]); !s.ok()) {
      return Status::InvalidArgument("member '" + it.key() + "' " + s.message());
    }
  }
  out = std::move(values);
  return Status::Ok();
}

// Reads a required field; the message names the field.
template <typename T>
Status Get(const json& j, const char* field, T& out) {
  auto it = j.find(field);
  if (it == j.end()) return Status::InvalidArgument(std::string("missing field '") + field + "'");
  if (Status s = ReadValue(*it, out); !s.ok()) {
    return Status::InvalidArgument(std::string("field '") + field + "' " + s.message());
  }
  return Status::Ok();
}

// Reads an optional field; leaves `out` unchanged when absent.
template <typename T>
Status GetOptional(const json& j, const char* field, T& out) {
  if (!j.contains(field)) return Status::Ok();
  return Get(j, field, out);
}

}  // namespace

// Each name table serves both directions, so a name cannot be printed that is not read.
constexpr std::pair<ProbeOutcome, std::string_view> kOutcomeNames[] = {
    {ProbeOutcome::kOk, "ok"},
    {ProbeOutcome::kWrong, "wrong"},
    {ProbeOutcome::kMistrusted, "mistrusted"},
    {ProbeOutcome::kError, "error"},
    {ProbeOutcome::kUnsupported, "unsupported"},
    {ProbeOutcome::kOom, "oom"}};
constexpr std::pair<ProbeStage, std::string_view> kStageNames[] = {
    {ProbeStage::kPrep, "prep"}, {ProbeStage::kRun, "run"}, {ProbeStage::kCheck, "check"}};

std::string_view ProbeOutcomeName(ProbeOutcome o) {
  for (const auto& [outcome, name] : kOutcomeNames) {
    if (outcome == o) return name;
  }
  return "?";
}

std::string_view ProbeStageName(ProbeStage s) {
  for (const auto& [stage, name] : kStageNames) {
    if (stage == s) return name;
  }
  return "?";
}

StatusOr<ProbeOutcome> ParseProbeOutcome(std::string_view name) {
  for (const auto& [outcome, text] : kOutcomeNames) {
    if (text == name) return outcome;
  }
  return Status::InvalidArgument("unknown outcome '" + std::string(name) + "'");
}

// Every encoder writes with DumpJson: strings reach them from vendor libraries, the file
// system and error messages and need not be UTF-8, and DumpJson writes an invalid byte as
// U+FFFD where json::dump would throw out of the encoder (and out of the worker).
std::string EncodeHello(const Hello& h) {
  json j = Envelope("hello");
  j["pid"] = h.pid;
  j["backend"] = h.backend;
  j["fingerprint"] = ToJson(h.fingerprint);
  j["first_call_allowance_ms"] = h.first_call_allowance_ms;
  if (!h.first_call_allowance_ms_by_algorithm.empty())
    j["first_call_allowance_ms_by_algorithm"] = h.first_call_allowance_ms_by_algorithm;
  j["shares_device"] = h.shares_device;
  j["visible_devices"] = h.visible_devices;
  if (!h.mapped_files.empty()) j["mapped_files"] = h.mapped_files;
  return DumpJson(j);
}

std::string EncodeFatal(const std::string& message) {
  json j = Envelope("fatal");
  j["message"] = message;
  return DumpJson(j);
}

std::string EncodeProbeRequest(const ProbeRequest& r) {
  json j = Envelope("probe");
  j["id"] = r.id;
  j["problem"] = r.problem;
  j["algorithm"] = r.algorithm;
  j["seed"] = r.seed;
  j["warmup"] = r.warmup;
  j["repeats"] = r.repeats;
  j["check"] = CheckModeName(r.check);
  j["sample_points"] = r.sample_points;
  if (r.health) j["health"] = true;
  return DumpJson(j);
}

std::string EncodePhase(const PhaseNotice& p) {
  json j = Envelope("phase");
  j["id"] = p.id;
  j["phase"] = ProbeStageName(p.phase);
  return DumpJson(j);
}

std::string EncodeProbeReply(const ProbeReply& r) {
  json j = Envelope("result");
  j["id"] = r.id;
  j["outcome"] = ProbeOutcomeName(r.outcome);
  j["algorithm"] = r.algorithm;
  j["times_ms"] = r.times_ms;
  j["implementation"] = r.implementation;
  j["message"] = r.message;
  j["check"] = r.check;
  j["tolerance"] = r.tolerance;
  j["mismatches"] = r.mismatches;
  j["non_finite"] = r.non_finite;
  j["max_abs_error"] = r.max_abs_error;
  j["max_rel_error"] = r.max_rel_error;
  // JSON has no NaN/Inf; dump() would write null, which reads back as a type error.
  if (!std::isfinite(r.max_abs_error)) j["max_abs_error"] = 1e308;
  if (!std::isfinite(r.max_rel_error)) j["max_rel_error"] = 1e308;
  if (!r.stage_ms.empty()) j["stage_ms"] = r.stage_ms;
  return DumpJson(j);
}

std::string EncodeAlgorithmsRequest(const AlgorithmsRequest& r) {
  json j = Envelope("algorithms");
  j["id"] = r.id;
  j["problem"] = r.problem;
  return DumpJson(j);
}

std::string EncodeAlgorithmsReply(const AlgorithmsReply& r) {
  json j = Envelope("algorithms");
  j["id"] = r.id;
  j["names"] = r.names;
  j["message"] = r.message;
  return DumpJson(j);
}

std::string EncodeBye() { return DumpJson(Envelope("bye")); }

StatusOr<Message> DecodeMessage(std::string_view payload, bool from_worker) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument("message is not a JSON object");
  }
  int version = 0;
  CG_RETURN_IF_ERROR(Get(j, "v", version));
  if (version != kProtocolVersion) {
    return Status::InvalidArgument("protocol version " + std::to_string(version) +
                                   " is not supported (this build speaks version " +
                                   std::to_string(kProtocolVersion) + ")");
  }
  Message m;
  CG_RETURN_IF_ERROR(Get(j, "type", m.type));
  if (m.type == "hello" && from_worker) {
    Hello h;
    CG_RETURN_IF_ERROR(Get(j, "pid", h.pid));
    CG_RETURN_IF_ERROR(Get(j, "backend", h.backend));
    if (!j.contains("fingerprint")) return Status::InvalidArgument("missing field 'fingerprint'");
    CG_ASSIGN_OR_RETURN(h.fingerprint, StackFromJson(j["fingerprint"]));
    CG_RETURN_IF_ERROR(GetOptional(j, "first_call_allowance_ms", h.first_call_allowance_ms));
    CG_RETURN_IF_ERROR(GetOptional(j, "first_call_allowance_ms_by_algorithm",
                                   h.first_call_allowance_ms_by_algorithm));
    for (const auto& [algorithm, ms] : h.first_call_allowance_ms_by_algorithm) {
      if (!(ms >= 0.0)) {
        return Status::InvalidArgument("first_call_allowance_ms_by_algorithm: '" + algorithm +
                                       "' has a negative or non-numeric allowance");
      }
    }
    CG_RETURN_IF_ERROR(GetOptional(j, "shares_device", h.shares_device));
    CG_RETURN_IF_ERROR(GetOptional(j, "visible_devices", h.visible_devices));
    CG_RETURN_IF_ERROR(GetOptional(j, "mapped_files", h.mapped_files));
    m.hello = std::move(h);
  } else if (m.type == "fatal" && from_worker) {
    std::string message;
    CG_RETURN_IF_ERROR(Get(j, "message", message));
    m.fatal = std::move(message);
  } else if (m.type == "probe" && !from_worker) {
    ProbeRequest r;
    std::string check = "sampled";
    CG_RETURN_IF_ERROR(Get(j, "id", r.id));
    CG_RETURN_IF_ERROR(Get(j, "problem", r.problem));
    CG_RETURN_IF_ERROR(GetOptional(j, "algorithm", r.algorithm));
    CG_RETURN_IF_ERROR(GetOptional(j, "seed", r.seed));
    CG_RETURN_IF_ERROR(GetOptional(j, "warmup", r.warmup));
    CG_RETURN_IF_ERROR(GetOptional(j, "repeats", r.repeats));
    CG_RETURN_IF_ERROR(GetOptional(j, "check", check));
    CG_ASSIGN_OR_RETURN(r.check, ParseCheckMode(check));
    CG_RETURN_IF_ERROR(GetOptional(j, "sample_points", r.sample_points));
    CG_RETURN_IF_ERROR(GetOptional(j, "health", r.health));
    if (r.warmup < 0 || r.repeats < 1 || r.sample_points < 0) {
      return Status::InvalidArgument("probe needs warmup >= 0, repeats >= 1, sample_points >= 0");
    }
    m.probe = std::move(r);
  } else if (m.type == "phase" && from_worker) {
    PhaseNotice p;
    std::string phase;
    CG_RETURN_IF_ERROR(Get(j, "id", p.id));
    CG_RETURN_IF_ERROR(Get(j, "phase", phase));
    if (phase == ProbeStageName(ProbeStage::kRun)) {
      p.phase = ProbeStage::kRun;
    } else if (phase == ProbeStageName(ProbeStage::kCheck)) {
      p.phase = ProbeStage::kCheck;
    } else {
      return Status::InvalidArgument("phase '" + phase + "' is unknown (allowed: run, check)");
    }
    m.phase = std::move(p);
  } else if (m.type == "result" && from_worker) {
    ProbeReply r;
    std::string outcome;
    CG_RETURN_IF_ERROR(Get(j, "id", r.id));
    CG_RETURN_IF_ERROR(Get(j, "outcome", outcome));
    CG_ASSIGN_OR_RETURN(r.outcome, ParseProbeOutcome(outcome));
    CG_RETURN_IF_ERROR(GetOptional(j, "algorithm", r.algorithm));
    CG_RETURN_IF_ERROR(GetOptional(j, "times_ms", r.times_ms));
    CG_RETURN_IF_ERROR(GetOptional(j, "implementation", r.implementation));
    CG_RETURN_IF_ERROR(GetOptional(j, "message", r.message));
    CG_RETURN_IF_ERROR(GetOptional(j, "check", r.check));
    CG_RETURN_IF_ERROR(GetOptional(j, "tolerance", r.tolerance));
    CG_RETURN_IF_ERROR(GetOptional(j, "mismatches", r.mismatches));
    CG_RETURN_IF_ERROR(GetOptional(j, "non_finite", r.non_finite));
    CG_RETURN_IF_ERROR(GetOptional(j, "max_abs_error", r.max_abs_error));
    CG_RETURN_IF_ERROR(GetOptional(j, "max_rel_error", r.max_rel_error));
    CG_RETURN_IF_ERROR(GetOptional(j, "stage_ms", r.stage_ms));
    for (const auto& [stage, ms] : r.stage_ms) {
      if (stage != "prep" && stage != "run" && stage != "check" && stage != "total") {
        return Status::InvalidArgument("stage_ms: stage '" + stage +
                                       "' is unknown (allowed: prep, run, check, total)");
      }
      if (!(ms >= 0.0)) {
        return Status::InvalidArgument("stage_ms: '" + stage +
                                       "' has a negative or non-numeric time");
      }
    }
    m.result = std::move(r);
  } else if (m.type == "algorithms" && !from_worker) {
    AlgorithmsRequest r;
    CG_RETURN_IF_ERROR(Get(j, "id", r.id));
    CG_RETURN_IF_ERROR(Get(j, "problem", r.problem));
    m.algorithms_request = std::move(r);
  } else if (m.type == "algorithms" && from_worker) {
    AlgorithmsReply r;
    CG_RETURN_IF_ERROR(Get(j, "id", r.id));
    CG_RETURN_IF_ERROR(Get(j, "names", r.names));
    CG_RETURN_IF_ERROR(GetOptional(j, "message", r.message));
    m.algorithms_reply = std::move(r);
  } else if (m.type == "bye" && !from_worker) {
    // nothing to read
  } else {
    return Status::InvalidArgument("unexpected message type '" + m.type + "' from the " +
                                   (from_worker ? "worker" : "parent"));
  }
  return m;
}

}  // namespace convguard::worker
