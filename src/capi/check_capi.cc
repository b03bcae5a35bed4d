// The C API over convguard's filling, checking and fault rules (see check_capi.h).
//
// Every entry point is a thin wrapper: parse the canonical problem, call the same
// functions `convguard worker` calls (src/worker/worker_main.cc RunProbe; for fault
// rules src/backends/inject/), and turn the result into return codes and text. Everything runs
// inside Guarded(), which converts any C++ exception (std::bad_alloc above all) into a return code,
// so none crosses the C boundary into a foreign runtime.
#include "capi/check_capi.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "backends/inject/fault_rules.h"
#include "backends/inject/injecting_backend.h"
#include "convguard/compare.h"
#include "convguard/fill.h"
#include "convguard/problem.h"
#include "convguard/reference.h"
#include "convguard/tensor.h"
#include "convguard/text_forms.h"
#include "core/json_records.h"

namespace convguard {
namespace {

using nlohmann::json;

// Copies `text` into a caller's buffer, always NUL-terminated, truncated if need be.
void WriteText(const std::string& text, char* out, size_t len) {
  if (out == nullptr || len == 0) return;
  const size_t n = std::min(text.size(), len - 1);
  std::memcpy(out, text.data(), n);
  out[n] = '\0';
}

// Writes a complete result document, or reports that the buffer is too small (a
// truncated JSON document would be worse than none).
int WriteResult(const std::string& text, char* out, size_t len) {
  if (out == nullptr || text.size() + 1 > len) {
    WriteText("the output buffer holds " + std::to_string(len) + " bytes; " +
                  std::to_string(text.size() + 1) + " are needed",
              out, len);
    return CG_ETOOSMALL;
  }
  WriteText(text, out, len);
  return CG_OK;
}

// Runs `body` (which returns a CG_* code and writes its own messages), converting any
// exception into a code and a message.
template <typename Body>
int Guarded(char* err, size_t errlen, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    WriteText("out of host memory", err, errlen);
    return CG_ENOMEM;
  } catch (const std::exception& e) {
    WriteText(std::string("internal error: ") + e.what(), err, errlen);
    return CG_EINTERNAL;
  } catch (...) {
    WriteText("internal error: unknown exception", err, errlen);
    return CG_EINTERNAL;
  }
}

// Parses canonical problem text (only the canonical form: it is what the protocol
// carries, and accepting other forms here would hide a caller's mistake).
int Parse(const char* canonical, Problem& out, char* err, size_t errlen) {
  if (canonical == nullptr) {
    WriteText("problem text is NULL", err, errlen);
    return CG_EINVAL;
  }
  StatusOr<Problem> p = ParseProblem(canonical, TextForm::kCanonical);
  if (!p.ok()) {
    WriteText("bad problem '" + std::string(canonical) + "': " + p.status().message(), err, errlen);
    return CG_EINVAL;
  }
  out = *p;
  return CG_OK;
}

std::string_view RoleName(TensorRole role) {
  switch (role) {
    case TensorRole::kInput: return "input";
    case TensorRole::kWeight: return "weight";
    case TensorRole::kOutput: break;
  }
  return "output";
}

// JSON has no NaN or infinity; like EncodeProbeReply, write the largest double instead.
double Finite(double d) { return std::isfinite(d) ? d : 1e308; }

}  // namespace
}  // namespace convguard

using namespace convguard;  // NOLINT: the C entry points below are outside any namespace

// A probe session: the problem and its float64 exact operands.
struct cg_probe {
  Problem problem;
  uint64_t seed = 0;
  ConvTensors<double> exact;
};

// Parsed fault rules.
struct cg_rules {
  inject::FaultRules rules;
};

