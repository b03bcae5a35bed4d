// InjectingBackend: every fault kind performed for real (fatal ones in death-test
// children), delegation to the inner backend, the fingerprint, and the shipped
// stacks/emulated-rdna1.rules against the seed report's table.
#include "backends/inject/injecting_backend.h"

#include <gtest/gtest.h>
#include <sys/time.h>  // setitimer: only the tests time their death-test children
#include <unistd.h>    // alarm

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <latch>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/hash.h"
#include "support/seed_problems.h"

namespace convguard::inject {
namespace {

// A trivial inner backend: writes 2.0 into the tensor the direction produces and counts
// its calls, so a test sees whether the real backend ran and what a fault changed.
class FakeBackend final : public Backend {
 public:
  struct Counts {
    int inits = 0;
    int runs = 0;
  };
  explicit FakeBackend(Counts* counts) : counts_(counts) {}

  std::string_view name() const override { return "fake"; }
  Status Init() override {
    ++counts_->inits;
    return Status::Ok();
  }
  StackFingerprint Fingerprint() const override {
    StackFingerprint fp;
    fp.backend = "fake";
    fp.device = "CPU fake";
    fp.architecture = "x86_64";
    fp.compute_units = 2;
    fp.library = "fake 1.0";
    fp.knobs = {{"FAKE_KNOB", "1"}};
    return fp;
  }
  std::vector<std::string> Algorithms(const Problem&) const override { return {"direct", "gemm"}; }
  Status Supports(const Problem&, std::string_view algorithm) const override {
    if (algorithm == "nope") return Status::Unsupported("fake has no 'nope'");
    return Status::Ok();
  }
  StatusOr<RunResult> Run(const Problem& p, std::string_view, ConvTensors<float>& io,
                          const RunOptions& options) override {
    ++counts_->runs;
    std::vector<float>& produced = p.direction == Direction::kForward        ? io.output
                                   : p.direction == Direction::kBackwardData ? io.input
                                                                             : io.weight;
    std::fill(produced.begin(), produced.end(), 2.0f);
    RunResult result;
    result.times_ms.assign(static_cast<size_t>(options.repeats), 1.0);
    result.implementation = "fake-kernel";
    return result;
  }
  double first_call_allowance_ms() const override { return 123.0; }

 private:
  Counts* counts_;
};

using testing_support::SeedConv;

// A 1x1 convolution of a 4x4 single-channel image: 16 elements in every tensor.
Problem Tiny() {
  Problem p;
  p.h = p.w = 4;
  return p;
}

std::unique_ptr<InjectingBackend> Wrap(std::string_view rules_text, FakeBackend::Counts* counts,
                                       std::string registry_name = "", int device = 0) {
  StatusOr<FaultRules> rules = ParseFaultRules(rules_text, "test.rules");
  EXPECT_TRUE(rules.ok()) << rules.status().ToString();
  if (!rules.ok()) return nullptr;
  return std::make_unique<InjectingBackend>(std::make_unique<FakeBackend>(counts),
                                            std::move(rules).value(), std::move(registry_name),
                                            device);
}

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---- delegation and the fingerprint ------------------------------------------------

TEST(InjectingBackendTest, DelegatesWhenNoRuleMatches) {
  FakeBackend::Counts counts;
  auto backend = Wrap("error(\"never\") when c == 999\n", &counts);
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->name(), "fake");
  ASSERT_TRUE(backend->Init().ok());
  EXPECT_EQ(counts.inits, 1);
  EXPECT_EQ(backend->Algorithms(Tiny()), (std::vector<std::string>{"direct", "gemm"}));
  EXPECT_TRUE(backend->Supports(Tiny(), "direct").ok());
  EXPECT_EQ(backend->Supports(Tiny(), "nope").code(), StatusCode::kUnsupported);
  EXPECT_EQ(backend->first_call_allowance_ms(), 123.0);
  EXPECT_EQ(backend->MatchFault(Tiny(), "direct"), std::nullopt);
  EXPECT_EQ(backend->MatchRule(Tiny(), "direct"), nullptr);

