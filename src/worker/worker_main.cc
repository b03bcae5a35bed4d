#include "worker/worker_main.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <new>
#include <optional>
#include <sstream>

#include "convguard/backend.h"
#include "convguard/compare.h"
#include "convguard/exit_status.h"
#include "convguard/fill.h"
#include "convguard/reference.h"
#include "convguard/text_forms.h"
#include "os/pipe_io.h"
#include "os/system.h"
#include "worker/framing.h"
#include "worker/protocol.h"

namespace convguard::worker {
namespace {

class Channel {
 public:
  Channel(int in_fd, int out_fd) : in_fd_(in_fd), out_fd_(out_fd) {}

  Status Send(const std::string& payload) {
    CG_ASSIGN_OR_RETURN(std::string frame, EncodeFrame(payload));
    CG_ASSIGN_OR_RETURN(os::IoResult r, os::WriteAll(out_fd_, frame, os::Deadline::Never()));
    (void)r;
    return Status::Ok();
  }

  // Blocks for the next frame; nullopt on EOF.
  StatusOr<std::optional<std::string>> Receive() {
    for (;;) {
      if (std::optional<DecodedFrame> frame = decoder_.Next()) {
        return std::optional<std::string>(std::move(frame->payload));
      }
      uint8_t buf[65536];
      CG_ASSIGN_OR_RETURN(os::IoResult r, os::ReadSome(in_fd_, buf, os::Deadline::Never()));
      if (r.eof()) return std::optional<std::string>();
      decoder_.Feed(std::span<const uint8_t>(buf, r.bytes));
    }
  }

 private:
  int in_fd_;
  int out_fd_;
  FrameDecoder decoder_;
};

ProbeOutcome OutcomeForStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kUnsupported: return ProbeOutcome::kUnsupported;
    case StatusCode::kResourceExhausted: return ProbeOutcome::kOom;
    default: return ProbeOutcome::kError;
  }
}

// Milliseconds since `since` on the steady clock.
double MsSince(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
      .count();
}

ProbeReply RunProbe(Backend& backend, const ProbeRequest& request, Channel& channel) {
  auto stage_start = std::chrono::steady_clock::now();
  ProbeReply reply;
  reply.id = request.id;
  StatusOr<Problem> parsed = ParseProblem(request.problem, TextForm::kCanonical);
  if (!parsed.ok()) {
    reply.outcome = ProbeOutcome::kError;
    reply.message = "bad problem: " + parsed.status().message();
    return reply;
  }
  const Problem& p = *parsed;
  reply.algorithm = request.algorithm;
  if (reply.algorithm.empty()) {
    std::vector<std::string> algos = backend.Algorithms(p);
    if (algos.empty()) {
      reply.outcome = ProbeOutcome::kUnsupported;
      reply.message = "the backend offers no algorithm for this problem";
      return reply;
    }
    reply.algorithm = algos.front();
  }
  if (Status s = backend.Supports(p, reply.algorithm); !s.ok()) {
    reply.outcome = OutcomeForStatus(s);
    reply.message = s.message();
    return reply;
  }

  // Host buffers: the float64 exact operands (also the reference's inputs) and the
  // float32 copies the backend reads and writes.
  ConvTensors<double> exact;
  ConvTensors<float> io;
  try {
    exact = ConvTensors<double>::Allocate(p);
    io = ConvTensors<float>::Allocate(p);
  } catch (const std::bad_alloc&) {
    reply.outcome = ProbeOutcome::kOom;
    reply.message = "host memory for the problem's tensors could not be allocated";
    return reply;
  }
  FillExact(p, request.seed, exact);
  ToFloatOperands(p, exact, io);

  reply.stage_ms["prep"] = MsSince(stage_start);
  if (Status s = channel.Send(EncodePhase({request.id, ProbeStage::kRun})); !s.ok()) {
    reply.outcome = ProbeOutcome::kError;
    reply.message = s.message();
    return reply;
  }
  RunOptions options;
  options.warmup = request.warmup;
  options.repeats = request.repeats;
  stage_start = std::chrono::steady_clock::now();
  StatusOr<RunResult> ran = backend.Run(p, reply.algorithm, io, options);
  reply.stage_ms["run"] = MsSince(stage_start);
  if (!ran.ok()) {
    reply.outcome = OutcomeForStatus(ran.status());
    reply.message = ran.status().message();
    return reply;
  }
  reply.times_ms = ran->times_ms;
  reply.implementation = ran->implementation;

  (void)channel.Send(EncodePhase({request.id, ProbeStage::kCheck}));
  stage_start = std::chrono::steady_clock::now();
  const std::vector<float>& got = ResultTensor(p, io);
  // Exactly filled data gives exact results, unless the algorithm itself rounds.
  const double tolerance = DefaultTolerance(p, /*exact_filled=*/ran->exact);
  Comparison cmp;
  switch (request.check) {
    case CheckMode::kNone:
      reply.outcome = ProbeOutcome::kOk;
      reply.check = "none";
      return reply;
    case CheckMode::kSampled: {
      std::vector<int64_t> points = ChooseSamplePoints(p, request.sample_points, request.seed);
      std::vector<double> expected = ReferenceValuesAt(p, exact, points);
      cmp = CompareSampled(p, got, points, expected, tolerance);
      reply.check = "sampled:" + std::to_string(points.size());
      break;
    }
    case CheckMode::kFull: {
      ReferenceConvolution(p, exact);
      cmp = CompareFull(p, got, ResultTensor(p, exact), tolerance);
      reply.check = "full:" + std::to_string(got.size());
      break;
    }
  }
  reply.stage_ms["check"] = MsSince(stage_start);
  reply.tolerance = tolerance;
  reply.mismatches = cmp.mismatches;
  reply.non_finite = cmp.non_finite;
  reply.max_abs_error = cmp.max_abs_error;
  reply.max_rel_error = cmp.max_rel_error;
  if (cmp.non_finite > 0 || cmp.mismatches > 0) {
    reply.outcome = ProbeOutcome::kWrong;
    reply.message = cmp.Summary();
  } else if (cmp.mistrusted) {
    reply.outcome = ProbeOutcome::kMistrusted;
    reply.message = cmp.Summary();
  } else {
    reply.outcome = ProbeOutcome::kOk;
  }
  return reply;
}

