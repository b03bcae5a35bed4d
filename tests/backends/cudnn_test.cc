// The cuDNN backend on a real NVIDIA GPU: every algorithm against the float64
// reference, ResNet-50 through the real probe engine, and a real GPU hang.
//
// Label `gpu`. Every test skips, saying why, on a machine without an NVIDIA GPU (CI,
// the development machines): the build and link are what those machines check.
// scripts/gpu-check.sh runs these on a GPU machine.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/cudnn/cudnn_backend.h"
#include "convguard/compare.h"
#include "convguard/fill.h"
#include "convguard/guard.h"
#include "convguard/probe.h"
#include "convguard/problem_source.h"
#include "convguard/reference.h"
#include "convguard/store.h"
#include "convguard/text_forms.h"
#include "support/cli_runner.h"

namespace convguard {
namespace {

using testing_support::SourceDir;

#define CG_SKIP_WITHOUT_GPU()                                                                  \
  do {                                                                                         \
    if (!CudnnDevicePresent()) {                                                               \
      GTEST_SKIP() << "no NVIDIA GPU on this machine (/dev/nvidia0 absent): cuDNN tests need " \
                      "one";                                                                   \
    }                                                                                          \
  } while (0)

// FFT and Winograd transform the operands with fractions, so they round even on the
// exactly filled data; every other cuDNN algorithm only multiplies and adds.
bool IsTransform(std::string_view algorithm) {
  return algorithm.find("fft") != std::string_view::npos ||
         algorithm.find("winograd") != std::string_view::npos;
}

std::unique_ptr<Backend> InitializedBackend() {
  std::unique_ptr<Backend> backend = MakeCudnnBackend();
  Status s = backend->Init();
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return nullptr;
  return backend;
}

std::vector<Problem> ListProblems(const std::string& list) {
  StatusOr<std::vector<ListedProblem>> listed =
      ReadProblemList(SourceDir() + "/tests/inputs/" + list);
  EXPECT_TRUE(listed.ok()) << listed.status().ToString();
  std::vector<Problem> problems;
  if (listed.ok()) {
    for (const ListedProblem& l : *listed) problems.push_back(l.problem);
  }
  return problems;
}

Problem WithDirection(Problem p, Direction d) {
  p.direction = d;
  return p;
}

// One algorithm on one problem, in this process, checked in full against the reference.
struct Outcome {
  Status status;  // Supports() or Run(); OK when it ran
  Comparison comparison;
  RunResult run;
};

Outcome RunAndCompare(Backend& backend, const Problem& p, const std::string& algorithm) {
  Outcome out;
  out.status = backend.Supports(p, algorithm);
  if (!out.status.ok()) return out;
  ConvTensors<double> exact = ConvTensors<double>::Allocate(p);
  FillExact(p, /*seed=*/7, exact);
  ConvTensors<float> io;
  ToFloatOperands(p, exact, io);
  RunOptions options;
  options.warmup = 1;
  options.repeats = 2;
  StatusOr<RunResult> ran = backend.Run(p, algorithm, io, options);
  if (!ran.ok()) {
    out.status = ran.status();
    return out;
  }
  out.run = *ran;
  ReferenceConvolution(p, exact);
  const double tolerance = IsTransform(algorithm) ? DefaultTolerance(p, /*exact_filled=*/false)
                                                  : DefaultTolerance(p, /*exact_filled=*/true);
  out.comparison = CompareFull(p, ResultTensor(p, io), ResultTensor(p, exact), tolerance);
  return out;
}

// Checks one outcome: UNSUPPORTED is allowed (with a reason), anything that ran must
// agree with the reference (exactly, for multiply-add algorithms). Returns whether it ran.
bool ExpectAgreesOrUnsupported(const Problem& p, const std::string& algorithm, const Outcome& o) {
  const std::string where = ToCanonical(p) + " " + algorithm;
  if (o.status.code() == StatusCode::kUnsupported) {
    EXPECT_FALSE(o.status.message().empty()) << where;
    std::printf("  %-60s %-22s UNSUPPORTED: %s\n", ToCanonical(p).c_str(), algorithm.c_str(),
                o.status.message().substr(0, 100).c_str());
    return false;
  }
  if (o.status.code() == StatusCode::kResourceExhausted) {
    std::printf("  %-60s %-22s OOM: %s\n", ToCanonical(p).c_str(), algorithm.c_str(),
                o.status.message().substr(0, 100).c_str());
    return false;
  }
  EXPECT_TRUE(o.status.ok()) << where << ": " << o.status.ToString();
  if (!o.status.ok()) return false;
  EXPECT_TRUE(o.comparison.passed()) << where << ": " << o.comparison.Summary();
  EXPECT_FALSE(o.comparison.mistrusted) << where << ": " << o.comparison.Summary();
  EXPECT_EQ(o.run.times_ms.size(), 2u) << where;
  for (double t : o.run.times_ms) EXPECT_GT(t, 0.0) << where;
  EXPECT_FALSE(o.run.implementation.empty()) << where;
  std::printf("  %-60s %-22s ok (max error %g, %.3f ms)\n", ToCanonical(p).c_str(),
              algorithm.c_str(), o.comparison.max_abs_error,
              o.run.times_ms.empty() ? 0.0 : o.run.times_ms.back());
  return true;
}

TEST(CudnnBackend, InitDescribesTheStack) {
  CG_SKIP_WITHOUT_GPU();
  std::unique_ptr<Backend> backend = InitializedBackend();
  ASSERT_NE(backend, nullptr);
  const StackFingerprint fp = backend->Fingerprint();
  std::printf("  stack: %s\n  driver %s, runtime %s, library %s\n", fp.Summary().c_str(),
              fp.driver.c_str(), fp.runtime.c_str(), fp.library.c_str());
  EXPECT_EQ(fp.backend, "cudnn");
  EXPECT_FALSE(fp.device.empty());
  EXPECT_EQ(fp.architecture.rfind("sm_", 0), 0u) << fp.architecture;
  EXPECT_GT(fp.compute_units, 0);
  EXPECT_FALSE(fp.driver.empty());
  EXPECT_EQ(fp.runtime.rfind("CUDA ", 0), 0u) << fp.runtime;
  EXPECT_EQ(fp.library.rfind("cuDNN 9.", 0), 0u) << fp.library;
  EXPECT_EQ(fp.knobs.count("CUDA_VISIBLE_DEVICES"), 0u);
  EXPECT_EQ(fp.tool_version, CONVGUARD_VERSION);
  EXPECT_TRUE(backend->runs_on_shared_device());
  EXPECT_GE(backend->visible_devices(), 1);
  EXPECT_GT(backend->first_call_allowance_ms(), 0.0);
  // The registry offers it, ahead of the CPU backends.
  const std::vector<std::string> names = RegisteredBackends();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), "cudnn");
}