  ConvTensors<float> io = ConvTensors<float>::Allocate(Tiny());
  StatusOr<RunResult> result = backend->Run(Tiny(), "direct", io, RunOptions{});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(counts.runs, 1);
  EXPECT_EQ(result->implementation, "fake-kernel");
  EXPECT_EQ(io.output, std::vector<float>(16, 2.0f));
}

TEST(InjectingBackendTest, FingerprintCarriesOverridesEmulationAndDigest) {
  constexpr char kRules[] =
      "emulation: emulation of a test stack\n"
      "stack.device: Test GPU\n"
      "stack.architecture: gfx9999\n"
      "stack.driver: drv 7\n"
      "stack.runtime: rt 8\n"
      "stack.library: lib 9\n"
      "stack.compute_units: 60\n"
      "stack.knobs.EXTRA: yes\n"
      "spin when c == 999\n";
  FakeBackend::Counts counts;
  auto backend = Wrap(kRules, &counts, "emulated-test");
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->name(), "emulated-test");
  const StackFingerprint fp = backend->Fingerprint();
  EXPECT_EQ(fp.backend, "emulated-test");
  EXPECT_EQ(fp.device, "Test GPU");
  EXPECT_EQ(fp.architecture, "gfx9999");
  EXPECT_EQ(fp.driver, "drv 7");
  EXPECT_EQ(fp.runtime, "rt 8");
  EXPECT_EQ(fp.library, "lib 9");
  EXPECT_EQ(fp.compute_units, 60);
  EXPECT_EQ(fp.knobs, (std::map<std::string, std::string>{{"FAKE_KNOB", "1"}, {"EXTRA", "yes"}}));
  EXPECT_EQ(fp.emulation, "emulation of a test stack");
  EXPECT_TRUE(fp.is_emulated());
  EXPECT_EQ(fp.fault_rules_digest, Fnv1a64Hex(kRules));
  EXPECT_EQ(fp.fault_rules_digest.size(), 16u);

  // Without directives the inner fingerprint stays, but the rules still mark the stack.
  auto plain = Wrap("spin when c == 999\n", &counts);
  ASSERT_NE(plain, nullptr);
  StackFingerprint expected = FakeBackend(&counts).Fingerprint();
  expected.fault_rules_digest = Fnv1a64Hex("spin when c == 999\n");
  EXPECT_EQ(plain->Fingerprint(), expected);
}

// A rule reading `device` misbehaves on the device it names only, and makes every device
// a stack of its own (their verdicts differ); rules that do not read it leave the
// devices one stack.
TEST(InjectingBackendTest, DeviceRulesActOnTheirDeviceAndSplitTheStack) {
  constexpr char kRules[] = "error(\"bad card\") when device == 1\n";
  FakeBackend::Counts counts;
  auto on0 = Wrap(kRules, &counts, "", 0);
  auto on1 = Wrap(kRules, &counts, "", 1);
  ASSERT_NE(on0, nullptr);
  ASSERT_NE(on1, nullptr);
  ConvTensors<float> io = ConvTensors<float>::Allocate(Tiny());
  EXPECT_TRUE(on0->Run(Tiny(), "direct", io, RunOptions{}).ok());
  StatusOr<RunResult> failed = on1->Run(Tiny(), "direct", io, RunOptions{});
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(Contains(failed.status().message(), "bad card [injected by test.rules:1]"))
      << failed.status().message();
  EXPECT_EQ(on0->MatchFault(Tiny(), "direct"), std::nullopt);
  EXPECT_EQ(on1->MatchFault(Tiny(), "direct"), FaultKind::kError);
  EXPECT_NE(on0->Fingerprint().Id(), on1->Fingerprint().Id());
  EXPECT_EQ(on1->Fingerprint().fault_rules_digest, Fnv1a64Hex(Fnv1a64Hex(kRules) + "@device 1"));

  auto same0 = Wrap("error(\"x\") when c == 999\n", &counts, "", 0);
  auto same1 = Wrap("error(\"x\") when c == 999\n", &counts, "", 1);
  EXPECT_EQ(same0->Fingerprint(), same1->Fingerprint());
}

TEST(InjectingBackendTest, WrapWithFaultRulesReportsParseErrorsWithOrigin) {
  FakeBackend::Counts counts;
  StatusOr<std::unique_ptr<Backend>> bad =
      WrapWithFaultRules(std::make_unique<FakeBackend>(&counts), "spin when c >\n", "my.rules");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(bad.status().message(), "my.rules:1:14: expected a field"))
      << bad.status().message();

  StatusOr<std::unique_ptr<Backend>> none = WrapWithFaultRules(nullptr, "", "my.rules");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);

  StatusOr<std::unique_ptr<Backend>> good = WrapWithFaultRules(
      std::make_unique<FakeBackend>(&counts), "oom when always\n", "my.rules", "wrapped");
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ((*good)->name(), "wrapped");
  ConvTensors<float> io = ConvTensors<float>::Allocate(Tiny());
  EXPECT_EQ((*good)->Run(Tiny(), "direct", io, RunOptions{}).status().code(),
            StatusCode::kResourceExhausted);
}

// ---- non-fatal faults, in process --------------------------------------------------