namespace {

// Parses and fills a new session; the code says why when `out` stays empty.
int OpenProbe(const char* canonical, uint64_t seed, std::unique_ptr<cg_probe>& out, char* err,
              size_t errlen) {
  return Guarded(err, errlen, [&]() -> int {
    Problem p;
    if (int rc = Parse(canonical, p, err, errlen); rc != CG_OK) return rc;
    auto probe = std::make_unique<cg_probe>();
    probe->problem = p;
    probe->seed = seed;
    probe->exact = ConvTensors<double>::Allocate(p);
    FillExact(p, seed, probe->exact);
    out = std::move(probe);
    return CG_OK;
  });
}

// A device index for the cg_rules_* functions: 0, 1, 2, ... (a rule's `device`).
int CheckDevice(int device, char* out, size_t len) {
  if (device >= 0) return CG_OK;
  WriteText("device " + std::to_string(device) + " is negative (allowed: 0, 1, 2, ...)", out, len);
  return CG_EINVAL;
}

// The call history of cg_rules_match_call, checked: `previous` receives the parsed
// previous problem, which `history` points at.
int ReadHistory(int64_t calls, const char* previous_canonical, const char* previous_algorithm,
                Problem& previous, inject::CallHistory& history, char* out, size_t len) {
  const bool has_previous = previous_canonical != nullptr && *previous_canonical != '\0';
  if (calls < 1) {
    WriteText("calls " + std::to_string(calls) +
                  " is not a call's position (allowed: 1 for the first call, 2, 3, ...)",
              out, len);
    return CG_EINVAL;
  }
  if (has_previous != (calls > 1)) {
    WriteText(has_previous
                  ? "calls is 1 (the first call), yet a previous problem is given"
                  : "calls is " + std::to_string(calls) +
                        ", but no previous problem is given (only the first call has none)",
              out, len);
    return CG_EINVAL;
  }
  history.calls = calls;
  if (!has_previous) return CG_OK;
  if (previous_algorithm == nullptr || *previous_algorithm == '\0') {
    WriteText("the previous call's algorithm is missing (give the resolved name)", out, len);
    return CG_EINVAL;
  }
  char why[4096] = "";
  if (int rc = Parse(previous_canonical, previous, why, sizeof why); rc != CG_OK) {
    WriteText("previous call: " + std::string(why), out, len);  // which problem was bad
    return rc;
  }
  history.previous = &previous;
  history.previous_algorithm = previous_algorithm;
  return CG_OK;
}

}  // namespace