TEST(CudnnBackend, OffersTheLegacyAlgorithmsByStableName) {
  CG_SKIP_WITHOUT_GPU();
  std::unique_ptr<Backend> backend = InitializedBackend();
  ASSERT_NE(backend, nullptr);
  Problem p = ListProblems("seed.list").at(0);
  const std::map<Direction, std::set<std::string>> expected = {
      {Direction::kForward,
       {"implicit-gemm", "implicit-precomp-gemm", "gemm", "direct", "fft", "fft-tiling", "winograd",
        "winograd-nonfused"}},
      {Direction::kBackwardData,
       {"algo0", "algo1", "fft", "fft-tiling", "winograd", "winograd-nonfused"}},
      {Direction::kBackwardWeights,
       {"algo0", "algo1", "fft", "algo3", "winograd-nonfused", "fft-tiling"}},
  };
  for (const auto& [direction, names] : expected) {
    const std::vector<std::string> offered = backend->Algorithms(WithDirection(p, direction));
    EXPECT_EQ(std::set<std::string>(offered.begin(), offered.end()), names);
    EXPECT_EQ(offered.size(), names.size());
    ASSERT_FALSE(offered.empty());
    EXPECT_FALSE(IsTransform(offered.front()))
        << "the default must multiply and add: " << offered.front();
  }
  const Status unknown = backend->Supports(p, "no-such-algorithm");
  EXPECT_EQ(unknown.code(), StatusCode::kUnsupported);
  EXPECT_NE(unknown.message().find("implicit-precomp-gemm"), std::string::npos)
      << unknown.message();
}