TEST(InjectingBackendTest, MatchFaultNamesEveryKindAndFirstMatchWins) {
  FakeBackend::Counts counts;
  auto backend = Wrap(
      "spin when c == 1\nblock when c == 2\nsegv when c == 3\nabort when c == 4\n"
      "exit(9) when c == 5\nwrong(0.5) when c == 6\nerror(\"e\") when c == 7\n"
      "slow(1) when c == 8\noom when c == 9\nunsupported(\"u\") when c == 10\n"
      "error(\"gemm only\") when algo == \"gemm\"\n",
      &counts);
  ASSERT_NE(backend, nullptr);
  const std::vector<FaultKind> kinds = {
      FaultKind::kSpin, FaultKind::kBlock,      FaultKind::kSegv,  FaultKind::kAbort,
      FaultKind::kExit, FaultKind::kWrong,      FaultKind::kError, FaultKind::kSlow,
      FaultKind::kOom,  FaultKind::kUnsupported};
  for (size_t i = 0; i < kinds.size(); ++i) {
    Problem p = Tiny();
    p.c = static_cast<int64_t>(i) + 1;
    EXPECT_EQ(backend->MatchFault(p, "gemm"), kinds[i]) << "c = " << p.c;
    EXPECT_EQ(backend->MatchRule(p, "gemm")->line, static_cast<int>(i) + 1);
  }
  Problem other = Tiny();
  other.c = 11;
  EXPECT_EQ(backend->MatchFault(other, "gemm"), FaultKind::kError);
  EXPECT_EQ(backend->MatchFault(other, "direct"), std::nullopt);
  EXPECT_EQ(counts.runs, 0);  // matching performs nothing
}

TEST(InjectingBackendTest, WrongCorruptsTheTailOfTheProducedTensor) {
  struct Case {
    Direction direction;
    std::vector<float> ConvTensors<float>::*produced;
  };
  for (const Case& c : {Case{Direction::kForward, &ConvTensors<float>::output},
                        Case{Direction::kBackwardData, &ConvTensors<float>::input},
                        Case{Direction::kBackwardWeights, &ConvTensors<float>::weight}}) {
    FakeBackend::Counts counts;
    auto backend = Wrap("wrong(0.25) when always\n", &counts);
    ASSERT_NE(backend, nullptr);
    Problem p = Tiny();
    p.direction = c.direction;
    if (c.direction == Direction::kBackwardWeights) p.r = p.s = 4;  // 16 weights too
    ConvTensors<float> io = ConvTensors<float>::Allocate(p);
    StatusOr<RunResult> result = backend->Run(p, "direct", io, RunOptions{});
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(counts.runs, 1);
    EXPECT_EQ(result->implementation, "fake-kernel [injected wrong(0.25) by test.rules:1]");
    const std::vector<float>& produced = io.*c.produced;
    ASSERT_EQ(produced.size(), 16u);
    for (size_t i = 0; i < 16; ++i) {
      // 2 becomes 2 + 1 + |2| = 5 in the last quarter.
      EXPECT_EQ(produced[i], i < 12 ? 2.0f : 5.0f) << DirectionName(c.direction) << " " << i;
    }
  }
}

TEST(InjectingBackendTest, CorruptTailCountsAndMagnitudes) {
  std::vector<float> t = {0.0f, -1.0f, 3.0f, -1e30f};
  CorruptTail(t, 1e-9);  // at least one element
  EXPECT_EQ(t, (std::vector<float>{0.0f, -1.0f, 3.0f, 0.0f}));
  t = {0.0f, -1.0f, 3.0f, -0.5f};
  CorruptTail(t, 1.0);
  EXPECT_EQ(t, (std::vector<float>{1.0f, 1.0f, 7.0f, 1.0f}));
  t = {1.0f, 1.0f, 1.0f};
  CorruptTail(t, 0.5);  // ceil(1.5) = 2
  EXPECT_EQ(t, (std::vector<float>{1.0f, 3.0f, 3.0f}));
  std::vector<float> empty;
  CorruptTail(empty, 1.0);
  EXPECT_TRUE(empty.empty());
}

TEST(InjectingBackendTest, ErrorReturnsTheMessageWithoutRunning) {
  FakeBackend::Counts counts;
  auto backend = Wrap("error(\"miopenStatusUnknownError\") when always\n", &counts);
  ASSERT_NE(backend, nullptr);
  ConvTensors<float> io = ConvTensors<float>::Allocate(Tiny());
  StatusOr<RunResult> result = backend->Run(Tiny(), "direct", io, RunOptions{});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInternal);
  EXPECT_EQ(result.status().message(), "miopenStatusUnknownError [injected by test.rules:1]");
  EXPECT_EQ(counts.runs, 0);
  EXPECT_TRUE(backend->Supports(Tiny(), "direct").ok());  // only unsupported() affects it
}

