// A worker that breaks the protocol on purpose, for the engine's integration tests.
// It says a proper hello, then answers each probe according to the problem's c:
//   c == 1  writes junk bytes, then a proper OK reply
//   c == 2  writes the first half of a reply frame and exits (dies mid-reply)
//   c == 3  writes junk and exits with status 1 without replying
//   else    a proper OK reply
// It lists one algorithm, "direct", for any problem.
//
// Fake GPUs (the engine's multi-device paths on a machine without a GPU), chosen by the
// environment the worker inherits:
//   CONVGUARD_FAKE_GPUS=N        the machine has N GPUs, numbered 0..N-1. The worker then
//                                behaves like a CUDA worker: it reads CUDA_VISIBLE_DEVICES
//                                as CUDA does (unset: all N; else a comma-separated list of
//                                indices, cut at the first entry that is not an index below
//                                N or repeats one; HIP_VISIBLE_DEVICES is ignored), says
//                                hello with visible_devices = how many it sees and
//                                shares_device = true, and runs on the first device it
//                                sees. Seeing none, it sends "fatal" and exits 3, as a CUDA
//                                backend that finds no device does.
//                                Its stack's device is "Fake GPU E", E being that device's
//                                index (the entry it is pinned to), so every device is a
//                                stack of its own.
//   CONVGUARD_FAKE_SAME_STACK=1  every device reports the same stack (device "Fake GPU"),
//                                as identical cards do: their pools share one job queue.
//   CONVGUARD_FAKE_HANG_DEVICE=E on device E only, probes of problems whose k is
//                                CONVGUARD_FAKE_HANG_K (default 7) hang for real: the worker
//                                announces the run stage and blocks in a system call until
//                                it is killed.
//   CONVGUARD_FAKE_SLOW_K=K      on every device, probes of problems whose k is K spend
//   CONVGUARD_FAKE_SLOW_MS=MS    MS milliseconds (default 1000) in their run stage, then
//                                finish: work that is in flight while another device hangs.
//   CONVGUARD_FAKE_START_MS=MS   wait MS milliseconds before saying hello (a slow start-up,
//                                like importing torch)
//   CONVGUARD_FAKE_START_LOG=F   append "start <device> <ns>" when the process starts and
//                                "hello <device> <ns>" just before its hello to file F, ns
//                                being steady_clock (CLOCK_MONOTONIC) nanoseconds, so a test
//                                can count worker starts and see which start-ups overlapped
//   --inject FILE                (the engine passes it with ProbeOptions::fault_rules_path)
//                                real fault rules, parsed and matched by convguard's own
//                                code, with `device` read from CONVGUARD_DEVICE_INDEX as the
//                                real worker reads it: the stack carries the rules' digest
//                                for that device (FaultRules::ApplyTo), and a probe whose
//                                first matching rule is spin or block hangs for real (blocks
//                                until killed). Other faults are not faked: such a rule is
//                                an error at start-up.
// Probes answered in fake-GPU mode go through the run and check phases like a real worker
// and reply OK with GPU-like times, check "none" (nothing is computed) and implementation
// "fake-gpu:E", so a test can tell which device ran a probe. The c rules above still apply.
// Algorithms offered there: "implicit-gemm" (the default) and "winograd".
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/inject/fault_rules.h"
#include "convguard/text_forms.h"
#include "os/pipe_io.h"
#include "os/system.h"
#include "worker/framing.h"
#include "worker/protocol.h"

using namespace convguard;

