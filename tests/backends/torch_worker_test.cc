// The PyTorch backend: the C API it checks with, its launcher, the Python worker at the
// protocol level, and the real probe engine driving it. Tests that need PyTorch skip
// (naming every interpreter tried) where no interpreter can import torch.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backends/torch/torch_launcher.h"
#include "capi/check_capi.h"
#include "convguard/fill.h"
#include "convguard/probe.h"
#include "convguard/problem_source.h"
#include "convguard/reference.h"
#include "convguard/text_forms.h"
#include "os/pipe_io.h"
#include "os/process.h"
#include "support/cli_runner.h"
#include "worker/framing.h"
#include "worker/protocol.h"

namespace convguard {
namespace {

using testing_support::SourceDir;

#define REQUIRE_TORCH()                                                              \
  do {                                                                               \
    StatusOr<std::string> python_ = FindTorchPython("");                             \
    if (!python_.ok()) GTEST_SKIP() << python_.status().message();                   \
  } while (0)

Problem Parse(const std::string& text) {
  StatusOr<Problem> p = ParseProblem(text, TextForm::kCanonical);
  EXPECT_TRUE(p.ok()) << text << ": " << p.status().ToString();
  return p.ok() ? *p : Problem{};
}

// ---- the C API --------------------------------------------------------------------

struct CapiBuffers {
  std::vector<float> input, weight, output, bias;
};

CapiBuffers Filled(const std::string& canonical, uint64_t seed) {
  int64_t sizes[4] = {};
  char err[512] = "";
  EXPECT_EQ(cg_problem_sizes(canonical.c_str(), sizes, err, sizeof err), CG_OK) << err;
  CapiBuffers b;
  b.input.resize(static_cast<size_t>(sizes[0]));
  b.weight.resize(static_cast<size_t>(sizes[1]));
  b.output.resize(static_cast<size_t>(sizes[2]));
  b.bias.resize(static_cast<size_t>(sizes[3]));
  EXPECT_EQ(cg_fill(canonical.c_str(), seed, b.input.data(), b.weight.data(), b.output.data(),
                    b.bias.empty() ? nullptr : b.bias.data(), err, sizeof err),
            CG_OK)
      << err;
  return b;
}

// The float64 reference result of `canonical` for `seed`, rounded to float32.
std::vector<float> ReferenceResult(const std::string& canonical, uint64_t seed) {
  const Problem p = Parse(canonical);
  ConvTensors<double> t = ConvTensors<double>::Allocate(p);
  FillExact(p, seed, t);
  ReferenceConvolution(p, t);
  const std::vector<double>& r = ResultTensor(p, t);
  return std::vector<float>(r.begin(), r.end());
}

std::string Check(const std::string& canonical, uint64_t seed, const std::vector<float>& result,
                  const char* mode, int* rc = nullptr) {
  char out[4096] = "";
  const int code = cg_check(canonical.c_str(), seed, result.data(),
                            static_cast<int64_t>(result.size()), mode, 64, out, sizeof out);
  if (rc != nullptr) *rc = code;
  return out;
}

TEST(CheckCapi, SizesMatchTheProblem) {
  const std::string text = "n2_c6_h11_w9_k4_r3_s2_p1x0x2x1_u2x1_d1x2_g2_bias_f32_nhwc_fwd";
  const Problem p = Parse(text);
  int64_t sizes[4] = {};
  char err[256] = "";
  ASSERT_EQ(cg_problem_sizes(text.c_str(), sizes, err, sizeof err), CG_OK) << err;
  EXPECT_EQ(sizes[0], p.input_elements());
  EXPECT_EQ(sizes[1], p.weight_elements());
  EXPECT_EQ(sizes[2], p.output_elements());
  EXPECT_EQ(sizes[3], p.bias_elements());
  EXPECT_EQ(cg_capi_version(), CG_CAPI_VERSION);
  EXPECT_STREQ(cg_tool_version(), CONVGUARD_VERSION);

  char json[2048] = "";
  ASSERT_EQ(cg_problem_json(text.c_str(), json, sizeof json), CG_OK) << json;
  const std::string j = json;
  EXPECT_NE(j.find("\"canonical\":\"" + ToCanonical(p) + "\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"pad_bottom\":2"), std::string::npos) << j;
  EXPECT_NE(j.find("\"out_h\":" + std::to_string(p.out_h())), std::string::npos) << j;
  EXPECT_NE(j.find("\"layout\":\"nhwc\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"result\":\"output\""), std::string::npos) << j;
}

TEST(CheckCapi, FillsExactValuesAndPoisonsTheResult) {
  for (const char* text : {"n1_c4_h8_w8_k6_r3_s3_p1_bias_f32_nchw_fwd",
                           "n2_c4_h7_w5_k4_r3_s3_p1_g2_f16_nhwc_bwd-data",
                           "n1_c3_h9_w9_k5_r3_s3_p0x1x2x0_bf16_nchw_bwd-weights"}) {
    SCOPED_TRACE(text);
    const Problem p = Parse(text);
    ConvTensors<double> exact = ConvTensors<double>::Allocate(p);
    FillExact(p, 42, exact);
    CapiBuffers b = Filled(text, 42);
    const std::vector<float>& result = ResultRole(p.direction) == TensorRole::kInput    ? b.input
                                       : ResultRole(p.direction) == TensorRole::kWeight ? b.weight
                                                                                        : b.output;
    auto same = [](const std::vector<double>& want, const std::vector<float>& got) {
      if (want.size() != got.size()) return false;
      for (size_t i = 0; i < want.size(); ++i) {
        if (static_cast<double>(got[i]) != want[i]) return false;
      }
      return true;
    };
    for (TensorRole role : {TensorRole::kInput, TensorRole::kWeight, TensorRole::kOutput}) {
      const std::vector<float>& got = role == TensorRole::kInput    ? b.input
                                      : role == TensorRole::kWeight ? b.weight
                                                                    : b.output;
      const std::vector<double>& want = role == TensorRole::kInput    ? exact.input
                                        : role == TensorRole::kWeight ? exact.weight
                                                                      : exact.output;
      if (role == ResultRole(p.direction)) {
        for (float v : got) ASSERT_TRUE(std::isnan(v));
      } else {
        EXPECT_TRUE(same(want, got)) << TensorName(role, p.direction);
      }
    }
    EXPECT_TRUE(same(exact.bias, b.bias));
    EXPECT_FALSE(result.empty());
  }
}

TEST(CheckCapi, ChecksLikeTheWorker) {
  const std::string text = "n2_c6_h11_w9_k4_r3_s2_p1x0x2x1_u2x1_d1x2_g2_bias_f32_nhwc_fwd";
  std::vector<float> result = ReferenceResult(text, 7);
  int rc = -1;
  std::string json = Check(text, 7, result, "full", &rc);
  ASSERT_EQ(rc, CG_OK) << json;
  EXPECT_NE(json.find("\"outcome\":\"ok\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"check\":\"full:" + std::to_string(result.size()) + "\""), std::string::npos) << json;
  json = Check(text, 7, result, "sampled", &rc);
  EXPECT_NE(json.find("\"outcome\":\"ok\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"check\":\"sampled:"), std::string::npos) << json;
  EXPECT_NE(Check(text, 7, result, "none").find("\"check\":\"none\""), std::string::npos);

  // Another seed's data is not this result: exact fills make any difference a mismatch.
  json = Check(text, 8, result, "full", &rc);
  EXPECT_NE(json.find("\"outcome\":\"wrong\""), std::string::npos) << json;

  result[3] += 1.0f;
  json = Check(text, 7, result, "full", &rc);
  EXPECT_NE(json.find("\"outcome\":\"wrong\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"mismatches\":1"), std::string::npos) << json;
  EXPECT_NE(json.find("1 mismatch"), std::string::npos) << json;

  result[3] = std::nanf("");
  json = Check(text, 7, result, "full", &rc);
  EXPECT_NE(json.find("\"non_finite\":1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"outcome\":\"wrong\""), std::string::npos) << json;
}

TEST(CheckCapi, ErrorsAreCodesWithMessages) {
  char err[256] = "";
  int64_t sizes[4] = {};
  EXPECT_EQ(cg_problem_sizes("n1_c4_h8_w8_k3_r3_s3_p1_g2", sizes, err, sizeof err), CG_EINVAL);
  EXPECT_NE(std::string(err).find("divisible by groups"), std::string::npos) << err;
  EXPECT_EQ(cg_problem_sizes(nullptr, sizes, err, sizeof err), CG_EINVAL);
  // Only the canonical form: the protocol carries nothing else.
  EXPECT_EQ(cg_problem_sizes("16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F", sizes, err,
                             sizeof err),
            CG_EINVAL);

  const std::string text = "n1_c4_h8_w8_k4_r3_s3_p1";
  std::vector<float> result = ReferenceResult(text, 1);
  char out[4096] = "";
  EXPECT_EQ(cg_check(text.c_str(), 1, result.data(), 3, "full", 0, out, sizeof out), CG_EINVAL);
  EXPECT_NE(std::string(out).find("must hold 256 elements; got 3"), std::string::npos) << out;
  EXPECT_EQ(cg_check(text.c_str(), 1, result.data(), 256, "everything", 0, out, sizeof out),
            CG_EINVAL);
  EXPECT_NE(std::string(out).find("allowed: none, sampled, full"), std::string::npos) << out;
  char tiny[16] = "";
  EXPECT_EQ(cg_check(text.c_str(), 1, result.data(), 256, "full", 0, tiny, sizeof tiny),
            CG_ETOOSMALL);
  EXPECT_EQ(std::string(tiny).size(), sizeof tiny - 1);  // truncated, still terminated
  EXPECT_EQ(cg_fill(text.c_str(), 1, nullptr, nullptr, nullptr, nullptr, err, sizeof err),
            CG_EINVAL);
  std::vector<float> x(256), w(144), y(256);
  EXPECT_EQ(cg_fill("n1_c4_h8_w8_k4_r3_s3_p1_bias", 1, x.data(), w.data(), y.data(), nullptr, err,
                    sizeof err),
            CG_EINVAL);
  EXPECT_NE(std::string(err).find("bias"), std::string::npos) << err;
  EXPECT_EQ(cg_probe_open("nonsense", 1, err, sizeof err), nullptr);
  cg_probe_close(nullptr);
}

// ---- the launcher -------------------------------------------------------------------

TEST(TorchLauncher, CandidatesAreTheOverrideAloneOrTheSearchOrder) {
  EXPECT_EQ(TorchPythonCandidates("/nonexistent/python"),
            std::vector<std::string>{"/nonexistent/python"});
  const std::vector<std::string> auto_candidates = TorchPythonCandidates("");
  ASSERT_FALSE(auto_candidates.empty());
  const char* env = std::getenv("CONVGUARD_PYTHON");
  if (env == nullptr || *env == '\0') {
    EXPECT_EQ(auto_candidates.front(), "/usr/bin/python3");
  }

  StatusOr<std::string> missing = FindTorchPython("/nonexistent/python");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/python (no such executable)"),
            std::string::npos)
      << missing.status().message();
  EXPECT_FALSE(TorchAvailable("/nonexistent/python"));
  StatusOr<std::vector<std::string>> command = TorchWorkerCommand("/nonexistent/python");
  ASSERT_FALSE(command.ok());
  EXPECT_NE(command.status().message().find("/nonexistent/python"), std::string::npos);