// The engine's device health checks run without the injected faults: they ask whether
// the device works, not whether the shape does.
TEST(InjectingBackendTest, HealthChecksRunOnTheBackendWithoutFaults) {
  FakeBackend::Counts counts;
  auto backend = Wrap("error(\"injected\") when always\n", &counts);
  ASSERT_NE(backend, nullptr);
  ConvTensors<float> io = ConvTensors<float>::Allocate(Tiny());
  EXPECT_FALSE(backend->Run(Tiny(), "direct", io, RunOptions{}).ok());
  EXPECT_EQ(counts.runs, 0);
  Backend& plain = backend->WithoutInjectedFaults();
  EXPECT_NE(&plain, backend.get());
  EXPECT_EQ(plain.name(), "fake");
  StatusOr<RunResult> result = plain.Run(Tiny(), "direct", io, RunOptions{});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_GT(counts.runs, 0);
  // A backend without faults is its own.
  EXPECT_EQ(&plain.WithoutInjectedFaults(), &plain);
}

TEST(InjectingBackendTest, UnsupportedAppliesToSupportsAndRun) {
  FakeBackend::Counts counts;
  auto backend = Wrap("unsupported(\"no fp16 kernels\") when dtype == f16\n", &counts);
  ASSERT_NE(backend, nullptr);
  Problem p = Tiny();
  p.dtype = DataType::kF16;
  const Status supports = backend->Supports(p, "direct");
  EXPECT_EQ(supports.code(), StatusCode::kUnsupported);
  EXPECT_EQ(supports.message(), "no fp16 kernels [injected by test.rules:1]");
  ConvTensors<float> io = ConvTensors<float>::Allocate(p);
  StatusOr<RunResult> result = backend->Run(p, "direct", io, RunOptions{});
  EXPECT_EQ(result.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(counts.runs, 0);
  EXPECT_TRUE(backend->Supports(Tiny(), "direct").ok());  // f32 is untouched
}

// ---- sequence faults: the call history ----------------------------------------------

// Runs `p` with `algorithm`; the status, for tests that only look at the outcome.
Status RunOnce(InjectingBackend& backend, const Problem& p, std::string_view algorithm = "direct") {
  ConvTensors<float> io = ConvTensors<float>::Allocate(p);
  return backend.Run(p, algorithm, io, RunOptions{}).status();
}

Problem WithChannels(int64_t c) {
  Problem p = Tiny();
  p.c = c;
  return p;
}

TEST(InjectingBackendTest, CallsCountsEveryRunCall) {
  FakeBackend::Counts counts;
  auto backend = Wrap("error(\"late\") when calls >= 3\n", &counts);
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->run_calls(), 0);
  EXPECT_EQ(backend->MatchFault(Tiny(), "direct"), std::nullopt);  // the next call is call 1
  EXPECT_TRUE(RunOnce(*backend, Tiny()).ok());
  EXPECT_TRUE(RunOnce(*backend, Tiny()).ok());
  EXPECT_EQ(counts.runs, 2);
  EXPECT_EQ(backend->run_calls(), 2);
  // MatchFault answers for the next call (the 3rd) and counts nothing.
  EXPECT_EQ(backend->MatchFault(Tiny(), "direct"), FaultKind::kError);
  EXPECT_EQ(backend->MatchFault(Tiny(), "direct"), FaultKind::kError);
  EXPECT_EQ(backend->run_calls(), 2);
  const Status third = RunOnce(*backend, Tiny());
  EXPECT_EQ(third.code(), StatusCode::kInternal);
  EXPECT_EQ(third.message(), "late [injected by test.rules:1]");
  EXPECT_EQ(RunOnce(*backend, Tiny()).code(), StatusCode::kInternal);  // and every call after
  EXPECT_EQ(counts.runs, 2);
  EXPECT_EQ(backend->run_calls(), 4);
}