TEST(CudnnBackend, AsymmetricPaddingIsUnsupportedWithAReason) {
  CG_SKIP_WITHOUT_GPU();
  std::unique_ptr<Backend> backend = InitializedBackend();
  ASSERT_NE(backend, nullptr);
  StatusOr<Problem> p = ParseProblem("n1_c16_h32_w32_k32_r3_s3_p0x0x1x1");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const Status s = backend->Supports(*p, "implicit-gemm");
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("symmetric padding"), std::string::npos) << s.message();
}

// (a) Every offered algorithm of every direction on the seed report's problems.
TEST(CudnnBackend, EveryAlgorithmAgreesWithTheReferenceOnTheSeedProblems) {
  CG_SKIP_WITHOUT_GPU();
  std::unique_ptr<Backend> backend = InitializedBackend();
  ASSERT_NE(backend, nullptr);
  const std::vector<Problem> seed = ListProblems("seed.list");
  ASSERT_EQ(seed.size(), 6u);
  for (const Problem& base : seed) {
    for (Direction d :
         {Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights}) {
      const Problem p = WithDirection(base, d);
      const std::vector<std::string> algorithms = backend->Algorithms(p);
      ASSERT_FALSE(algorithms.empty());
      int ran = 0;
      for (const std::string& algorithm : algorithms) {
        const bool ok =
            ExpectAgreesOrUnsupported(p, algorithm, RunAndCompare(*backend, p, algorithm));
        if (algorithm == algorithms.front()) {
          EXPECT_TRUE(ok) << "the default algorithm " << algorithm << " must run "
                          << ToCanonical(p);
        }
        ran += ok ? 1 : 0;
      }
      EXPECT_GE(ran, 1) << ToCanonical(p);
    }
  }
}

// Layouts, data types, bias, groups, strides and dilation, on the multiply-add
// algorithms (exact): descriptors and conversions must be right for each.
TEST(CudnnBackend, LayoutsTypesAndShapesAreExactOnMultiplyAddAlgorithms) {
  CG_SKIP_WITHOUT_GPU();
  std::unique_ptr<Backend> backend = InitializedBackend();
  ASSERT_NE(backend, nullptr);
  const char* shapes[] = {
      "n2_c16_h20_w18_k24_r3_s3_p1",       // batch, non-square
      "n1_c16_h17_w17_k32_r3_s3_p1_u2",    // stride 2, odd size
      "n1_c8_h16_w16_k8_r3_s3_p2_d2",      // dilation 2
      "n1_c16_h16_w16_k32_r3_s3_p1_g4",    // groups
      "n1_c32_h14_w14_k32_r3_s3_p1_g32",   // depthwise
      "n1_c12_h9_w11_k20_r1_s5_p0",        // 1x5 kernel, no padding
      "n1_c16_h16_w16_k16_r3_s3_p1_bias",  // forward bias
  };
  int ran = 0;
  int ran_nhwc = 0;
  int ran_half = 0;
  for (const char* shape : shapes) {
    StatusOr<Problem> parsed = ParseProblem(shape);
    ASSERT_TRUE(parsed.ok()) << shape << ": " << parsed.status().ToString();
    for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
      for (DataType dtype : {DataType::kF32, DataType::kF16, DataType::kBF16}) {
        for (Direction d :
             {Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights}) {
          Problem p = WithDirection(*parsed, d);
          p.layout = layout;
          p.dtype = dtype;
          if (!Validate(p).ok()) continue;
          const std::vector<std::string> algorithms = backend->Algorithms(p);
          bool any = false;
          for (const std::string& algorithm : algorithms) {
            if (IsTransform(algorithm)) continue;
            any = ExpectAgreesOrUnsupported(p, algorithm, RunAndCompare(*backend, p, algorithm)) ||
                  any;
          }
          // Float32 NCHW runs everywhere; NHWC and the half types may lack a legacy
          // kernel for a shape (UNSUPPORTED, with cuDNN's reason, is then correct).
          if (dtype == DataType::kF32 && layout == Layout::kNCHW) {
            EXPECT_TRUE(any) << "no algorithm ran " << ToCanonical(p);
          }
          ran += any ? 1 : 0;
          ran_nhwc += (any && layout == Layout::kNHWC) ? 1 : 0;
          ran_half += (any && dtype != DataType::kF32) ? 1 : 0;
        }
      }
    }
  }
  std::printf("  ran %d problems: %d NHWC, %d f16/bf16\n", ran, ran_nhwc, ran_half);
  EXPECT_GT(ran, 0);
  EXPECT_GT(ran_nhwc, 0) << "no NHWC problem ran: the NHWC descriptors are untested";
  EXPECT_GT(ran_half, 0) << "no f16/bf16 problem ran: the conversions are untested";
}