  // An interpreter that runs but has no torch: /bin/false stands in for one.
  StatusOr<std::string> no_torch = FindTorchPython("/bin/false");
  ASSERT_FALSE(no_torch.ok());
  EXPECT_NE(no_torch.status().message().find("/bin/false ("), std::string::npos)
      << no_torch.status().message();
}

TEST(TorchLauncher, CommandRunsTheScriptWithTheCheckLibrary) {
  REQUIRE_TORCH();
  StatusOr<std::vector<std::string>> command = TorchWorkerCommand("");
  ASSERT_TRUE(command.ok()) << command.status().ToString();
  ASSERT_EQ(command->size(), 5u);
  EXPECT_EQ((*command)[0], *FindTorchPython(""));
  EXPECT_EQ((*command)[1], "-B");
  EXPECT_EQ((*command)[2], TorchWorkerScriptPath());
  EXPECT_EQ((*command)[2].rfind("/convguard_torch_worker.py"), (*command)[2].size() - 26);
  EXPECT_EQ((*command)[3], "--checklib");
  EXPECT_EQ((*command)[4], CheckLibraryPath());
  // The explicit interpreter gives the same command.
  StatusOr<std::vector<std::string>> again = TorchWorkerCommand((*command)[0]);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *command);
}

// ---- the worker at the protocol level ------------------------------------------------