// A call counts when Run begins, whatever it then does: a fault's error counts too.
TEST(InjectingBackendTest, FailedCallsCountToo) {
  FakeBackend::Counts counts;
  auto backend = Wrap(
      "error(\"first\") when calls == 1\n"
      "oom when calls == 2\n"
      "error(\"fourth\") when calls == 4\n",
      &counts);
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(RunOnce(*backend, Tiny()).message(), "first [injected by test.rules:1]");
  EXPECT_EQ(RunOnce(*backend, Tiny()).code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(RunOnce(*backend, Tiny()).ok());
  EXPECT_EQ(RunOnce(*backend, Tiny()).message(), "fourth [injected by test.rules:3]");
  EXPECT_TRUE(RunOnce(*backend, Tiny()).ok());
  EXPECT_EQ(counts.runs, 2);
  EXPECT_EQ(backend->run_calls(), 5);
}

TEST(InjectingBackendTest, PrevReadsTheLastRunCall) {
  FakeBackend::Counts counts;
  auto backend = Wrap(
      "error(\"after c3\") when prev.c == 3 && c == 16\n"
      "error(\"gemm twice\") when prev.algo == algo && algo == \"gemm\"\n",
      &counts);
  ASSERT_NE(backend, nullptr);
  // The first call has no previous one: prev.* is undefined, nothing matches.
  EXPECT_TRUE(RunOnce(*backend, WithChannels(16), "gemm").ok());
  EXPECT_TRUE(RunOnce(*backend, WithChannels(3)).ok());
  EXPECT_EQ(backend->MatchRule(WithChannels(16), "direct"), &backend->rules().rules[0]);
  EXPECT_EQ(backend->MatchRule(WithChannels(8), "direct"), nullptr);
  EXPECT_EQ(RunOnce(*backend, WithChannels(16)).message(), "after c3 [injected by test.rules:1]");
  // The failed call is the previous one now: c == 16, not 3.
  EXPECT_TRUE(RunOnce(*backend, WithChannels(16), "gemm").ok());
  EXPECT_EQ(RunOnce(*backend, WithChannels(16), "gemm").message(),
            "gemm twice [injected by test.rules:2]");
  EXPECT_TRUE(RunOnce(*backend, WithChannels(16), "direct").ok());
  EXPECT_TRUE(RunOnce(*backend, WithChannels(16), "gemm").ok());
  EXPECT_EQ(counts.runs, 5);
  EXPECT_EQ(backend->run_calls(), 7);
}

// Supports() answers for the call Run would be next, and does not count.
TEST(InjectingBackendTest, SupportsSeesTheNextCall) {
  FakeBackend::Counts counts;
  auto backend = Wrap("unsupported(\"not after the first\") when calls >= 2\n", &counts);
  ASSERT_NE(backend, nullptr);
  EXPECT_TRUE(backend->Supports(Tiny(), "direct").ok());
  EXPECT_TRUE(backend->Supports(Tiny(), "direct").ok());
  EXPECT_EQ(backend->run_calls(), 0);
  EXPECT_TRUE(RunOnce(*backend, Tiny()).ok());
  const Status supports = backend->Supports(Tiny(), "direct");
  EXPECT_EQ(supports.code(), StatusCode::kUnsupported);
  EXPECT_EQ(supports.message(), "not after the first [injected by test.rules:1]");
  EXPECT_EQ(backend->run_calls(), 1);
  EXPECT_EQ(RunOnce(*backend, Tiny()).code(), StatusCode::kUnsupported);
  EXPECT_EQ(backend->run_calls(), 2);
  EXPECT_EQ(counts.runs, 1);
}

// Health checks run on the backend without faults: they are not calls of the history.
TEST(InjectingBackendTest, HealthChecksAreNotCounted) {
  FakeBackend::Counts counts;
  auto backend = Wrap("error(\"second\") when calls == 2\n", &counts);
  ASSERT_NE(backend, nullptr);
  EXPECT_TRUE(RunOnce(*backend, Tiny()).ok());
  ConvTensors<float> io = ConvTensors<float>::Allocate(Tiny());
  EXPECT_TRUE(backend->WithoutInjectedFaults().Run(Tiny(), "direct", io, RunOptions{}).ok());
  EXPECT_EQ(backend->run_calls(), 1);
  EXPECT_EQ(RunOnce(*backend, Tiny()).message(), "second [injected by test.rules:1]");
}

// Concurrent calls each get their own position: exactly half of them are odd.
TEST(InjectingBackendTest, ConcurrentCallsGetDistinctPositions) {
  FakeBackend::Counts counts;
  // The inner backend never runs (it is not thread-safe); only the history is shared.
  auto backend = Wrap("error(\"odd\") when calls % 2 == 1\nerror(\"even\") when always\n", &counts);
  ASSERT_NE(backend, nullptr);
  constexpr int kThreads = 4;
  constexpr int kCallsEach = 5000;
  std::vector<int> odd(kThreads, 0);
  std::vector<std::thread> threads;
  std::latch start(kThreads);  // all at once, so that their calls interleave
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kCallsEach; ++i) {
        if (RunOnce(*backend, Tiny()).message().starts_with("odd")) ++odd[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(backend->run_calls(), kThreads * kCallsEach);
  EXPECT_EQ(std::accumulate(odd.begin(), odd.end(), 0), kThreads * kCallsEach / 2);
  EXPECT_EQ(counts.runs, 0);
}

TEST(InjectingBackendTest, OomIsARealAllocationFailure) {
  FakeBackend::Counts counts;
  auto backend = Wrap("oom when h >= 4\n", &counts);
  ASSERT_NE(backend, nullptr);
  ConvTensors<float> io = ConvTensors<float>::Allocate(Tiny());
  StatusOr<RunResult> result = backend->Run(Tiny(), "direct", io, RunOptions{});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(result.status().message(),
            "allocating 1152921504606846976 bytes failed [injected by test.rules:1]");
  EXPECT_EQ(counts.runs, 0);
}

TEST(InjectingBackendTest, SlowSleepsForEveryExecutionThenRuns) {
  FakeBackend::Counts counts;
  auto backend = Wrap("slow(5) when always\n", &counts);
  ASSERT_NE(backend, nullptr);
  ConvTensors<float> io = ConvTensors<float>::Allocate(Tiny());
  RunOptions options;
  options.warmup = 1;
  options.repeats = 2;
  const auto start = std::chrono::steady_clock::now();
  StatusOr<RunResult> result = backend->Run(Tiny(), "direct", io, options);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(counts.runs, 1);
  // A lower bound only: sleep_for never returns early; (1 + 2) executions x 5 ms.
  EXPECT_GE(elapsed, std::chrono::milliseconds(15));
  EXPECT_EQ(result->times_ms, (std::vector<double>{6.0, 6.0}));
  EXPECT_EQ(result->implementation, "fake-kernel [injected slow(5) by test.rules:1]");
  EXPECT_EQ(io.output, std::vector<float>(16, 2.0f));  // and the result is right
}

// ---- fatal faults, in death-test children ------------------------------------------

// In the child: SIGVTALRM after `cpu_ms` of CPU time burnt in user mode, SIGALRM after
// `wall_s` seconds. A spinning fault dies of the first, a blocked one of the second:
// that tells "burns a core forever" from "sleeps in the kernel forever". (A CPU spin,
// unlike a GPU hang, does let an alarm fire; the watchdog never relies on that.)
void ArmTimers(int cpu_ms, unsigned wall_s) {
  itimerval cpu{};
  cpu.it_value.tv_sec = cpu_ms / 1000;
  cpu.it_value.tv_usec = (cpu_ms % 1000) * 1000;
  setitimer(ITIMER_VIRTUAL, &cpu, nullptr);
  alarm(wall_s);
}

class InjectingBackendDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }

  // Runs the tiny problem under `rule` (a fault with "when always").
  void RunUnder(const std::string& fault) {
    FakeBackend::Counts counts;
    auto backend = Wrap(fault + " when always\n", &counts);
    if (backend == nullptr) std::_Exit(100);
    ConvTensors<float> io = ConvTensors<float>::Allocate(Tiny());
    StatusOr<RunResult> result = backend->Run(Tiny(), "direct", io, RunOptions{});
    (void)result;
    std::_Exit(101);  // a fatal fault never gets here
  }
};