extern "C" {

int cg_capi_version(void) { return CG_CAPI_VERSION; }

const char* cg_tool_version(void) { return CONVGUARD_VERSION; }

int cg_problem_sizes(const char* canonical, int64_t out_sizes[4], char* err, size_t errlen) {
  return Guarded(err, errlen, [&]() -> int {
    if (out_sizes == nullptr) {
      WriteText("out_sizes is NULL", err, errlen);
      return CG_EINVAL;
    }
    Problem p;
    if (int rc = Parse(canonical, p, err, errlen); rc != CG_OK) return rc;
    out_sizes[0] = p.input_elements();
    out_sizes[1] = p.weight_elements();
    out_sizes[2] = p.output_elements();
    out_sizes[3] = p.bias_elements();
    return CG_OK;
  });
}

int cg_problem_json(const char* canonical, char* json_out, size_t json_len) {
  return Guarded(json_out, json_len, [&]() -> int {
    Problem p;
    if (int rc = Parse(canonical, p, json_out, json_len); rc != CG_OK) return rc;
    json j = {
        {"canonical", ToCanonical(p)},
        {"n", p.n},
        {"c", p.c},
        {"h", p.h},
        {"w", p.w},
        {"k", p.k},
        {"r", p.r},
        {"s", p.s},
        {"pad_top", p.pad_top},
        {"pad_left", p.pad_left},
        {"pad_bottom", p.pad_bottom},
        {"pad_right", p.pad_right},
        {"stride_h", p.stride_h},
        {"stride_w", p.stride_w},
        {"dilation_h", p.dilation_h},
        {"dilation_w", p.dilation_w},
        {"groups", p.groups},
        {"bias", p.bias},
        {"dtype", DataTypeName(p.dtype)},
        {"layout", LayoutName(p.layout)},
        {"direction", DirectionName(p.direction)},
        {"out_h", p.out_h()},
        {"out_w", p.out_w()},
        {"input_elements", p.input_elements()},
        {"weight_elements", p.weight_elements()},
        {"output_elements", p.output_elements()},
        {"bias_elements", p.bias_elements()},
        {"result", RoleName(ResultRole(p.direction))},
        {"macs", p.macs()},
    };
    return WriteResult(j.dump(), json_out, json_len);
  });
}

int cg_fill(const char* canonical, uint64_t seed, float* input, float* weight, float* output,
            float* bias, char* err, size_t errlen) {
  std::unique_ptr<cg_probe> probe;
  if (int rc = OpenProbe(canonical, seed, probe, err, errlen); rc != CG_OK) return rc;
  return cg_probe_fill(probe.get(), input, weight, output, bias, err, errlen);
}

int cg_check(const char* canonical, uint64_t seed, const float* result, int64_t result_elements,
             const char* mode, int64_t sample_points, char* json_out, size_t json_len) {
  std::unique_ptr<cg_probe> probe;
  if (int rc = OpenProbe(canonical, seed, probe, json_out, json_len); rc != CG_OK) return rc;
  return cg_probe_check(probe.get(), result, result_elements, mode, sample_points, json_out,
                        json_len);
}

cg_probe* cg_probe_open(const char* canonical, uint64_t seed, char* err, size_t errlen) {
  std::unique_ptr<cg_probe> probe;
  if (OpenProbe(canonical, seed, probe, err, errlen) != CG_OK) return nullptr;
  return probe.release();
}

int cg_probe_fill(cg_probe* probe, float* input, float* weight, float* output, float* bias,
                  char* err, size_t errlen) {
  return Guarded(err, errlen, [&]() -> int {
    if (probe == nullptr) {
      WriteText("the probe session is NULL", err, errlen);
      return CG_EINVAL;
    }
    const Problem& p = probe->problem;
    if (input == nullptr || weight == nullptr || output == nullptr) {
      WriteText("the input, weight and output buffers must not be NULL", err, errlen);
      return CG_EINVAL;
    }
    if (p.bias && bias == nullptr) {
      WriteText("the problem has a bias; its buffer must not be NULL", err, errlen);
      return CG_EINVAL;
    }
    const ConvTensors<double>& exact = probe->exact;
    auto copy = [](const std::vector<double>& from, float* to) {
      for (size_t i = 0; i < from.size(); ++i) to[i] = static_cast<float>(from[i]);
    };
    copy(exact.input, input);
    copy(exact.weight, weight);
    copy(exact.output, output);
    if (p.bias) copy(exact.bias, bias);
    float* result = ResultRole(p.direction) == TensorRole::kInput    ? input
                    : ResultRole(p.direction) == TensorRole::kWeight ? weight
                                                                     : output;
    PoisonWithNaN(std::span<float>(result, ResultTensor(p, exact).size()));
    return CG_OK;
  });
}

int cg_probe_check(cg_probe* probe, const float* result, int64_t result_elements, const char* mode,
                   int64_t sample_points, char* json_out, size_t json_len) {
  return Guarded(json_out, json_len, [&]() -> int {
    if (probe == nullptr) {
      WriteText("the probe session is NULL", json_out, json_len);
      return CG_EINVAL;
    }
    const Problem& p = probe->problem;
    const std::string check_mode = mode == nullptr ? "" : mode;
    if (check_mode != "none" && check_mode != "sampled" && check_mode != "full") {
      WriteText("check mode '" + check_mode + "' is unknown (allowed: none, sampled, full)",
                json_out, json_len);
      return CG_EINVAL;
    }
    const int64_t expected_elements = ResultView(p).elements();
    if (result == nullptr || result_elements != expected_elements) {
      WriteText("the result must hold " + std::to_string(expected_elements) + " elements; got " +
                    (result == nullptr ? std::string("NULL") : std::to_string(result_elements)),
                json_out, json_len);
      return CG_EINVAL;
    }
    if (sample_points < 0) {
      WriteText("sample_points must be >= 0", json_out, json_len);
      return CG_EINVAL;
    }

    json reply = {{"outcome", "ok"},      {"check", "none"}, {"tolerance", -1.0},
                  {"mismatches", 0},      {"non_finite", 0}, {"max_abs_error", 0.0},
                  {"max_rel_error", 0.0}, {"message", ""}};
    if (check_mode == "none") return WriteResult(reply.dump(), json_out, json_len);

    const std::span<const float> got(result, static_cast<size_t>(expected_elements));
    const double tolerance = DefaultTolerance(p, /*exact_filled=*/true);
    Comparison cmp;
    if (check_mode == "sampled") {
      const std::vector<int64_t> points = ChooseSamplePoints(p, sample_points, probe->seed);
      const std::vector<double> expected = ReferenceValuesAt(p, probe->exact, points);
      cmp = CompareSampled(p, got, points, expected, tolerance);
      reply["check"] = "sampled:" + std::to_string(points.size());
    } else {
      // ReferenceConvolution overwrites the result tensor of `exact`; the operands it
      // reads stay as filled, so a second full check of the session is still right.
      ReferenceConvolution(p, probe->exact);
      cmp = CompareFull(p, got, ResultTensor(p, probe->exact), tolerance);
      reply["check"] = "full:" + std::to_string(got.size());
    }
    reply["tolerance"] = tolerance;
    reply["mismatches"] = cmp.mismatches;
    reply["non_finite"] = cmp.non_finite;
    reply["max_abs_error"] = Finite(cmp.max_abs_error);
    reply["max_rel_error"] = Finite(cmp.max_rel_error);
    if (cmp.non_finite > 0 || cmp.mismatches > 0) {
      reply["outcome"] = "wrong";
      reply["message"] = cmp.Summary();
    } else if (cmp.mistrusted) {
      reply["outcome"] = "mistrusted";
      reply["message"] = cmp.Summary();
    }
    return WriteResult(reply.dump(-1, ' ', false, json::error_handler_t::replace), json_out,
                       json_len);
  });
}

void cg_probe_close(cg_probe* probe) { delete probe; }

cg_rules* cg_rules_parse(const char* text, size_t text_len, const char* origin, char* err,
                         size_t errlen) {
  std::unique_ptr<cg_rules> out;
  const int rc = Guarded(err, errlen, [&]() -> int {
    if (text == nullptr && text_len > 0) {
      WriteText("the rules text is NULL", err, errlen);
      return CG_EINVAL;
    }
    StatusOr<inject::FaultRules> parsed = inject::ParseFaultRules(
        std::string_view(text == nullptr ? "" : text, text_len), origin == nullptr ? "" : origin);
    if (!parsed.ok()) {
      WriteText(parsed.status().message(), err, errlen);
      return CG_EINVAL;
    }
    out = std::make_unique<cg_rules>();
    out->rules = std::move(*parsed);
    return CG_OK;
  });
  return rc == CG_OK ? out.release() : nullptr;
}

int cg_rules_json(const cg_rules* rules, char* json_out, size_t json_len) {
  return Guarded(json_out, json_len, [&]() -> int {
    if (rules == nullptr) {
      WriteText("the rules are NULL", json_out, json_len);
      return CG_EINVAL;
    }
    const inject::FaultRules& r = rules->rules;
    const json j = {{"origin", r.origin},
                    {"digest", r.digest},
                    {"emulation", r.emulation},
                    {"rules", r.rules.size()}};
    return WriteResult(DumpJson(j), json_out, json_len);
  });
}

int cg_rules_match(const cg_rules* rules, const char* canonical, const char* algorithm, int device,
                   char* json_out, size_t json_len) {
  return cg_rules_match_call(rules, canonical, algorithm, device, /*calls=*/1, nullptr, nullptr,
                             json_out, json_len);
}

int cg_rules_match_call(const cg_rules* rules, const char* canonical, const char* algorithm,
                        int device, int64_t calls, const char* previous_canonical,
                        const char* previous_algorithm, char* json_out, size_t json_len) {
  return Guarded(json_out, json_len, [&]() -> int {
    if (rules == nullptr || algorithm == nullptr) {
      WriteText(rules == nullptr ? "the rules are NULL" : "the algorithm is NULL", json_out,
                json_len);
      return CG_EINVAL;
    }
    if (int rc = CheckDevice(device, json_out, json_len); rc != CG_OK) return rc;
    Problem p;
    if (int rc = Parse(canonical, p, json_out, json_len); rc != CG_OK) return rc;
    Problem previous;
    inject::CallHistory history;
    if (int rc = ReadHistory(calls, previous_canonical, previous_algorithm, previous, history,
                             json_out, json_len);
        rc != CG_OK) {
      return rc;
    }
    const inject::FaultRules& r = rules->rules;
    const inject::FaultRule* rule = r.Match(p, algorithm, device, history);
    if (rule == nullptr) return WriteResult(DumpJson(json{{"matched", false}}), json_out, json_len);
    const inject::Fault& fault = rule->fault;
    const std::string where = r.Where(*rule);
    const std::string kind(inject::FaultKindName(fault.kind));
    // The texts InjectingBackend writes (src/backends/inject/injecting_backend.cc:
    // AnnounceFatal, the " [injected by ...]" suffix, Marked), so that a verdict of the
    // PyTorch worker reads like one of a C++ worker.
    const json j = {
        {"matched", true},
        {"kind", kind},
        {"fatal", inject::IsFatal(fault.kind)},
        {"fault", fault.ToString()},
        {"wrong_fraction", fault.wrong_fraction},
        {"slow_ms", fault.slow_ms},
        {"exit_code", fault.exit_code},
        {"message", fault.message},
        {"line", rule->line},
        {"where", where},
        {"rule", rule->ToString()},
        {"announce",
         "convguard: injected fault '" + kind + "' by rule " + where + ": " + rule->ToString()},
        {"injected_by", " [injected by " + where + "]"},
        {"mark", "[injected " + fault.ToString() + " by " + where + "]"},
    };
    return WriteResult(DumpJson(j), json_out, json_len);
  });
}

int cg_rules_apply_fingerprint(const cg_rules* rules, const char* fingerprint_json, int device,
                               char* json_out, size_t json_len) {
  return Guarded(json_out, json_len, [&]() -> int {
    if (rules == nullptr || fingerprint_json == nullptr) {
      WriteText(rules == nullptr ? "the rules are NULL" : "the fingerprint is NULL", json_out,
                json_len);
      return CG_EINVAL;
    }
    if (int rc = CheckDevice(device, json_out, json_len); rc != CG_OK) return rc;
    StatusOr<json> parsed = ParseJson(fingerprint_json);
    if (!parsed.ok()) {
      WriteText("bad fingerprint JSON: " + parsed.status().message(), json_out, json_len);
      return CG_EINVAL;
    }
    StatusOr<StackFingerprint> fp = StackFromJson(*parsed);
    if (!fp.ok()) {
      WriteText(fp.status().message(), json_out, json_len);
      return CG_EINVAL;
    }
    rules->rules.ApplyTo(*fp, device);
    return WriteResult(DumpJson(ToJson(*fp)), json_out, json_len);
  });
}

void cg_rules_close(cg_rules* rules) { delete rules; }

int cg_corrupt_tail(float* data, int64_t elements, double fraction, char* err, size_t errlen) {
  return Guarded(err, errlen, [&]() -> int {
    if (elements < 0 || (data == nullptr && elements > 0)) {
      WriteText("the tensor must hold elements >= 0 values (got " + std::to_string(elements) +
                    (data == nullptr ? ", NULL)" : ")"),
                err, errlen);
      return CG_EINVAL;
    }
    if (!(fraction > 0.0 && fraction <= 1.0)) {
      WriteText("the fraction must be in (0, 1]; got " + std::to_string(fraction), err, errlen);
      return CG_EINVAL;
    }
    // The same function InjectingBackend uses, on a copy (it takes a vector).
    std::vector<float> tensor(data, data + elements);
    inject::CorruptTail(tensor, fraction);
    std::copy(tensor.begin(), tensor.end(), data);
    return CG_OK;
  });
}

}  // extern "C"