// Any interpreter that runs the script (argument errors come before `import torch`).
std::optional<std::vector<std::string>> ScriptCommand() {
  StatusOr<std::vector<std::string>> command = TorchWorkerCommand("");
  if (command.ok()) return *command;
  for (const std::string& python : TorchPythonCandidates("")) {
    if (python.find('/') == std::string::npos) continue;
    return std::vector<std::string>{python, "-B", TorchWorkerScriptPath(), "--checklib",
                                    CheckLibraryPath()};
  }
  return std::nullopt;
}

struct Spawned {
  os::ChildProcess child;
  worker::FrameDecoder decoder;

  Status Send(const std::string& payload) {
    CG_ASSIGN_OR_RETURN(std::string frame, worker::EncodeFrame(payload));
    CG_ASSIGN_OR_RETURN(os::IoResult r, os::WriteAll(child.stdin_fd(), frame,
                                                     os::Deadline::After(std::chrono::seconds(10))));
    if (r.timed_out()) return Status::IOError("the worker stopped reading");
    return Status::Ok();
  }

  // The next message, or an error at EOF or after `seconds`.
  StatusOr<worker::Message> Next(double seconds = 120.0) {
    const os::Deadline deadline = os::Deadline::After(
        std::chrono::duration_cast<os::Duration>(std::chrono::duration<double>(seconds)));
    for (;;) {
      if (std::optional<worker::DecodedFrame> frame = decoder.Next()) {
        return worker::DecodeMessage(frame->payload, /*from_worker=*/true);
      }
      uint8_t buf[4096];
      CG_ASSIGN_OR_RETURN(os::IoResult r, os::ReadSome(child.stdout_fd(), buf, deadline));
      if (r.eof()) return Status::IOError("EOF from the worker");
      if (r.timed_out()) return Status::IOError("no message from the worker in time");
      decoder.Feed(std::span<const uint8_t>(buf, r.bytes));
    }
  }
};