namespace {

void Write(int fd, const std::string& bytes) {
  (void)os::WriteAll(fd, bytes, os::Deadline::Never());
}

std::string Frame(const std::string& payload) { return *worker::EncodeFrame(payload); }

// A whole decimal number in [0, limit), else nullopt.
std::optional<int> IndexBelow(const std::string& text, int limit) {
  if (text.empty() || text.size() > 6 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const int value = std::atoi(text.c_str());
  if (value >= limit) return std::nullopt;
  return value;
}

struct FakeGpus {
  int count = 0;             // physical GPUs; 0: fake-GPU mode is off
  std::vector<int> visible;  // what CUDA_VISIBLE_DEVICES leaves, in its order
  bool same_stack = false;
  std::optional<int> hang_device;
  int64_t hang_k = 7;
  std::optional<int64_t> slow_k;
  int slow_ms = 1000;
  std::optional<inject::FaultRules> rules;  // --inject FILE
  int device_index = 0;                     // CONVGUARD_DEVICE_INDEX: what a rule's `device` reads

  // The device this worker runs on: CUDA device 0 of what it sees.
  int device() const { return visible.front(); }
  bool HangsOn(const Problem& p, const std::string& algorithm) const {
    if (rules && rules->Match(p, algorithm, device_index) != nullptr) return true;
    return hang_device == device() && p.k == hang_k;
  }
};

// Reads the --inject FILE rules into `g`; a message when they cannot be used.
std::optional<std::string> ReadRules(int argc, char** argv, FakeGpus& g) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) != "--inject") continue;
    std::ifstream in(argv[i + 1], std::ios::binary);
    if (!in) return "cannot open fault rules file '" + std::string(argv[i + 1]) + "'";
    std::ostringstream text;
    text << in.rdbuf();
    StatusOr<inject::FaultRules> rules = inject::ParseFaultRules(text.str(), argv[i + 1]);
    if (!rules.ok()) return rules.status().message();
    for (const inject::FaultRule& rule : rules->rules) {
      if (rule.fault.kind != inject::FaultKind::kSpin &&
          rule.fault.kind != inject::FaultKind::kBlock) {
        return "the fake-GPU worker fakes spin and block only, not '" + rule.ToString() + "'";
      }
    }
    g.rules = std::move(rules).value();
  }
  const std::optional<int> index =
      IndexBelow(os::GetEnv("CONVGUARD_DEVICE_INDEX").value_or("0"), 1 << 20);
  if (!index) return "CONVGUARD_DEVICE_INDEX is not a device index";
  g.device_index = *index;
  return std::nullopt;
}

FakeGpus ReadFakeGpus() {
  FakeGpus g;
  const std::optional<std::string> n = os::GetEnv("CONVGUARD_FAKE_GPUS");
  if (!n) return g;
  g.count = IndexBelow(*n, 65).value_or(0);
  const std::optional<std::string> list = os::GetEnv("CUDA_VISIBLE_DEVICES");
  if (!list) {
    for (int d = 0; d < g.count; ++d) g.visible.push_back(d);
  } else {
    // CUDA's rule: the devices before the first bad entry are visible, the rest are not.
    std::set<int> seen;
    size_t start = 0;
    while (start <= list->size()) {
      const size_t comma = std::min(list->find(',', start), list->size());
      const std::optional<int> d = IndexBelow(list->substr(start, comma - start), g.count);
      if (!d || !seen.insert(*d).second) break;
      g.visible.push_back(*d);
      start = comma + 1;
    }
  }
  g.same_stack = os::GetEnv("CONVGUARD_FAKE_SAME_STACK").value_or("") == "1";
  if (const std::optional<std::string> h = os::GetEnv("CONVGUARD_FAKE_HANG_DEVICE")) {
    g.hang_device = IndexBelow(*h, 1 << 20);
  }
  if (const std::optional<std::string> k = os::GetEnv("CONVGUARD_FAKE_HANG_K")) {
    g.hang_k = IndexBelow(*k, 1 << 20).value_or(7);
  }
  if (const std::optional<std::string> k = os::GetEnv("CONVGUARD_FAKE_SLOW_K")) {
    g.slow_k = IndexBelow(*k, 1 << 20);
  }
  if (const std::optional<std::string> ms = os::GetEnv("CONVGUARD_FAKE_SLOW_MS")) {
    g.slow_ms = IndexBelow(*ms, 1 << 20).value_or(1000);
  }
  return g;
}

worker::Hello MakeHello(const FakeGpus& gpus) {
  worker::Hello hello;
  hello.pid = os::CurrentPid();
  hello.backend = "misbehaving";
  hello.fingerprint.backend = "misbehaving";
  if (gpus.count == 0) {
    hello.fingerprint.device = "test double";
    hello.fingerprint.emulation = "a test worker that breaks the protocol on purpose";
    return hello;
  }
  hello.fingerprint.device =
      gpus.same_stack ? "Fake GPU" : "Fake GPU " + std::to_string(gpus.device());
  hello.fingerprint.architecture = "fake_sm";
  hello.fingerprint.compute_units = 8;
  hello.fingerprint.driver = "fake 1";
  hello.fingerprint.runtime = "fake 1";
  hello.fingerprint.emulation = "a test worker that fakes GPUs";
  hello.shares_device = true;
  hello.visible_devices = static_cast<int>(gpus.visible.size());
  if (gpus.rules) gpus.rules->ApplyTo(hello.fingerprint, gpus.device_index);
  return hello;
}