// (b) ResNet-50's convolutions, every algorithm, through the real probe engine.
TEST(CudnnEngine, ResNet50EveryLayerAndAlgorithmGetsAVerdict) {
  CG_SKIP_WITHOUT_GPU();
  const std::vector<Problem> layers = ListProblems("resnet50.list");
  ASSERT_EQ(layers.size(), 23u);
  ProbeOptions o;
  o.backend = "cudnn";
  o.worker_executable = testing_support::ConvguardBin();
  o.check = CheckMode::kSampled;
  std::vector<ProbeJob> jobs;
  for (const Problem& p : layers) jobs.push_back({p, "*"});
  auto engine = ProbeEngine::Start(o, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_EQ((*engine)->stack().backend, "cudnn");
  const auto started = std::chrono::steady_clock::now();
  auto result = (*engine)->Run(jobs);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  std::printf("  %zu verdicts in %.1f s on %s\n", result->verdicts.size(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
              (*engine)->stack().Summary().c_str());

  std::map<std::string, std::set<std::string>> algorithms_by_layer;
  std::map<std::string, std::map<std::string, int>> kinds_by_algorithm;
  std::map<std::string, int> ok_by_layer;
  for (const Verdict& v : result->verdicts) {
    EXPECT_TRUE(algorithms_by_layer[v.problem].insert(v.algorithm).second)
        << "two verdicts for " << v.problem << " " << v.algorithm;
    kinds_by_algorithm[v.algorithm][std::string(VerdictName(v.kind))]++;
    if (v.kind == VerdictKind::kOk) ok_by_layer[v.problem]++;
    if (!IsTransform(v.algorithm)) {
      EXPECT_NE(v.kind, VerdictKind::kWrong)
          << v.problem << " " << v.algorithm << ": " << v.message;
    }
    if (v.kind != VerdictKind::kOk) {
      std::printf("  %-55s %-22s %s: %s\n", v.problem.c_str(), v.algorithm.c_str(),
                  std::string(VerdictName(v.kind)).c_str(), v.message.substr(0, 120).c_str());
    }
  }
  for (const auto& [algorithm, kinds] : kinds_by_algorithm) {
    std::string line;
    for (const auto& [kind, count] : kinds) line += " " + kind + "=" + std::to_string(count);
    std::printf("  %-22s%s\n", algorithm.c_str(), line.c_str());
  }
  ASSERT_EQ(algorithms_by_layer.size(), layers.size());
  for (const Problem& p : layers) {
    const std::string key = ToCanonical(p);
    EXPECT_EQ(algorithms_by_layer[key].size(), 8u) << key;  // every forward algorithm
    EXPECT_GE(ok_by_layer[key], 1) << "no algorithm was OK for " << key;
  }
}

// (c) `spin` over the cuDNN backend hangs the GPU for real (a kernel that never ends).
// The first problem is its worker's first: the engine waits for it in place up to the
// confirmation deadline and calls it HANG in one attempt; the GPU is usable again by the
// next probe in a fresh worker; the third problem spins in a worker that already ran
// one, so it is confirmed in another fresh worker (two attempts).
TEST(CudnnEngine, InjectedSpinIsARealGpuHangAndTheNextProbeIsOk) {
  CG_SKIP_WITHOUT_GPU();
  const std::string dir = testing_support::MakeTempDir("cudnn-spin");
  const std::string rules = testing_support::WriteFile(dir + "/spin.rules",
                                                       "# a GPU kernel that never finishes\n"
                                                       "spin when k == 32\n");
  ProbeOptions o;
  o.backend = "cudnn";
  o.fault_rules_path = rules;
  o.worker_executable = testing_support::ConvguardBin();
  o.workers_per_device = 1;
  o.deadlines.confirm_factor = 3;  // first deadline ~1.3 s (allowance), confirmation ~4 s
  StatusOr<Problem> k32 = ParseProblem("n1_c16_h32_w32_k32_r3_s3_p1");
  StatusOr<Problem> k64 = ParseProblem("n1_c16_h32_w32_k64_r3_s3_p1");
  StatusOr<Problem> c8_k32 = ParseProblem("n1_c8_h32_w32_k32_r3_s3_p1");
  ASSERT_TRUE(k32.ok() && k64.ok() && c8_k32.ok());
  auto engine = ProbeEngine::Start(o, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto result = (*engine)->Run({{*k32, ""}, {*k64, ""}, {*c8_k32, ""}});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->verdicts.size(), 3u);
  std::map<int64_t, Verdict> by_k;
  Verdict later_hang;
  for (const Verdict& v : result->verdicts) {
    StatusOr<Problem> p = ParseProblem(v.problem, TextForm::kCanonical);
    ASSERT_TRUE(p.ok());
    (p->c == 8 ? later_hang : by_k[p->k]) = v;
    std::printf("  %s %s: %s (%d attempts, %.0f ms): %s\n", v.problem.c_str(), v.algorithm.c_str(),
                std::string(VerdictName(v.kind)).c_str(), v.attempts, v.elapsed_ms,
                v.message.c_str());
  }
  EXPECT_EQ(by_k[32].kind, VerdictKind::kHang) << by_k[32].message;
  EXPECT_EQ(by_k[32].attempts, 1);
  EXPECT_NE(by_k[32].message.find("confirmed in place"), std::string::npos) << by_k[32].message;
  EXPECT_EQ(later_hang.kind, VerdictKind::kHang) << later_hang.message;
  EXPECT_EQ(later_hang.attempts, 2);
  EXPECT_NE(later_hang.message.find("the confirmation in a fresh worker"), std::string::npos)
      << later_hang.message;
  // The worker said, on stderr (kept as evidence), that the kernel was on the GPU: the
  // CPU stand-in was not used.
  EXPECT_NE(by_k[32].message.find("spin kernel launched"), std::string::npos) << by_k[32].message;
  EXPECT_EQ(by_k[64].kind, VerdictKind::kOk) << by_k[64].message;
  EXPECT_GT(by_k[64].time_ms_median, 0.0);
}

// ---- device-resident execution --------------------------------------------------------

// A problem's tensors uploaded into device memory (this process's CUDA device 0).
std::unique_ptr<DeviceTensorCopy> OnDevice(DeviceMemory& memory, const Problem& p,
                                           const ConvTensors<float>& io) {
  StatusOr<std::unique_ptr<DeviceTensorCopy>> copy = DeviceTensorCopy::Upload(memory, p, io);
  EXPECT_TRUE(copy.ok()) << copy.status().ToString();
  return copy.ok() ? std::move(*copy) : nullptr;
}

// The direction's result, read back.
std::vector<float> ResultOf(const DeviceTensorCopy& device, const Problem& p) {
  ConvTensors<float> host = ConvTensors<float>::Allocate(p);
  std::vector<float>& result = ResultTensor(p, host);
  Status s = device.DownloadResult(result);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return result;
}

struct ExactCase {
  ConvTensors<double> exact;  // operands and the reference result
  ConvTensors<float> io;      // operands, the result poisoned with NaN
};

ExactCase MakeCase(const Problem& p, uint64_t seed) {
  ExactCase c;
  c.exact = ConvTensors<double>::Allocate(p);
  FillExact(p, seed, c.exact);
  ToFloatOperands(p, c.exact, c.io);
  ReferenceConvolution(p, c.exact);
  return c;
}

Problem ParseOrDie(const std::string& text) {
  StatusOr<Problem> p = ParseProblem(text);
  EXPECT_TRUE(p.ok()) << text << ": " << p.status().ToString();
  return p.ok() ? *p : Problem{};
}

// The default algorithm prepared once as a DeviceCall, on tensors uploaded once, agrees
// with the reference exactly in every direction, layout and dtype; addresses that are not
// device memory are named and refused.
TEST(CudnnDevice, DeviceCallsAreExactOnTensorsInDeviceMemory) {
  CG_SKIP_WITHOUT_GPU();
  std::unique_ptr<Backend> backend = InitializedBackend();
  ASSERT_NE(backend, nullptr);
  DeviceMemory* memory = backend->device_memory();
  ASSERT_NE(memory, nullptr);
  for (const char* text :
       {"n1_c16_h64_w64_k32_r3_s3_p1", "n1_c16_h64_w64_k32_r3_s3_p1_bwd-data",
        "n1_c16_h64_w64_k32_r3_s3_p1_bwd-weights", "n2_c8_h17_w13_k12_r3_s3_p1_f16_nhwc_bias",
        "n2_c6_h9_w11_k4_r3_s3_p1_u2_bf16_nchw_bwd-data"}) {
    const Problem p = ParseOrDie(text);
    SCOPED_TRACE(ToCanonical(p));
    const std::string algorithm = backend->Algorithms(p).front();
    StatusOr<std::unique_ptr<DeviceCall>> call = backend->PrepareDeviceCall(p, algorithm);
    ASSERT_TRUE(call.ok()) << call.status().ToString();
    for (uint64_t seed : {1u, 2u}) {  // the call is prepared once and runs twice
      ExactCase c = MakeCase(p, seed);
      std::unique_ptr<DeviceTensorCopy> device = OnDevice(*memory, p, c.io);
      ASSERT_NE(device, nullptr);
      ASSERT_TRUE(memory->Begin(nullptr).ok());
      Status s = (*call)->Enqueue(device->tensors());
      ASSERT_TRUE(s.ok()) << s.ToString();
      ASSERT_TRUE(memory->Finish().ok());
      const std::vector<float> result = ResultOf(*device, p);
      const Comparison cmp = CompareFull(p, result, ResultTensor(p, c.exact),
                                         DefaultTolerance(p, /*exact_filled=*/true));
      EXPECT_TRUE(cmp.passed()) << algorithm << ": " << cmp.Summary();
    }
  }
  std::vector<float> host(16);
  Status not_device = memory->CheckAddress(host.data(), "the input (x)");
  EXPECT_EQ(not_device.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(not_device.message().find("host memory"), std::string::npos) << not_device.ToString();
  EXPECT_EQ(memory->CheckAddress(nullptr, "the bias").code(), StatusCode::kInvalidArgument);
}

// Guarded execution on tensors that live on the GPU: a padding plan runs where they are
// (device-resident, exact, weights padded once per set), a batch-split plan runs through
// host memory and says so, host tensors still work, and host addresses are refused by name.
TEST(CudnnGuard, RunOnDeviceKeepsTensorsOnTheGpu) {
  CG_SKIP_WITHOUT_GPU();
  const std::string dir = testing_support::MakeTempDir("cudnn-guard");
  StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir + "/v.sqlite");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::unique_ptr<Backend> allocator = InitializedBackend();  // the test's own tensors
  ASSERT_NE(allocator, nullptr);
  DeviceMemory& memory = *allocator->device_memory();

  auto open = [&](const std::string& name, const std::string& rules_text) {
    const std::string rules = testing_support::WriteFile(dir + "/" + name + ".rules", rules_text);
    GuardOptions o;
    o.backend = "cudnn";
    o.backend_options.fault_rules = rules_text;
    o.backend_options.fault_rules_origin = rules;
    o.planner.probe_missing = true;
    o.probe.backend = "cudnn";
    o.probe.worker_executable = testing_support::ConvguardBin();
    o.probe.fault_rules_path = rules;
    o.probe.workers_per_device = 1;
    o.probe.repeats = 1;
    return Guard::Open(o, store->get());
  };

  // 16 input channels fail as is: the plan pads channels (a device node).
  StatusOr<std::unique_ptr<Guard>> guard =
      open("c16", "error(\"made to fail\") when c == 16 && k == 32\n");
  ASSERT_TRUE(guard.ok()) << guard.status().ToString();
  for (const char* text :
       {"n1_c16_h64_w64_k32_r3_s3_p1", "n1_c16_h64_w64_k32_r3_s3_p1_bwd-data",
        "n1_c16_h64_w64_k32_r3_s3_p1_bwd-weights", "n2_c16_h20_w20_k32_r3_s3_p1_f16_nhwc_bias"}) {
    const Problem p = ParseOrDie(text);
    SCOPED_TRACE(ToCanonical(p));
    StatusOr<const Plan*> plan = (*guard)->PlanFor(p);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    std::printf("  %s: %s\n", ToCanonical(p).c_str(), PlanToText(**plan).c_str());
    ASSERT_FALSE((*plan)->root.is_leaf()) << PlanToText(**plan);

    // Host tensors (uploaded into the plan's own device buffers).
    ExactCase host = MakeCase(p, 3);
    Status s = (*guard)->Run(p, host.io, WeightsAre::kNew);
    ASSERT_TRUE(s.ok()) << s.ToString();
    const double tolerance = DefaultTolerance(p, /*exact_filled=*/true);
    Comparison cmp =
        CompareFull(p, ResultTensor(p, host.io), ResultTensor(p, host.exact), tolerance);
    EXPECT_TRUE(cmp.passed()) << "Run: " << cmp.Summary();

    // Device tensors, twice: the second call with new activations on the same weights.
    ExactCase first = MakeCase(p, 4);
    std::unique_ptr<DeviceTensorCopy> device = OnDevice(memory, p, first.io);
    ASSERT_NE(device, nullptr);
    s = (*guard)->RunOnDevice(p, device->tensors(), WeightsAre::kNew);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE((*guard)->last_run_device_resident());
    cmp = CompareFull(p, ResultOf(*device, p), ResultTensor(p, first.exact), tolerance);
    EXPECT_TRUE(cmp.passed()) << "RunOnDevice: " << cmp.Summary();
    if (p.direction != Direction::kBackwardWeights) {
      ExactCase second = MakeCase(p, 5);
      second.exact.weight = first.exact.weight;
      second.exact.bias = first.exact.bias;
      ReferenceConvolution(p, second.exact);
      s = device->Replace(
          p.direction == Direction::kForward ? device->tensors().input : device->tensors().output,
          p.direction == Direction::kForward ? second.io.input : second.io.output);
      ASSERT_TRUE(s.ok()) << s.ToString();
      s = (*guard)->RunOnDevice(p, device->tensors(), WeightsAre::kUnchanged);
      ASSERT_TRUE(s.ok()) << s.ToString();
      cmp = CompareFull(p, ResultOf(*device, p), ResultTensor(p, second.exact), tolerance);
      EXPECT_TRUE(cmp.passed()) << "RunOnDevice, same weights: " << cmp.Summary();
    }
  }

  // Host addresses are refused, naming the tensor.
  const Problem seed = ParseOrDie("n1_c16_h64_w64_k32_r3_s3_p1");
  ConvTensors<float> host = ConvTensors<float>::Allocate(seed);
  Status refused = (*guard)->RunOnDevice(
      seed, DeviceTensors{host.input.data(), host.weight.data(), host.output.data(), nullptr},
      WeightsAre::kNew);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("the input (x)"), std::string::npos) << refused.ToString();
  EXPECT_NE(refused.message().find("host memory"), std::string::npos) << refused.ToString();

  // Every 2-image batch fails: channel padding cannot help, a batch split can. The split
  // has no device node, so the call goes through host memory, exactly, and says so.
  // (Spatial tiles of a padded problem pad asymmetrically, which cuDNN cannot express.)
  StatusOr<std::unique_ptr<Guard>> tiling = open("n2", "error(\"made to fail\") when n == 2\n");
  ASSERT_TRUE(tiling.ok()) << tiling.status().ToString();
  const Problem tall = ParseOrDie("n2_c8_h16_w16_k8_r3_s3_p1");
  StatusOr<const Plan*> plan = (*tiling)->PlanFor(tall);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  std::printf("  %s: %s\n", ToCanonical(tall).c_str(), PlanToText(**plan).c_str());
  ExactCase c = MakeCase(tall, 6);
  std::unique_ptr<DeviceTensorCopy> device = OnDevice(memory, tall, c.io);
  ASSERT_NE(device, nullptr);
  Status s = (*tiling)->RunOnDevice(tall, device->tensors(), WeightsAre::kNew);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE((*tiling)->last_run_device_resident());
  const Comparison cmp = CompareFull(tall, ResultOf(*device, tall), ResultTensor(tall, c.exact),
                                     DefaultTolerance(tall, /*exact_filled=*/true));
  EXPECT_TRUE(cmp.passed()) << cmp.Summary();
}

TEST(CudnnBackend, HangOnDeviceWithoutInitReturnsAtOnce) {
  CG_SKIP_WITHOUT_GPU();
  std::unique_ptr<Backend> backend = MakeCudnnBackend();
  EXPECT_FALSE(backend->HangOnDevice());
}

}  // namespace
}  // namespace convguard