StatusOr<Spawned> SpawnWorker(std::vector<std::string> argv, os::StderrMode stderr_mode) {
  os::SpawnOptions options;
  options.argv = std::move(argv);
  options.stderr_mode = stderr_mode;
  options.die_with_parent = true;
  Spawned s;
  CG_ASSIGN_OR_RETURN(s.child, os::SpawnChild(options));
  return s;
}

std::string ReadAll(int fd) {
  std::string out;
  uint8_t buf[4096];
  const os::Deadline deadline = os::Deadline::After(std::chrono::seconds(60));
  for (;;) {
    StatusOr<os::IoResult> r = os::ReadSome(fd, buf, deadline);
    if (!r.ok() || !r->data()) return out;
    out.append(reinterpret_cast<const char*>(buf), r->bytes);
  }
}

TEST(TorchWorkerProtocol, RejectsFaultInjectionWithUsageStatus) {
  std::optional<std::vector<std::string>> argv = ScriptCommand();
  if (!argv) GTEST_SKIP() << "no Python interpreter found";
  for (const char* a : {"--backend", "torch", "--inject", "/dev/null"}) argv->push_back(a);
  StatusOr<Spawned> w = SpawnWorker(*argv, os::StderrMode::kPipe);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  const std::string err = ReadAll(w->child.stderr_fd());
  StatusOr<os::ExitInfo> exit = w->child.WaitExit(std::chrono::seconds(60));
  ASSERT_TRUE(exit.ok()) << exit.status().ToString();
  ASSERT_TRUE(exit->exited()) << exit->ToString();
  EXPECT_EQ(exit->exit_code, 2) << err;
  EXPECT_NE(err.find("--inject is not supported"), std::string::npos) << err;
  EXPECT_NE(err.find("not implemented yet"), std::string::npos) << err;
  EXPECT_EQ(ReadAll(w->child.stdout_fd()), "");  // no frame: nothing started
}