// A GPU-like time: a fixed launch overhead plus FLOPs at 10 TFLOP/s.
double FakeTimeMs(const Problem& p) { return 0.02 + static_cast<double>(p.flops()) / 1e10; }

}  // namespace

// One line for CONVGUARD_FAKE_START_LOG, if set: "<what> <device> <monotonic ns>".
void LogStartEvent(const FakeGpus& gpus, const char* what) {
  const std::optional<std::string> path = os::GetEnv("CONVGUARD_FAKE_START_LOG");
  if (!path || gpus.visible.empty()) return;
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count();
  std::ofstream(*path, std::ios::app) << (std::string(what) + " " + std::to_string(gpus.device()) +
                                          " " + std::to_string(ns) + "\n");
}

int main(int argc, char** argv) {
  const int out = 1;
  FakeGpus gpus = ReadFakeGpus();
  LogStartEvent(gpus, "start");
  if (std::optional<std::string> bad = ReadRules(argc, argv, gpus)) {
    Write(out, Frame(worker::EncodeFatal(*bad)));
    return 3;
  }
  if (gpus.count > 0 && gpus.visible.empty()) {
    Write(out,
          Frame(worker::EncodeFatal("no CUDA device: CUDA_VISIBLE_DEVICES leaves none of the " +
                                    std::to_string(gpus.count) + " fake GPUs")));
    return 3;
  }
  if (const std::optional<std::string> ms = os::GetEnv("CONVGUARD_FAKE_START_MS")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(IndexBelow(*ms, 1 << 20).value_or(0)));
  }
  LogStartEvent(gpus, "hello");
  Write(out, Frame(worker::EncodeHello(MakeHello(gpus))));
  worker::FrameDecoder decoder;
  for (;;) {
    uint8_t buf[4096];
    StatusOr<os::IoResult> r = os::ReadSome(0, buf, os::Deadline::Never());
    if (!r.ok() || r->eof()) return 0;
    decoder.Feed(std::span<const uint8_t>(buf, r->bytes));
    while (auto frame = decoder.Next()) {
      StatusOr<worker::Message> m = worker::DecodeMessage(frame->payload, /*from_worker=*/false);
      if (!m.ok()) continue;
      if (m->type == "bye") return 0;
      if (m->algorithms_request) {
        worker::AlgorithmsReply names;
        names.id = m->algorithms_request->id;
        names.names = gpus.count > 0 ? std::vector<std::string>{"implicit-gemm", "winograd"}
                                     : std::vector<std::string>{"direct"};
        Write(out, Frame(worker::EncodeAlgorithmsReply(names)));
        continue;
      }
      if (!m->probe) continue;
      StatusOr<Problem> p = ParseProblem(m->probe->problem);
      worker::ProbeReply reply;
      reply.id = m->probe->id;
      reply.outcome = worker::ProbeOutcome::kOk;
      reply.algorithm = m->probe->algorithm;
      reply.times_ms = {0.5, 0.5, 0.5};
      reply.check = "none";
      if (gpus.count > 0 && p.ok()) {
        Write(out, Frame(worker::EncodePhase({m->probe->id, worker::ProbeStage::kRun})));
        // Where a real GPU would spin in a kernel: blocked until SIGKILL from outside.
        const std::string algorithm =
            m->probe->algorithm.empty() ? "implicit-gemm" : m->probe->algorithm;
        if (gpus.HangsOn(*p, algorithm)) os::BlockForeverInSystemCall();
        if (gpus.slow_k == p->k)
          std::this_thread::sleep_for(std::chrono::milliseconds(gpus.slow_ms));
        Write(out, Frame(worker::EncodePhase({m->probe->id, worker::ProbeStage::kCheck})));
        if (reply.algorithm.empty()) reply.algorithm = "implicit-gemm";
        reply.times_ms.assign(static_cast<size_t>(std::max(1, m->probe->repeats)), FakeTimeMs(*p));
        reply.implementation = "fake-gpu:" + std::to_string(gpus.device());
      }
      const std::string frame_bytes = Frame(worker::EncodeProbeReply(reply));
      const int64_t c = p.ok() ? p->c : 0;
      if (c == 1) {
        Write(out, "this is not a frame\n");
        Write(out, frame_bytes);
      } else if (c == 2) {
        Write(out, frame_bytes.substr(0, frame_bytes.size() / 2));
        return 0;
      } else if (c == 3) {
        Write(out, "garbage garbage garbage");
        return 1;
      } else {
        Write(out, frame_bytes);
      }
    }
  }
}