// A fatal sequence fault, for real: two calls run, the third ends the process.
void RunThreeCalls() {
  FakeBackend::Counts counts;
  auto backend = Wrap("exit(7) when calls == 3\n", &counts);
  if (backend == nullptr) std::_Exit(100);
  for (int i = 0; i < 2; ++i) {
    if (!RunOnce(*backend, Tiny()).ok() || counts.runs != i + 1) std::_Exit(102);
  }
  (void)RunOnce(*backend, Tiny());
  std::_Exit(101);  // a fatal fault never gets here
}

TEST_F(InjectingBackendDeathTest, ExitOnTheThirdCall) {
  EXPECT_EXIT(RunThreeCalls(), ::testing::ExitedWithCode(7),
              "injected fault 'exit' by rule test.rules:1: exit\\(7\\) when calls == 3");
}

TEST_F(InjectingBackendDeathTest, SegvIsARealSegmentationFault) {
  EXPECT_EXIT(RunUnder("segv"), ::testing::KilledBySignal(SIGSEGV),
              "injected fault 'segv' by rule test.rules:1: segv when always");
}

TEST_F(InjectingBackendDeathTest, AbortRaisesSigabrt) {
  EXPECT_EXIT(RunUnder("abort"), ::testing::KilledBySignal(SIGABRT), "injected fault 'abort'");
}

TEST_F(InjectingBackendDeathTest, ExitEndsTheProcessWithoutASignal) {
  EXPECT_EXIT(RunUnder("exit(3)"), ::testing::ExitedWithCode(3), "injected fault 'exit'");
  EXPECT_EXIT(RunUnder("exit(0)"), ::testing::ExitedWithCode(0), "injected fault 'exit'");
}

TEST_F(InjectingBackendDeathTest, SpinBurnsACpuForever) {
  EXPECT_EXIT(
      {
        ArmTimers(/*cpu_ms=*/200, /*wall_s=*/20);
        RunUnder("spin");
      },
      ::testing::KilledBySignal(SIGVTALRM), "injected fault 'spin'");
}