TEST(TorchWorkerProtocol, MissingCheckLibraryIsAFatalMessage) {
  std::optional<std::vector<std::string>> argv = ScriptCommand();
  if (!argv) GTEST_SKIP() << "no Python interpreter found";
  (*argv)[4] = "/nonexistent/libconvguard_check.so";
  argv->push_back("--backend");
  argv->push_back("torch");
  StatusOr<Spawned> w = SpawnWorker(*argv, os::StderrMode::kDevNull);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  StatusOr<worker::Message> m = w->Next(60.0);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(m->fatal.has_value()) << m->type;
  EXPECT_NE(m->fatal->find("/nonexistent/libconvguard_check.so"), std::string::npos) << *m->fatal;
  StatusOr<os::ExitInfo> exit = w->child.WaitExit(std::chrono::seconds(60));
  ASSERT_TRUE(exit.ok() && exit->exited());
  EXPECT_EQ(exit->exit_code, 3);
}

TEST(TorchWorkerProtocol, SpeaksTheProtocolThroughJunkAndSplitFrames) {
  REQUIRE_TORCH();
  std::vector<std::string> argv = *TorchWorkerCommand("");
  argv.push_back("--backend");
  argv.push_back("torch");
  StatusOr<Spawned> w = SpawnWorker(argv, os::StderrMode::kDevNull);
  ASSERT_TRUE(w.ok()) << w.status().ToString();

  StatusOr<worker::Message> hello = w->Next();
  ASSERT_TRUE(hello.ok()) << hello.status().ToString();  // StackFromJson is strict
  ASSERT_TRUE(hello->hello.has_value()) << hello->type;
  EXPECT_EQ(hello->hello->backend, "torch");
  EXPECT_EQ(hello->hello->pid, w->child.pid());
  EXPECT_EQ(hello->hello->fingerprint.backend, "torch");
  EXPECT_NE(hello->hello->fingerprint.library.find("PyTorch "), std::string::npos);
  EXPECT_EQ(hello->hello->fingerprint.tool_version, CONVGUARD_VERSION);
  EXPECT_FALSE(hello->hello->fingerprint.device.empty());
  EXPECT_GT(hello->hello->fingerprint.compute_units, 0);

  // Junk, then an algorithms request fed one byte at a time.
  ASSERT_TRUE(os::WriteAll(w->child.stdin_fd(), std::string("not a frame CGW"),
                           os::Deadline::After(std::chrono::seconds(5)))
                  .ok());
  worker::AlgorithmsRequest ask{5, "n1_c4_h8_w8_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd"};
  StatusOr<std::string> frame = worker::EncodeFrame(worker::EncodeAlgorithmsRequest(ask));
  ASSERT_TRUE(frame.ok());
  for (char byte : *frame) {
    ASSERT_TRUE(os::WriteAll(w->child.stdin_fd(), std::string(1, byte),
                             os::Deadline::After(std::chrono::seconds(5)))
                    .ok());
  }
  StatusOr<worker::Message> names = w->Next();
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  ASSERT_TRUE(names->algorithms_reply.has_value()) << names->type;
  EXPECT_EQ(names->algorithms_reply->id, 5);
  ASSERT_FALSE(names->algorithms_reply->names.empty());
  EXPECT_EQ(names->algorithms_reply->names.front(), "default");
  EXPECT_EQ(names->algorithms_reply->message, "");

  // A bad problem is a message, not a failure.
  ASSERT_TRUE(w->Send(worker::EncodeAlgorithmsRequest({6, "n1_c4_h8_w8_k3_r3_s3_p1_g2"})).ok());
  names = w->Next();
  ASSERT_TRUE(names.ok() && names->algorithms_reply.has_value());
  EXPECT_TRUE(names->algorithms_reply->names.empty());
  EXPECT_NE(names->algorithms_reply->message.find("divisible by groups"), std::string::npos);

  // A probe: phase run, phase check, result, in that order.
  worker::ProbeRequest probe;
  probe.id = 7;
  probe.problem = "n1_c4_h8_w8_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";
  probe.check = CheckMode::kFull;
  ASSERT_TRUE(w->Send(worker::EncodeProbeRequest(probe)).ok());
  std::vector<std::string> seen;
  for (;;) {
    StatusOr<worker::Message> m = w->Next();
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    if (m->phase) {
      EXPECT_EQ(m->phase->id, 7);
      seen.push_back(m->phase->phase);
      continue;
    }
    ASSERT_TRUE(m->result.has_value()) << m->type;
    EXPECT_EQ(m->result->id, 7);
    EXPECT_EQ(m->result->outcome, worker::ProbeOutcome::kOk) << m->result->message;
    EXPECT_EQ(m->result->algorithm, "default");
    EXPECT_EQ(m->result->check, "full:256");
    EXPECT_EQ(m->result->times_ms.size(), 3u);
    EXPECT_NE(m->result->implementation.find("torch"), std::string::npos);
    break;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"run", "check"}));

  // Another protocol version is ignored; bye ends the worker with status 0.
  ASSERT_TRUE(w->Send(R"({"v":2,"type":"algorithms","id":8,"problem":"c1_h1_k1_r1"})").ok());
  ASSERT_TRUE(w->Send(worker::EncodeBye()).ok());
  StatusOr<worker::Message> after = w->Next(60.0);
  EXPECT_FALSE(after.ok());  // EOF: nothing was answered
  StatusOr<os::ExitInfo> exit = w->child.WaitExit(std::chrono::seconds(60));
  ASSERT_TRUE(exit.ok() && exit->exited()) << (exit.ok() ? exit->ToString() : "");
  EXPECT_EQ(exit->exit_code, 0);
}

