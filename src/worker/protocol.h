// worker/protocol.h — the messages between the deciding process and a worker.
//
// Every message is one JSON object carried in one frame (worker/framing.h). The full
// description, with examples, is docs/worker-protocol.md; the Python worker speaks the
// same protocol. Version 1:
//
//   worker -> parent, once at start:  hello | fatal
//   parent -> worker:                 probe | algorithms | bye
//   worker -> parent, per probe:      phase("run"), phase("check"), result
//   worker -> parent, per algorithms: algorithms
//
// Phases let the parent give each stage its own deadline: the run stage is the vendor
// code that may hang; filling and checking are convguard's own work, sized by the problem.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "convguard/compare.h"
#include "convguard/stack.h"
#include "convguard/status.h"

namespace convguard::worker {

inline constexpr int kProtocolVersion = 1;

struct Hello {
  int64_t pid = 0;
  std::string backend;
  StackFingerprint fingerprint;
  double first_call_allowance_ms = 0.0;
  // Algorithms whose first call needs another allowance (the torch worker's `benchmark`
  // on CUDA searches every algorithm); the others take first_call_allowance_ms. Optional.
  std::map<std::string, double> first_call_allowance_ms_by_algorithm;
  bool shares_device = false;  // probes of other workers on the same device contend
  int visible_devices = 0;     // GPUs this worker can see (0: a CPU backend)
  // The files the worker had mapped once its backend was up (its executable, the vendor
  // and driver libraries, the interpreter): the stack stays what it is while none of
  // them changes (probe/identity_cache.h). Optional; empty when the worker cannot say.
  std::vector<std::string> mapped_files;
};

struct ProbeRequest {
  int64_t id = 0;
  std::string problem;    // canonical text
  std::string algorithm;  // empty: the backend's default
  uint64_t seed = 1;
  int warmup = 1;
  int repeats = 3;
  CheckMode check = CheckMode::kSampled;
  int64_t sample_points = 256;  // interior points for kSampled
  // A device health check (the engine's known-good probe after a fault): it asks whether
  // the device and its library still work, not whether this shape does, so injected
  // faults do not apply to it (the worker runs it on the backend without its fault
  // rules). Sent only when true.
  bool health = false;
};

// What the worker itself observed. Hangs and crashes are never reported here: the
// parent sees those from outside.
enum class ProbeOutcome { kOk, kWrong, kMistrusted, kError, kUnsupported, kOom };
std::string_view ProbeOutcomeName(ProbeOutcome o);
StatusOr<ProbeOutcome> ParseProbeOutcome(std::string_view name);

struct ProbeReply {
  int64_t id = 0;
  ProbeOutcome outcome = ProbeOutcome::kError;
  std::string algorithm;  // the algorithm that ran (the default resolved)
  std::vector<double> times_ms;
  std::string implementation;
  std::string message;
  std::string check;        // "none", "sampled:N", "full:N" (N = elements checked)
  double tolerance = -1.0;  // what the check allowed (Verdict::tolerance); -1: no check
  int64_t mismatches = 0;
  int64_t non_finite = 0;
  double max_abs_error = 0.0;
  double max_rel_error = 0.0;
  // The worker's own wall time per stage of this probe, in ms: "prep" (parsing,
  // allocating, filling), "run" (the backend's warm-up and timed repeats), "check", and
  // "total" (from reading the request to encoding this reply, freeing included); a stage
  // the probe did not reach is absent. Optional: a diagnosis of where a round trip goes
  // (ProbeRunResult::worker_time), never part of a verdict.
  std::map<std::string, double> stage_ms;
};

// The stages of a probe, each with its own deadline. kPrep (allocating and filling) is
// the time before the worker's first phase notice; the worker announces kRun (vendor
// code, the stage that may hang) and kCheck (the float64 reference).
enum class ProbeStage { kPrep, kRun, kCheck };
std::string_view ProbeStageName(ProbeStage s);  // "prep", "run", "check"

struct PhaseNotice {
  int64_t id = 0;
  ProbeStage phase = ProbeStage::kRun;  // kRun or kCheck on the wire ("run", "check")
};

struct AlgorithmsRequest {
  int64_t id = 0;
  std::string problem;
};

struct AlgorithmsReply {
  int64_t id = 0;
  std::vector<std::string> names;
  std::string message;  // non-empty when the problem could not be parsed
};

// Encoders return the JSON text of one message.
std::string EncodeHello(const Hello& h);
std::string EncodeFatal(const std::string& message);
std::string EncodeProbeRequest(const ProbeRequest& r);
std::string EncodePhase(const PhaseNotice& p);
std::string EncodeProbeReply(const ProbeReply& r);
std::string EncodeAlgorithmsRequest(const AlgorithmsRequest& r);
std::string EncodeAlgorithmsReply(const AlgorithmsReply& r);
std::string EncodeBye();

// A decoded message of any type. Exactly one of the optionals is set, matching `type`.
struct Message {
  std::string type;  // "hello", "fatal", "probe", "phase", "result", "algorithms", "bye"
  std::optional<Hello> hello;
  std::optional<std::string> fatal;
  std::optional<ProbeRequest> probe;
  std::optional<PhaseNotice> phase;
  std::optional<ProbeReply> result;
  std::optional<AlgorithmsRequest> algorithms_request;
  std::optional<AlgorithmsReply> algorithms_reply;
};

// Decodes one payload. `from_worker` says which direction it travelled ("algorithms"
// means a request from the parent and a reply from a worker). Malformed JSON, a missing
// field or another protocol version is kInvalidArgument naming what was wrong.
StatusOr<Message> DecodeMessage(std::string_view payload, bool from_worker);

}  // namespace convguard::worker
