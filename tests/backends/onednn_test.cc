// The oneDNN backend against the float64 reference, in-process and through real workers.
//
// Every problem of the table runs in every direction with every algorithm the backend
// offers, on exactly filled data (fill.h): a multiply-add algorithm must reproduce the
// reference bit for bit (tolerance 0). Winograd divides, so it rounds even on integer
// data; a Winograd run (algorithm "winograd", or "auto" when oneDNN dispatched to a
// Winograd kernel) is held to the inexact tolerance DefaultTolerance(p, false) instead.
// Where oneDNN has no kernel (Winograd on a CPU without AVX-512, or for most shapes;
// bf16/f16 on such CPUs) the backend must say kUnsupported with a reason.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "backends/onednn/onednn_backend.h"
#include "convguard/compare.h"
#include "convguard/fill.h"
#include "convguard/probe.h"
#include "convguard/reference.h"
#include "convguard/text_forms.h"
#include "support/cli_runner.h"

namespace convguard {
namespace {

struct NamedProblem {
  const char* name;     // test-name part: letters, digits and '_'
  const char* problem;  // canonical text without the direction and layout suffixes
};

// Small versions of what convguard is for: the seed report's problems, ResNet-50 layer
// shapes at small spatial sizes, and every feature of Problem the backend maps.
const NamedProblem kProblems[] = {
    {"seed_16to32_32x32", "n1_c16_h32_k32_r3_p1"},
    {"seed_16to32_48x48", "n1_c16_h48_k32_r3_p1"},
    {"seed_16to32_64x64", "n1_c16_h64_k32_r3_p1"},
    {"seed_3to16_64x64", "n1_c3_h64_k16_r3_p1"},
    {"resnet_conv1_7x7_s2", "n1_c3_h32_k64_r7_p3_u2"},
    {"resnet_1x1_reduce", "n2_c256_h7_k64_r1"},
    {"resnet_1x1_expand", "n2_c64_h7_k256_r1"},
    {"resnet_1x1_downsample_s2", "n2_c64_h14_k128_r1_u2"},
    {"resnet_3x3", "n2_c64_h7_k64_r3_p1"},
    {"resnet_3x3_s2", "n2_c32_h14_k32_r3_p1_u2"},
    {"asym_pads", "n1_c8_h11_w13_k16_r3_s3_p1x0x2x1"},
    {"asym_pads_stride2", "n2_c8_h12_w9_k8_r3_s2_p0x2x1x0_u2x1"},
    {"dilation2", "n1_c8_h16_k16_r3_p2_d2"},
    {"dilation_2x3_asym", "n1_c4_h15_w17_k8_r3_s2_p1x3x0x2_d2x3"},
    {"groups2", "n1_c16_h16_k32_r3_p1_g2"},
    {"groups4_1x1", "n2_c16_h8_k16_r1_g4"},
    {"depthwise", "n1_c32_h16_k32_r3_p1_g32"},
    {"depthwise_s2", "n1_c16_h15_k16_r3_p1_u2_g16"},
    {"bias", "n1_c16_h16_k32_r3_p1_bias"},
    {"bias_groups2", "n1_c8_h10_k12_r3_p1_g2_bias"},
    {"stride_beyond_kernel", "n1_c8_h15_k8_r1_u2"},
    {"nonsquare_kernel", "n1_c8_h9_w12_k8_r1_s5_p0x2"},
};

const char* const kAlgorithms[] = {"auto", "direct", "winograd"};

struct DirectionName {
  Direction direction;
  const char* canonical;  // canonical-form token
  const char* test_name;
};
const DirectionName kDirections[] = {
    {Direction::kForward, "fwd", "fwd"},
    {Direction::kBackwardData, "bwd-data", "bwd_data"},
    {Direction::kBackwardWeights, "bwd-weights", "bwd_weights"},
};

Problem MustParse(const std::string& text) {
  StatusOr<Problem> p = ParseProblem(text, TextForm::kCanonical);
  EXPECT_TRUE(p.ok()) << text << ": " << p.status().ToString();
  return p.ok() ? *p : Problem{};
}

// One backend for the whole binary (Init once, like a worker).
Backend& SharedBackend() {
  static Backend* backend = [] {
    std::unique_ptr<Backend> b = MakeOneDnnBackend();
    Status s = b->Init();
    EXPECT_TRUE(s.ok()) << s.ToString();
    return b.release();
  }();
  return *backend;
}

struct Checked {
  Status status;         // Run's status
  RunResult run;         // when ok
  Comparison cmp;        // when ok
  bool inexact = false;  // held to the Winograd (inexact) tolerance
};

// Fills, runs, compares against the full float64 reference.
Checked RunAndCheck(Backend& backend, const Problem& p, const std::string& algorithm,
                    uint64_t seed = 7, const RunOptions& options = {}) {
  ConvTensors<double> exact = ConvTensors<double>::Allocate(p);
  FillExact(p, seed, exact);
  ConvTensors<float> io;
  ToFloatOperands(p, exact, io);

  Checked out;
  StatusOr<RunResult> ran = backend.Run(p, algorithm, io, options);
  if (!ran.ok()) {
    out.status = ran.status();
    return out;
  }
  out.run = *ran;
  ReferenceConvolution(p, exact);
  out.inexact = algorithm == "winograd" || out.run.implementation.find("wino") != std::string::npos;
  out.cmp = CompareFull(p, ResultTensor(p, io), ResultTensor(p, exact),
                        DefaultTolerance(p, /*exact_filled=*/!out.inexact));
  return out;
}

// ---- f32: every problem x direction x layout x algorithm ----

using F32Param = std::tuple<NamedProblem, DirectionName, Layout, const char*>;

class OneDnnF32 : public ::testing::TestWithParam<F32Param> {};

TEST_P(OneDnnF32, MatchesTheFloat64Reference) {
  const auto& [np, dir, layout, algorithm] = GetParam();
  const Problem p = MustParse(std::string(np.problem) + "_f32_" + std::string(LayoutName(layout)) +
                              "_" + dir.canonical);
  Backend& backend = SharedBackend();
  const std::vector<std::string> offered = backend.Algorithms(p);
  ASSERT_NE(std::find(offered.begin(), offered.end(), algorithm), offered.end());

  const Status supported = backend.Supports(p, algorithm);
  if (std::string(algorithm) == "winograd" && !supported.ok()) {
    // oneDNN has Winograd kernels only on AVX-512 and only for some shapes.
    EXPECT_EQ(supported.code(), StatusCode::kUnsupported) << supported.ToString();
    EXPECT_NE(supported.message().find("winograd"), std::string::npos) << supported.message();
    EXPECT_NE(supported.message().find("ISA"), std::string::npos) << supported.message();
    RecordProperty("unsupported", supported.message());
    return;
  }
  ASSERT_TRUE(supported.ok()) << ToCanonical(p) << ": " << supported.ToString();

  RunOptions options;
  options.warmup = 1;
  options.repeats = 2;
  const Checked c = RunAndCheck(backend, p, algorithm, /*seed=*/7, options);
  ASSERT_TRUE(c.status.ok()) << ToCanonical(p) << " " << algorithm << ": " << c.status.ToString();
  EXPECT_EQ(c.run.times_ms.size(), 2u);
  for (double t : c.run.times_ms) EXPECT_GE(t, 0.0);
  EXPECT_FALSE(c.run.implementation.empty());
  RecordProperty("implementation", c.run.implementation);
  RecordProperty("comparison", c.cmp.Summary());
  EXPECT_TRUE(c.cmp.passed()) << ToCanonical(p) << " " << algorithm << " (" << c.run.implementation
                              << (c.inexact ? ", inexact tolerance" : "")
                              << "): " << c.cmp.Summary();
  EXPECT_FALSE(c.cmp.mistrusted) << c.cmp.Summary();
  if (std::string(algorithm) == "direct") {
    EXPECT_FALSE(c.inexact) << c.run.implementation;
  }
}

std::string F32Name(const ::testing::TestParamInfo<F32Param>& info) {
  const auto& [np, dir, layout, algorithm] = info.param;
  return std::string(np.name) + "_" + dir.test_name + "_" + std::string(LayoutName(layout)) + "_" +
         algorithm;
}

INSTANTIATE_TEST_SUITE_P(Table, OneDnnF32,
                         ::testing::Combine(::testing::ValuesIn(kProblems),
                                            ::testing::ValuesIn(kDirections),
                                            ::testing::Values(Layout::kNCHW, Layout::kNHWC),
                                            ::testing::ValuesIn(kAlgorithms)),
                         F32Name);

// ---- bf16 / f16: exact where oneDNN has kernels, otherwise kUnsupported with a reason ----

using HalfParam = std::tuple<NamedProblem, DirectionName, DataType, const char*>;

class OneDnnHalf : public ::testing::TestWithParam<HalfParam> {};

const NamedProblem kHalfProblems[] = {
    {"seed_16to32_32x32", "n1_c16_h32_k32_r3_p1"},
    {"seed_3to16_64x64", "n1_c3_h64_k16_r3_p1"},
    {"resnet_1x1_downsample_s2", "n2_c64_h14_k128_r1_u2"},
    {"groups2_bias", "n1_c16_h16_k32_r3_p1_g2_bias"},
    {"depthwise_nhwc", "n1_c32_h16_k32_r3_p1_g32_nhwc"},
    {"asym_pads_dilation2", "n1_c8_h11_w13_k16_r3_s3_p1x0x2x1_d2"},
};

TEST_P(OneDnnHalf, MatchesTheReferenceOrIsUnsupportedWithAReason) {
  const auto& [np, dir, dtype, algorithm] = GetParam();
  const Problem p = MustParse(std::string(np.problem) + "_" + std::string(DataTypeName(dtype)) +
                              "_" + dir.canonical);
  Backend& backend = SharedBackend();
  const Status supported = backend.Supports(p, algorithm);
  if (!supported.ok()) {
    EXPECT_EQ(supported.code(), StatusCode::kUnsupported) << supported.ToString();
    EXPECT_NE(supported.message().find(std::string(DataTypeName(dtype))), std::string::npos)
        << supported.message();
    EXPECT_NE(supported.message().find("ISA"), std::string::npos) << supported.message();
    RecordProperty("unsupported", supported.message());
    return;
  }
  const Checked c = RunAndCheck(backend, p, algorithm);
  RecordProperty("implementation", c.run.implementation);
  ASSERT_TRUE(c.status.ok()) << ToCanonical(p) << ": " << c.status.ToString();
  EXPECT_TRUE(c.cmp.passed()) << ToCanonical(p) << " " << algorithm << " (" << c.run.implementation
                              << "): " << c.cmp.Summary();
  EXPECT_FALSE(c.cmp.mistrusted) << c.cmp.Summary();
}

std::string HalfName(const ::testing::TestParamInfo<HalfParam>& info) {
  const auto& [np, dir, dtype, algorithm] = info.param;
  return std::string(np.name) + "_" + dir.test_name + "_" + std::string(DataTypeName(dtype)) + "_" +
         algorithm;
}

INSTANTIATE_TEST_SUITE_P(Table, OneDnnHalf,
                         ::testing::Combine(::testing::ValuesIn(kHalfProblems),
                                            ::testing::ValuesIn(kDirections),
                                            ::testing::Values(DataType::kBF16, DataType::kF16),
                                            ::testing::Values("auto", "direct")),
                         HalfName);

// ---- the backend's contract beyond the numbers ----

TEST(OneDnnBackend, OffersAutoFirstThenDirectAndWinograd) {
  const std::vector<std::string> algos =
      SharedBackend().Algorithms(MustParse("n1_c16_h32_k32_r3_p1"));
  EXPECT_EQ(algos, (std::vector<std::string>{"auto", "direct", "winograd"}));
  EXPECT_EQ(SharedBackend().name(), "onednn");
}

TEST(OneDnnBackend, FingerprintDescribesTheStack) {
  const StackFingerprint f = SharedBackend().Fingerprint();
  EXPECT_EQ(f.backend, "onednn");
  EXPECT_EQ(f.device.rfind("CPU ", 0), 0u) << f.device;
  EXPECT_GT(f.device.size(), 4u);
  EXPECT_FALSE(f.architecture.empty());
  EXPECT_NE(f.architecture.find(' '), std::string::npos) << "machine and ISA: " << f.architecture;
  EXPECT_GT(f.compute_units, 0);
  EXPECT_NE(f.library.find("oneDNN 2."), std::string::npos) << f.library;
  EXPECT_FALSE(f.runtime.empty());
  EXPECT_TRUE(f.emulation.empty());
  EXPECT_EQ(f.tool_version, CONVGUARD_VERSION);
  EXPECT_EQ(f.Id().size(), 16u);
  // A second backend in the same environment is the same stack.
  std::unique_ptr<Backend> other = MakeOneDnnBackend();
  ASSERT_TRUE(other->Init().ok());
  EXPECT_EQ(other->Fingerprint().Id(), f.Id());
}

TEST(OneDnnBackend, KnobsSetInTheEnvironmentAreRecorded) {
  // CPU_ISA_HINTS is read once per process, and NO_HINTS is its default: harmless here.
  ASSERT_EQ(setenv("ONEDNN_CPU_ISA_HINTS", "NO_HINTS", 1), 0);
  std::unique_ptr<Backend> b = MakeOneDnnBackend();
  const Status s = b->Init();
  unsetenv("ONEDNN_CPU_ISA_HINTS");
  ASSERT_TRUE(s.ok()) << s.ToString();
  const StackFingerprint f = b->Fingerprint();
  ASSERT_EQ(f.knobs.count("ONEDNN_CPU_ISA_HINTS"), 1u);
  EXPECT_EQ(f.knobs.at("ONEDNN_CPU_ISA_HINTS"), "NO_HINTS");
  EXPECT_NE(f.Id(), SharedBackend().Fingerprint().Id());
}

TEST(OneDnnBackend, RunsOnOneThreadUnlessOmpNumThreadsIsSet) {
  SharedBackend();
  if (std::getenv("OMP_NUM_THREADS") != nullptr) GTEST_SKIP() << "OMP_NUM_THREADS is set";
  using GetMax = int (*)();
  auto get = reinterpret_cast<GetMax>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  ASSERT_NE(get, nullptr) << "Debian's oneDNN is OpenMP-built";
  EXPECT_EQ(get(), 1);
  EXPECT_NE(SharedBackend().Fingerprint().runtime.find("1 thread"), std::string::npos)
      << SharedBackend().Fingerprint().runtime;
}

TEST(OneDnnBackend, UnknownAlgorithmIsUnsupported) {
  const Status s = SharedBackend().Supports(MustParse("n1_c16_h32_k32_r3_p1"), "fft");
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("auto, direct, winograd"), std::string::npos) << s.message();
}

TEST(OneDnnBackend, InvalidProblemIsRejected) {
  Problem p = MustParse("n1_c16_h32_k32_r3_p1");
  p.groups = 3;  // 16 channels do not split into 3 groups
  EXPECT_FALSE(SharedBackend().Supports(p, "auto").ok());
}

TEST(OneDnnBackend, WrongSizedTensorsAreAnErrorNotACrash) {
  const Problem p = MustParse("n1_c16_h32_k32_r3_p1");
  ConvTensors<float> io = ConvTensors<float>::Allocate(p);
  io.weight.resize(3);
  StatusOr<RunResult> r = SharedBackend().Run(p, "auto", io, {});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(OneDnnBackend, SwitchingProblemsAndRepeatingOneStaysExact) {
  // The backend keeps the current problem's primitive; going back and forth must rebuild
  // it correctly, and a repeated problem (cached primitive) must still be exact with new data.
  Backend& backend = SharedBackend();
  const Problem a = MustParse("n1_c16_h32_k32_r3_p1_nhwc_fwd");
  const Problem b = MustParse("n1_c8_h16_k16_r3_p2_d2_g2_bwd-data");
  for (const Problem* p : {&a, &a, &b, &a, &b, &b}) {
    ASSERT_TRUE(backend.Supports(*p, "direct").ok());
    for (uint64_t seed : {1u, 2u}) {
      const Checked c = RunAndCheck(backend, *p, "direct", seed);
      ASSERT_TRUE(c.status.ok()) << c.status.ToString();
      EXPECT_TRUE(c.cmp.passed()) << ToCanonical(*p) << ": " << c.cmp.Summary();
    }
  }
}

// oneDNN 2.6's convolution_auto dispatches to the Winograd kernel jit_wino_4x3 on AVX-512
// CPUs for larger batches (seen for backward-data from batch 16 and backward-weights at
// batch 32 of this shape): "auto" then rounds on exactly filled data. The result is right
// within the inexact tolerance and not bit-exact. Elsewhere "auto" is a direct kernel
// and exact.
TEST(OneDnnBackend, AutoMayPickWinogradForLargeBatchesAndThenRounds) {
  const Problem p = MustParse("n16_c64_h28_k64_r3_p1_bwd-data");
  ASSERT_TRUE(SharedBackend().Supports(p, "auto").ok());
  const Checked c = RunAndCheck(SharedBackend(), p, "auto");
  ASSERT_TRUE(c.status.ok()) << c.status.ToString();
  RecordProperty("implementation", c.run.implementation);
  RecordProperty("comparison", c.cmp.Summary());
  EXPECT_TRUE(c.cmp.passed()) << c.run.implementation << ": " << c.cmp.Summary();
  EXPECT_EQ(c.inexact, c.run.implementation.find("wino") != std::string::npos);
}

TEST(OneDnnBackend, ZeroRepeatsLeavesNoTimesAndNoCrash) {
  const Problem p = MustParse("n1_c16_h32_k32_r3_p1");
  RunOptions options;
  options.warmup = 0;
  options.repeats = 0;
  ConvTensors<float> io = ConvTensors<float>::Allocate(p);
  StatusOr<RunResult> r = SharedBackend().Run(p, "auto", io, options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->times_ms.empty());
}

// ---- end to end: the probe engine with real `convguard worker --backend onednn` ----

TEST(OneDnnProbeEngine, RealWorkersGiveOkVerdicts) {
  ProbeOptions o;
  o.backend = "onednn";
  o.worker_executable = testing_support::ConvguardBin();
  o.workers_per_device = 2;
  o.check = CheckMode::kFull;
  auto engine = ProbeEngine::Start(o, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_EQ((*engine)->stack().backend, "onednn");
  EXPECT_NE((*engine)->stack().library.find("oneDNN 2."), std::string::npos);
  EXPECT_FALSE((*engine)->stack().is_emulated());

  const std::vector<ProbeJob> jobs = {
      {MustParse("n1_c16_h64_k32_r3_p1"), ""},  // the seed problem, the default algorithm
      {MustParse("n1_c3_h64_k16_r3_p1"), "direct"},
      {MustParse("n1_c16_h32_k32_r3_p1_g2_nhwc_bwd-data"), "auto"},
      {MustParse("n2_c16_h14_k32_r3_p1_u2_bias_bwd-weights"), "direct"},
  };
  auto result = (*engine)->Run(jobs);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->verdicts.size(), jobs.size());
  for (const Verdict& v : result->verdicts) {
    EXPECT_EQ(v.kind, VerdictKind::kOk) << v.problem << " " << v.algorithm << ": " << v.message;
    EXPECT_FALSE(v.implementation.empty()) << v.problem;
    EXPECT_GT(v.time_ms_median, 0.0) << v.problem;
    EXPECT_EQ(v.stack_id, (*engine)->stack().Id());
    EXPECT_FALSE(v.emulated);
    if (v.problem == ToCanonical(jobs[0].problem)) {
      EXPECT_EQ(v.algorithm, "auto");
    }
    // The verdict records how its check was held: bit-exact unless the kernel rounds.
    const bool rounds = v.implementation.find("wino") != std::string::npos;
    if (rounds) {
      EXPECT_GT(v.tolerance, 0.0) << v.implementation;
    } else {
      EXPECT_EQ(v.tolerance, 0.0) << v.implementation;
    }
  }
}

}  // namespace
}  // namespace convguard