// ---- the real probe engine ----------------------------------------------------------

ProbeOptions TorchOptions() {
  ProbeOptions o;
  o.backend = "torch";
  o.worker_executable = testing_support::ConvguardBin();
  o.workers_per_device = 2;
  o.warmup = 1;
  o.repeats = 2;
  return o;
}

// Every verdict is OK, except f16 on the CPU, which PyTorch may not implement: then it
// must be UNSUPPORTED with PyTorch's reason.
void ExpectOkVerdicts(const StackFingerprint& stack, const std::vector<Verdict>& verdicts) {
  const bool cpu = stack.device.rfind("CPU", 0) == 0;
  for (const Verdict& v : verdicts) {
    SCOPED_TRACE(v.problem + " " + v.algorithm);
    const Problem p = Parse(v.problem);
    if (cpu && p.dtype == DataType::kF16 && v.kind == VerdictKind::kUnsupported) {
      EXPECT_FALSE(v.message.empty());
      continue;
    }
    EXPECT_EQ(v.kind, VerdictKind::kOk) << VerdictName(v.kind) << ": " << v.message;
    EXPECT_NE(v.implementation.find("torch"), std::string::npos) << v.implementation;
    EXPECT_GT(v.time_ms_median, 0.0);
    EXPECT_FALSE(v.check.empty());
  }
}