TEST_F(InjectingBackendDeathTest, BlockSleepsInTheKernelForever) {
  EXPECT_EXIT(
      {
        ArmTimers(/*cpu_ms=*/200, /*wall_s=*/1);
        RunUnder("block");
      },
      ::testing::KilledBySignal(SIGALRM), "injected fault 'block'");
}

// ---- the shipped emulated-rdna1 stack ----------------------------------------------

std::string ReadShippedRules() {
  std::filesystem::path root;
  if (const char* dir = std::getenv("CONVGUARD_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    root = dir;
  } else {
    root = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
  }
  std::ifstream in(root / "stacks" / "emulated-rdna1.rules", std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class EmulatedRdna1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    text_ = ReadShippedRules();
    ASSERT_FALSE(text_.empty()) << "cannot read stacks/emulated-rdna1.rules";
    StatusOr<std::unique_ptr<Backend>> wrapped = WrapWithFaultRules(
        std::make_unique<FakeBackend>(&counts_), text_, "builtin:emulated-rdna1", "emulated-rdna1");
    ASSERT_TRUE(wrapped.ok()) << wrapped.status().ToString();
    backend_.reset(static_cast<InjectingBackend*>(std::move(wrapped).value().release()));
  }

  // Whether the emulation hangs on `p`, checked for every algorithm.
  bool Hangs(const Problem& p) {
    const std::optional<FaultKind> fault = backend_->MatchFault(p, "direct");
    for (const char* algo : {"gemm", "winograd", "implicit_gemm", ""}) {
      EXPECT_EQ(backend_->MatchFault(p, algo), fault) << "algorithm " << algo;
    }
    EXPECT_TRUE(!fault.has_value() || *fault == FaultKind::kSpin);
    return fault == FaultKind::kSpin;
  }

  std::string text_;
  FakeBackend::Counts counts_;
  std::unique_ptr<InjectingBackend> backend_;
};

TEST_F(EmulatedRdna1Test, ReproducesTheSeedTableExactly) {
  EXPECT_FALSE(Hangs(SeedConv(16, 32, 32)));  // works (0.23 s)
  EXPECT_TRUE(Hangs(SeedConv(16, 32, 48)));   // HANGS
  EXPECT_TRUE(Hangs(SeedConv(16, 32, 64)));   // HANGS
  for (int64_t hw : {8, 32, 33, 48, 64, 224, 512, 1024}) {
    EXPECT_FALSE(Hangs(SeedConv(3, 16, hw))) << "3 -> 16 works at any size: " << hw;
  }
}

TEST_F(EmulatedRdna1Test, GeneralisesToPowerOfTwoChannelsAbove32) {
  EXPECT_TRUE(Hangs(SeedConv(32, 64, 64)));  // the report's 32 -> 64
  EXPECT_TRUE(Hangs(SeedConv(64, 64, 56)));  // ResNet's 64 -> 64 ("likely hangs")
  EXPECT_TRUE(Hangs(SeedConv(16, 16, 33)));
  EXPECT_TRUE(Hangs(SeedConv(512, 256, 40)));
  Problem batch = SeedConv(16, 32, 64);
  batch.n = 4;  // the report's option 1 example
  EXPECT_TRUE(Hangs(batch));
  Problem tall = SeedConv(16, 32, 32);
  tall.h = 48;
  EXPECT_TRUE(Hangs(tall));
  Problem wide = SeedConv(16, 32, 32);
  wide.w = 48;
  EXPECT_TRUE(Hangs(wide));
  Problem unpadded = SeedConv(16, 32, 48);
  unpadded.pad_top = unpadded.pad_left = unpadded.pad_bottom = unpadded.pad_right = 0;
  EXPECT_TRUE(Hangs(unpadded));
  Problem f16 = SeedConv(16, 32, 48);
  f16.dtype = DataType::kF16;
  f16.layout = Layout::kNHWC;
  EXPECT_TRUE(Hangs(f16));
}

TEST_F(EmulatedRdna1Test, ExactRewritesOfTheHangingProblemAreOk) {
  EXPECT_FALSE(Hangs(SeedConv(17, 32, 64)));  // input channels zero-padded 16 -> 17
  EXPECT_FALSE(Hangs(SeedConv(16, 33, 64)));  // output channels padded 32 -> 33, sliced
  // Spatial tiles of the 64x64 input whose input, halo included, is at most 32x32:
  // a corner tile keeps the image's padding on two sides, an interior tile has none.
  Problem corner = SeedConv(16, 32, 31);
  corner.pad_bottom = corner.pad_right = 0;  // 31 + 1 halo row/column = 32 inputs
  corner.h = corner.w = 32;
  EXPECT_FALSE(Hangs(corner));
  Problem interior = SeedConv(16, 32, 32);
  interior.pad_top = interior.pad_left = interior.pad_bottom = interior.pad_right = 0;
  EXPECT_FALSE(Hangs(interior));  // 30x30 outputs from 32x32 inputs
  Problem too_big = interior;
  too_big.h = too_big.w = 34;  // a 32x32 output tile with its halo: still hangs
  EXPECT_TRUE(Hangs(too_big));
  Problem half_batch = SeedConv(16, 32, 32);
  half_batch.n = 2;
  EXPECT_FALSE(Hangs(half_batch));
}

TEST_F(EmulatedRdna1Test, StaysWithinTheReportsEvidence) {
  EXPECT_FALSE(Hangs(SeedConv(8, 16, 64)));  // channels below 16
  EXPECT_FALSE(Hangs(SeedConv(16, 8, 64)));
  EXPECT_FALSE(Hangs(SeedConv(15, 32, 64)));  // the report's option 2 examples
  EXPECT_FALSE(Hangs(SeedConv(16, 31, 64)));
  Problem pointwise = SeedConv(16, 32, 64);
  pointwise.r = pointwise.s = 1;
  pointwise.pad_top = pointwise.pad_left = pointwise.pad_bottom = pointwise.pad_right = 0;
  EXPECT_FALSE(Hangs(pointwise));
  Problem depthwise = SeedConv(32, 32, 64);  // MobileNetV2 works, says the report
  depthwise.groups = 32;
  EXPECT_FALSE(Hangs(depthwise));
  Problem strided = SeedConv(16, 32, 64);
  strided.stride_h = strided.stride_w = 2;
  EXPECT_FALSE(Hangs(strided));
  Problem dilated = SeedConv(16, 32, 64);
  dilated.dilation_h = dilated.dilation_w = 2;
  EXPECT_FALSE(Hangs(dilated));
  for (Direction d : {Direction::kBackwardData, Direction::kBackwardWeights}) {
    Problem backward = SeedConv(16, 32, 64);
    backward.direction = d;
    EXPECT_FALSE(Hangs(backward)) << DirectionName(d);
  }
}

TEST_F(EmulatedRdna1Test, SaysPlainlyItIsAnEmulation) {
  const StackFingerprint fp = backend_->Fingerprint();
  EXPECT_EQ(fp.backend, "emulated-rdna1");
  EXPECT_TRUE(fp.is_emulated());
  for (const char* words : {"emulation of AMD RDNA1 gfx1010", "ROCm 5.7 MIOpen", "fault rules",
                            "CPU reference backend"}) {
    EXPECT_TRUE(Contains(fp.emulation, words)) << words << " not in: " << fp.emulation;
  }
  EXPECT_EQ(fp.architecture, "gfx1010");
  EXPECT_TRUE(Contains(fp.device, "(emulated)")) << fp.device;
  EXPECT_TRUE(Contains(fp.library, "MIOpen")) << fp.library;
  EXPECT_EQ(fp.knobs.at("HSA_OVERRIDE_GFX_VERSION"), "10.3.0");
  EXPECT_EQ(fp.fault_rules_digest, Fnv1a64Hex(text_));
  EXPECT_EQ(backend_->rules().origin, "builtin:emulated-rdna1");
}

TEST_F(EmulatedRdna1Test, WorkingSeedProblemRunsNormally) {
  const Problem p = SeedConv(16, 32, 32);
  // Checked first: were the rules to match, Run would spin in this very process.
  ASSERT_EQ(backend_->MatchFault(p, "gemm"), std::nullopt);
  ConvTensors<float> io = ConvTensors<float>::Allocate(p);
  StatusOr<RunResult> result = backend_->Run(p, "gemm", io, RunOptions{});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(counts_.runs, 1);
}

// Named *DeathTest so that gtest runs it before other tests start threads.
using EmulatedRdna1DeathTest = EmulatedRdna1Test;

TEST_F(EmulatedRdna1DeathTest, HangingSeedProblemSpinsForReal) {
  const Problem p = SeedConv(16, 32, 48);
  EXPECT_EXIT(
      {
        ArmTimers(/*cpu_ms=*/200, /*wall_s=*/20);
        ConvTensors<float> io = ConvTensors<float>::Allocate(p);
        StatusOr<RunResult> result = backend_->Run(p, "gemm", io, RunOptions{});
        (void)result;
        std::_Exit(101);
      },
      ::testing::KilledBySignal(SIGVTALRM),
      "injected fault 'spin' by rule builtin:emulated-rdna1:[0-9]+: spin when direction == fwd");
}

}  // namespace
}  // namespace convguard::inject