AlgorithmsReply ListAlgorithms(Backend& backend, const AlgorithmsRequest& request) {
  AlgorithmsReply reply;
  reply.id = request.id;
  StatusOr<Problem> p = ParseProblem(request.problem, TextForm::kCanonical);
  if (!p.ok()) {
    reply.message = p.status().message();
    return reply;
  }
  reply.names = backend.Algorithms(*p);
  return reply;
}

StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open fault rules file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The engine names the device a worker serves in CONVGUARD_DEVICE_INDEX (its index among
// the engine's devices; CUDA_VISIBLE_DEVICES then holds the GPU itself). Fault rules read
// it as `device`. Unset: 0, a worker that serves one device or none.
StatusOr<int> DeviceIndexFromEnvironment() {
  const std::optional<std::string> text = os::GetEnv("CONVGUARD_DEVICE_INDEX");
  if (!text || text->empty()) return 0;
  int value = -1;
  const char* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, value);
  if (ec != std::errc() || ptr != end || value < 0) {
    return Status::InvalidArgument("CONVGUARD_DEVICE_INDEX='" + *text +
                                   "' is not a device index (allowed: 0, 1, 2, ...)");
  }
  return value;
}

}  // namespace

int WorkerMain(const std::vector<std::string>& args) {
  std::string backend_name;
  BackendOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--backend" && i + 1 < args.size()) {
      backend_name = args[++i];
    } else if (args[i] == "--inject" && i + 1 < args.size()) {
      options.fault_rules_origin = args[++i];
    } else {
      std::fprintf(stderr,
                   "convguard worker: unexpected argument '%s' (allowed: --backend NAME, "
                   "--inject FILE); workers are started by convguard itself\n",
                   args[i].c_str());
      return 2;
    }
  }
  if (backend_name.empty()) {
    std::fprintf(stderr, "convguard worker: --backend NAME is required\n");
    return 2;
  }

  StatusOr<int> protocol_fd = os::DetachStdoutForProtocol();
  if (!protocol_fd.ok()) {
    std::fprintf(stderr, "convguard worker: %s\n", protocol_fd.status().ToString().c_str());
    return kExitWorkerProtocolBroken;
  }
  Channel channel(/*in_fd=*/0, *protocol_fd);

  auto fail = [&](const Status& s) {
    (void)channel.Send(EncodeFatal(s.message()));
    return kExitWorkerBackendFailed;
  };
  StatusOr<int> device_index = DeviceIndexFromEnvironment();
  if (!device_index.ok()) return fail(device_index.status());
  options.device_index = *device_index;
  options.in_worker = true;
  if (!options.fault_rules_origin.empty()) {
    StatusOr<std::string> rules = ReadWholeFile(options.fault_rules_origin);
    if (!rules.ok()) return fail(rules.status());
    options.fault_rules = *rules;
  }
  StatusOr<std::unique_ptr<Backend>> created = CreateBackend(backend_name, options);
  if (!created.ok()) return fail(created.status());
  std::unique_ptr<Backend> backend = std::move(created).value();
  if (Status s = backend->Init(); !s.ok()) return fail(s.WithContext("backend init"));

  Hello hello;
  hello.pid = os::CurrentPid();
  hello.backend = std::string(backend->name());
  hello.fingerprint = backend->Fingerprint();
  hello.first_call_allowance_ms = backend->first_call_allowance_ms();
  hello.shares_device = backend->runs_on_shared_device();
  hello.visible_devices = backend->visible_devices();
  if (StatusOr<std::vector<std::string>> files = os::MappedFiles(); files.ok()) {
    hello.mapped_files = *std::move(files);
  }
  if (!channel.Send(EncodeHello(hello)).ok()) return kExitWorkerProtocolBroken;

  for (;;) {
    StatusOr<std::optional<std::string>> payload = channel.Receive();
    if (!payload.ok()) return kExitWorkerProtocolBroken;
    if (!payload->has_value()) return 0;  // the parent closed our stdin
    const auto received = std::chrono::steady_clock::now();
    StatusOr<Message> message = DecodeMessage(**payload, /*from_worker=*/false);
    if (!message.ok()) {
      std::fprintf(stderr, "convguard worker: ignoring a bad request: %s\n",
                   message.status().message().c_str());
      continue;
    }
    if (message->type == "bye") return 0;
    std::string reply;
    if (message->probe) {
      Backend& runs = message->probe->health ? backend->WithoutInjectedFaults() : *backend;
      ProbeReply probed = RunProbe(runs, *message->probe, channel);
      // Decoding the request and freeing the buffers included: what the reply accounts for.
      probed.stage_ms["total"] = MsSince(received);
      reply = EncodeProbeReply(probed);
    } else if (message->algorithms_request) {
      reply = EncodeAlgorithmsReply(ListAlgorithms(*backend, *message->algorithms_request));
    } else {
      continue;
    }
    if (!channel.Send(reply).ok()) return kExitWorkerProtocolBroken;
  }
}

}  // namespace convguard::worker