TEST(TorchBackendEngine, SeedProblemsAreOkUnderEveryAlgorithm) {
  REQUIRE_TORCH();
  StatusOr<std::vector<ListedProblem>> seed = ReadProblemList(SourceDir() + "/tests/inputs/seed.list");
  ASSERT_TRUE(seed.ok()) << seed.status().ToString();
  std::vector<ProbeJob> jobs;
  for (const ListedProblem& lp : *seed) jobs.push_back({lp.problem, "*"});

  auto engine = ProbeEngine::Start(TorchOptions(), nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  const StackFingerprint& stack = (*engine)->stack();
  EXPECT_EQ(stack.backend, "torch");
  EXPECT_NE(stack.library.find("PyTorch"), std::string::npos) << stack.library;
  EXPECT_FALSE(stack.is_emulated());

  auto result = (*engine)->Run(jobs);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  // "*" expands to every algorithm the worker offers (at least default and one more).
  EXPECT_GE(result->verdicts.size(), 2 * jobs.size());
  std::map<std::string, int> algorithms;
  for (const Verdict& v : result->verdicts) algorithms[v.algorithm]++;
  EXPECT_TRUE(algorithms.contains("default"));
  EXPECT_TRUE(algorithms.contains("deterministic"));
  ExpectOkVerdicts(stack, result->verdicts);
}

TEST(TorchBackendEngine, GroupsDilationPadsLayoutsDirectionsAndBiasAreOk) {
  REQUIRE_TORCH();
  std::vector<ProbeJob> jobs;
  for (const char* shape : {
           "n2_c6_h11_w9_k4_r3_s2_p1x0x2x1_u2x1_d1x2_g2",  // asymmetric pads, stride, dilation, groups
           "n1_c4_h10_w12_k6_r3_s3_p0x2x1x0_d2",           // asymmetric pads, dilation
           "n3_c8_h7_w7_k8_r1_s1_p0_g8",                   // depthwise 1x1
           "n2_c3_h17_w15_k5_r5_s3_p2x1_u3x2",             // non-square everything
           "n1_c8_h9_w9_k12_r3_s3_p1_bias",                // bias (forward only adds it)
       }) {
    for (const char* layout : {"nchw", "nhwc"}) {
      for (const char* direction : {"fwd", "bwd-data", "bwd-weights"}) {
        for (const char* dtype : {"f32", "bf16", "f16"}) {
          const std::string text =
              std::string(shape) + "_" + dtype + "_" + layout + "_" + direction;
          jobs.push_back({Parse(text), "*"});
        }
      }
    }
  }
  ProbeOptions options = TorchOptions();
  options.check = CheckMode::kFull;
  auto engine = ProbeEngine::Start(options, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto result = (*engine)->Run(jobs);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_GE(result->verdicts.size(), 2 * jobs.size());
  ExpectOkVerdicts((*engine)->stack(), result->verdicts);
  for (const Verdict& v : result->verdicts) {
    if (v.kind == VerdictKind::kOk) {
      EXPECT_EQ(v.check.rfind("full:", 0), 0u) << v.check;
    }
  }
}

TEST(TorchBackendEngine, FaultInjectionIsRefusedClearly) {
  REQUIRE_TORCH();
  ProbeOptions options = TorchOptions();
  options.fault_rules_path = SourceDir() + "/tests/inputs/faults.rules";
  auto engine = ProbeEngine::Start(options, nullptr);
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.status().message().find("exited with code 2"), std::string::npos)
      << engine.status().message();
}

}  // namespace
}  // namespace convguard
