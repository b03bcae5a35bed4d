// The probe engine on several GPUs: one pool of pinned workers per device, a stack per
// device, a hang on one device that leaves the others alone, and one shared store. The
// GPUs are faked by the misbehaving worker (CONVGUARD_FAKE_GPUS, see its header), so
// these paths are tested on machines without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "backends/inject/fault_rules.h"
#include "convguard/probe.h"
#include "convguard/store.h"
#include "convguard/text_forms.h"
#include "core/hash.h"
#include "os/system.h"
#include "support/cli_runner.h"

namespace convguard {
namespace {

// The variables the fake GPUs and the engine's pinning read. Every test starts with all
// of them unset, whatever the machine running the tests has (a GPU runner may well set
// CUDA_VISIBLE_DEVICES), and gets the process's own values back at its end.
constexpr const char* kEnvNames[] = {"CUDA_VISIBLE_DEVICES",       "HIP_VISIBLE_DEVICES",
                                     "CONVGUARD_FAKE_GPUS",        "CONVGUARD_FAKE_SAME_STACK",
                                     "CONVGUARD_FAKE_HANG_DEVICE", "CONVGUARD_FAKE_HANG_K",
                                     "CONVGUARD_FAKE_SLOW_K",      "CONVGUARD_FAKE_SLOW_MS"};

Problem SmallProblem(int64_t k) {
  StatusOr<Problem> p = ParseProblem("n1_c4_h8_w8_k" + std::to_string(k) + "_r3_s3_p1");
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return *p;
}

int64_t OutputChannels(const std::string& canonical) {
  StatusOr<Problem> p = ParseProblem(canonical, TextForm::kCanonical);
  EXPECT_TRUE(p.ok()) << canonical;
  return p.ok() ? p->k : -1;
}

class MultiDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kEnvNames) {
      saved_.emplace_back(name, os::GetEnv(name));
      ::unsetenv(name);
    }
    dir_ = testing_support::MakeTempDir("multi-device");
    StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir_ + "/verdicts.sqlite");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  void TearDown() override {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

  static void SetEnv(const char* name, const std::string& value) {
    ::setenv(name, value.c_str(), 1);
  }

  // One worker per device, so which device ran what follows from the order of dispatch.
  // A first attempt's run deadline is about one second: far longer than every other
  // probe of a test takes together, so that a hang is decided only after them.
  static ProbeOptions FakeGpuOptions() {
    ProbeOptions o;
    o.backend = "misbehaving";
    o.worker_executable = testing_support::MisbehavingWorkerBin();
    o.workers_per_device = 1;
    o.deadlines.floor_ms = 1000;
    o.deadlines.confirm_floor_ms = 700;
    o.deadlines.confirm_factor = 1;
    return o;
  }

  // An engine over two fake GPUs that report the same stack, under fault rules `rules_text`.
  StatusOr<std::unique_ptr<ProbeEngine>> StartOnTwoIdenticalCards(const std::string& rules_text) {
    SetEnv("CONVGUARD_FAKE_GPUS", "2");
    SetEnv("CONVGUARD_FAKE_SAME_STACK", "1");
    ProbeOptions options = FakeGpuOptions();
    options.fault_rules_path = dir_ + "/two-cards.rules";
    std::ofstream(options.fault_rules_path) << rules_text;
    return ProbeEngine::Start(options, store_.get());
  }

  // Stack id -> device name, from the store.
  std::map<std::string, std::string> DevicesByStack() {
    std::map<std::string, std::string> by_id;
    StatusOr<std::vector<StackFingerprint>> stacks = store_->ListStacks();
    EXPECT_TRUE(stacks.ok()) << stacks.status().ToString();
    if (!stacks.ok()) return by_id;
    for (const StackFingerprint& s : *stacks) by_id[s.Id()] = s.device;
    return by_id;
  }

  std::vector<Verdict> StoredVerdicts(const std::string& stack_id) {
    VerdictFilter filter;
    filter.stack_id = stack_id;
    StatusOr<std::vector<Verdict>> verdicts = store_->ListVerdicts(filter);
    EXPECT_TRUE(verdicts.ok()) << verdicts.status().ToString();
    return verdicts.ok() ? *verdicts : std::vector<Verdict>{};
  }

  size_t AttemptCount(const Verdict& v) {
    StatusOr<std::vector<Attempt>> attempts =
        store_->ListAttempts({v.stack_id, v.problem, v.algorithm});
    EXPECT_TRUE(attempts.ok()) << attempts.status().ToString();
    return attempts.ok() ? attempts->size() : 0;
  }

  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(MultiDevice, EveryDeviceIsAStackOfItsOwnAndProbesEveryJob) {
  SetEnv("CONVGUARD_FAKE_GPUS", "3");
  std::vector<std::string> events;
  ProbeCallbacks callbacks;
  callbacks.on_event = [&](const std::string& e) { events.push_back(e); };
  auto engine = ProbeEngine::Start(FakeGpuOptions(), store_.get(), callbacks);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_EQ((*engine)->stack().device, "Fake GPU 0");

  // Four jobs with the backend's default algorithm and one with every algorithm (two):
  // each stack asks its own workers what they offer.
  std::vector<ProbeJob> jobs;
  for (int64_t k : {8, 9, 10, 11}) jobs.push_back({SmallProblem(k), ""});
  jobs.push_back({SmallProblem(12), "*"});
  auto result = (*engine)->Run(jobs);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->progress.total, 3 * 6);
  ASSERT_EQ(result->verdicts.size(), 3u * 6u);

  const std::map<std::string, std::string> devices = DevicesByStack();
  ASSERT_EQ(devices.size(), 3u);
  std::set<std::string> names;
  for (const auto& [id, device] : devices) names.insert(device);
  EXPECT_EQ(names, (std::set<std::string>{"Fake GPU 0", "Fake GPU 1", "Fake GPU 2"}));

  for (const auto& [id, device] : devices) {
    const std::string entry = device.substr(device.rfind(' ') + 1);
    std::vector<Verdict> stored = StoredVerdicts(id);
    ASSERT_EQ(stored.size(), 6u) << device;
    std::set<std::pair<std::string, std::string>> keys;
    for (const Verdict& v : stored) {
      keys.insert({v.problem, v.algorithm});
      EXPECT_EQ(v.kind, VerdictKind::kOk) << device << " " << v.problem << ": " << v.message;
      // Ran by a worker pinned to this very device, once.
      EXPECT_EQ(v.implementation, "fake-gpu:" + entry) << device << " " << v.problem;
      EXPECT_EQ(v.attempts, 1);
      EXPECT_EQ(AttemptCount(v), 1u) << device << " " << v.problem;
      EXPECT_GT(v.time_ms_median, 0.0);
      // The repro line probes on the same device (`probe` alone would probe all three).
      EXPECT_TRUE(v.repro.ends_with(" --devices " + entry)) << v.repro;
    }
    EXPECT_EQ(keys.size(), 6u) << device;
    EXPECT_EQ(keys.count({ToCanonical(SmallProblem(8)), "implicit-gemm"}), 1u);
    EXPECT_EQ(keys.count({ToCanonical(SmallProblem(12)), "winograd"}), 1u);
  }
  // Every pool calibrated its own deadline policy.
  int calibrations = 0;
  for (const std::string& e : events) calibrations += e.rfind("calibrated:", 0) == 0 ? 1 : 0;
  EXPECT_EQ(calibrations, 3);
}

TEST_F(MultiDevice, AHangOnOneDeviceLeavesTheOthersRunning) {
  SetEnv("CONVGUARD_FAKE_GPUS", "3");
  SetEnv("CONVGUARD_FAKE_HANG_DEVICE", "1");
  SetEnv("CONVGUARD_FAKE_HANG_K", "7");
  // Problems with k = 13 take 1.5 s on every device: on devices 0 and 2 that work is in
  // flight when device 1's stuck worker is killed (at about 1 s), and ends while device 1
  // confirms its hang (until about 2 s). Its problem has 31 GFLOP, so that even at the
  // calibrated 230 GFLOP/s its deadline (1 s + 10 x 4 runs x 0.13 s) is far beyond 1.5 s.
  SetEnv("CONVGUARD_FAKE_SLOW_K", "13");
  SetEnv("CONVGUARD_FAKE_SLOW_MS", "1500");
  StatusOr<Problem> big = ParseProblem("n32_c256_h128_w128_k13_r3_s3_p1");
  ASSERT_TRUE(big.ok());

  // One log of what happened, in order: verdicts as "<device> k<k> <VERDICT>", and each
  // moment the watchdog killed a stuck worker.
  std::vector<std::string> log;
  std::map<std::string, std::string> device_of;  // stack id -> device, filled after Start
  ProbeCallbacks callbacks;
  callbacks.on_verdict = [&](const Verdict& v) {
    log.push_back(device_of[v.stack_id] + " k" + std::to_string(OutputChannels(v.problem)) + " " +
                  std::string(VerdictName(v.kind)));
  };
  callbacks.on_event = [&](const std::string& e) {
    if (e.find("missed the run-stage deadline") != std::string::npos) log.push_back("kill " + e);
  };
  auto engine = ProbeEngine::Start(FakeGpuOptions(), store_.get(), callbacks);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  device_of = DevicesByStack();
  ASSERT_EQ(device_of.size(), 3u);

  // Every device takes its jobs in this order: a quick k12 first (so that device 1's hang
  // is confirmed in a fresh worker, not in place), then device 1 is stuck in k7; the
  // others run k7, then the slow k13, then the rest.
  std::vector<ProbeJob> jobs = {{SmallProblem(12), ""}, {SmallProblem(7), ""}, {*big, ""}};
  for (int64_t k : {8, 9, 10, 11}) jobs.push_back({SmallProblem(k), ""});
  auto result = (*engine)->Run(jobs);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->verdicts.size(), 3u * jobs.size());

  std::string all;
  for (const std::string& line : log) all += "\n  " + line;
  auto position = [&](const std::string& prefix) -> size_t {
    for (size_t i = 0; i < log.size(); ++i) {
      if (log[i].rfind(prefix, 0) == 0) return i;
    }
    ADD_FAILURE() << "no '" << prefix << "' in the log:" << all;
    return log.size();
  };
  const size_t first_kill = position("kill ");
  const size_t hang = position("Fake GPU 1 k7 HANG");
  EXPECT_LT(first_kill, hang) << all;
  for (const char* device : {"Fake GPU 0", "Fake GPU 2"}) {
    const std::string d = device;
    // While device 1's worker was stuck in its first probe, the others went on...
    EXPECT_LT(position(d + " k7 OK"), first_kill) << all;
    // ...their slow probe was running when it was killed...
    EXPECT_GT(position(d + " k13 OK"), first_kill) << all;
    // ...and they kept getting work while device 1 confirmed its hang alone.
    for (int64_t k : {8, 9, 10, 11}) {
      EXPECT_LT(position(d + " k" + std::to_string(k) + " OK"), hang) << all;
    }
  }
  // Device 1 went on after its hang was decided.
  for (int64_t k : {13, 8, 9, 10, 11}) {
    EXPECT_GT(position("Fake GPU 1 k" + std::to_string(k) + " OK"), hang) << all;
  }

  for (const Verdict& v : result->verdicts) {
    const std::string& device = device_of[v.stack_id];
    if (device == "Fake GPU 1" && OutputChannels(v.problem) == 7) {
      EXPECT_EQ(v.kind, VerdictKind::kHang) << v.message;
      EXPECT_EQ(v.attempts, 2);
      EXPECT_EQ(AttemptCount(v), 2u);
      continue;
    }
    EXPECT_EQ(v.kind, VerdictKind::kOk) << device << " " << v.problem << ": " << v.message;
    // The hang made only device 1's own probes suspect: the slow probes in flight on
    // devices 0 and 2 when it was killed were not re-run.
    EXPECT_EQ(v.attempts, 1) << device << " " << v.problem;
  }
  StatusOr<std::vector<Verdict>> hangs =
      store_->ListVerdicts({std::nullopt, VerdictKind::kHang, std::nullopt});
  ASSERT_TRUE(hangs.ok());
  ASSERT_EQ(hangs->size(), 1u);
  EXPECT_EQ(device_of[hangs->front().stack_id], "Fake GPU 1");
}

TEST_F(MultiDevice, SelectedDevicesOnlyAndBadSelectionsStopBeforeAnyProbe) {
  SetEnv("CONVGUARD_FAKE_GPUS", "3");
  ProbeOptions o = FakeGpuOptions();
  o.devices = {2, 0};
  {
    auto engine = ProbeEngine::Start(o, store_.get());
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    EXPECT_EQ((*engine)->stack().device, "Fake GPU 2");  // the first selected
    auto result = (*engine)->Run({{SmallProblem(8), ""}, {SmallProblem(9), ""}});
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->verdicts.size(), 4u);
  }
  std::set<std::string> names;
  for (const auto& [id, device] : DevicesByStack()) {
    names.insert(device);
    std::vector<Verdict> stored = StoredVerdicts(id);
    EXPECT_EQ(stored.size(), 2u) << device;
    // Device indices stay those of every visible GPU, whatever the selection.
    for (const Verdict& v : stored)
      EXPECT_TRUE(v.repro.ends_with(" --devices " + device.substr(9))) << v.repro;
  }
  EXPECT_EQ(names, (std::set<std::string>{"Fake GPU 0", "Fake GPU 2"}));

  // Bad selections: refused with a message naming the device, and nothing was probed
  // (no calibration) or stored (no new stack).
  struct Bad {
    std::vector<int> devices;
    std::string words;
  };
  for (const Bad& bad :
       {Bad{{3}, "device 3 is not visible: backend 'misbehaving' sees 3 GPUs (devices 0..2)"},
        Bad{{0, 5}, "device 5 is not visible"}, Bad{{-1}, "device -1 is not visible"},
        Bad{{1, 1}, "device 1 is selected twice"}}) {
    o.devices = bad.devices;
    std::vector<std::string> events;
    ProbeCallbacks callbacks;
    callbacks.on_event = [&](const std::string& e) { events.push_back(e); };
    auto engine = ProbeEngine::Start(o, store_.get(), callbacks);
    ASSERT_FALSE(engine.ok()) << bad.words;
    EXPECT_EQ(engine.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(engine.status().message().find(bad.words), std::string::npos)
        << engine.status().message();
    EXPECT_TRUE(events.empty()) << events.front();
    EXPECT_EQ(DevicesByStack().size(), 2u);
  }

  // A backend without GPUs has no devices to select.
  ::unsetenv("CONVGUARD_FAKE_GPUS");
  o.devices = {0};
  auto engine = ProbeEngine::Start(o, store_.get());
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("sees no GPU"), std::string::npos)
      << engine.status().message();
  EXPECT_EQ(DevicesByStack().size(), 2u);
}

TEST_F(MultiDevice, DevicesAreNamedThroughTheParentsOwnVisibleList) {
  SetEnv("CONVGUARD_FAKE_GPUS", "8");
  // This process sees physical GPUs 5 and 7 as its devices 0 and 1.
  SetEnv("CUDA_VISIBLE_DEVICES", "5,7");
  auto engine = ProbeEngine::Start(FakeGpuOptions(), store_.get());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_EQ((*engine)->stack().device, "Fake GPU 5");
  auto result = (*engine)->Run({{SmallProblem(8), ""}});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  std::set<std::string> ran_on;
  for (const Verdict& v : result->verdicts) {
    ran_on.insert(v.implementation);
    // The repro names this process's device index, not the physical GPU.
    EXPECT_TRUE(
        v.repro.ends_with(v.implementation == "fake-gpu:7" ? " --devices 1" : " --devices 0"))
        << v.repro;
  }
  EXPECT_EQ(ran_on, (std::set<std::string>{"fake-gpu:5", "fake-gpu:7"}));
  std::set<std::string> names;
  for (const auto& [id, device] : DevicesByStack()) names.insert(device);
  EXPECT_EQ(names, (std::set<std::string>{"Fake GPU 5", "Fake GPU 7"}));

  // Selecting device 1 means this process's device 1: physical GPU 7.
  ProbeOptions o = FakeGpuOptions();
  o.devices = {1};
  engine = ProbeEngine::Start(o, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_EQ((*engine)->stack().device, "Fake GPU 7");
  // And there is no device 2 here, though the machine has eight.
  o.devices = {2};
  engine = ProbeEngine::Start(o, nullptr);
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.status().message().find("sees 2 GPUs"), std::string::npos)
      << engine.status().message();
}

TEST_F(MultiDevice, IdenticalStacksShareOneQueue) {
  SetEnv("CONVGUARD_FAKE_GPUS", "2");
  SetEnv("CONVGUARD_FAKE_SAME_STACK", "1");
  auto engine = ProbeEngine::Start(FakeGpuOptions(), store_.get());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  std::vector<ProbeJob> jobs;
  for (int64_t k = 8; k < 16; ++k) jobs.push_back({SmallProblem(k), ""});
  auto result = (*engine)->Run(jobs);
  ASSERT_TRUE(result.ok()) << result.status().ToString();

  // One stack, each job probed once in all...
  const std::map<std::string, std::string> devices = DevicesByStack();
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices.begin()->second, "Fake GPU");
  EXPECT_EQ(result->progress.total, static_cast<int64_t>(jobs.size()));
  ASSERT_EQ(result->verdicts.size(), jobs.size());
  std::vector<Verdict> stored = StoredVerdicts(devices.begin()->first);
  ASSERT_EQ(stored.size(), jobs.size());
  std::map<std::string, int> jobs_per_device;
  for (const Verdict& v : stored) {
    EXPECT_EQ(v.kind, VerdictKind::kOk) << v.problem << ": " << v.message;
    EXPECT_EQ(AttemptCount(v), 1u) << v.problem;
    jobs_per_device[v.implementation]++;
  }
  // ...by both devices' workers.
  EXPECT_EQ(jobs_per_device.size(), 2u);
  EXPECT_GE(jobs_per_device["fake-gpu:0"], 1);
  EXPECT_GE(jobs_per_device["fake-gpu:1"], 1);
}

// Fault rules that read `device` (the engine tells each worker its index in
// CONVGUARD_DEVICE_INDEX) make two identical cards two stacks: each probes every job, and
// the rule's hang happens on the device it names only.
TEST_F(MultiDevice, DeviceRulesHangOneCardAndSplitIdenticalCards) {
  const std::string rules_text = "spin when device == 1 && k == 7\n";
  auto engine = StartOnTwoIdenticalCards(rules_text);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();

  const std::vector<DeviceStack> stacks = (*engine)->stacks();
  ASSERT_EQ(stacks.size(), 2u);
  EXPECT_EQ(stacks[0].device, 0);
  EXPECT_EQ(stacks[1].device, 1);
  EXPECT_EQ(stacks[0].stack.fault_rules_digest, Fnv1a64Hex(Fnv1a64Hex(rules_text) + "@device 0"));
  EXPECT_EQ(stacks[1].stack.fault_rules_digest, Fnv1a64Hex(Fnv1a64Hex(rules_text) + "@device 1"));
  EXPECT_NE(stacks[0].stack.Id(), stacks[1].stack.Id());

  std::vector<ProbeJob> jobs;
  for (int64_t k : {7, 8, 9, 10}) jobs.push_back({SmallProblem(k), ""});
  auto result = (*engine)->Run(jobs);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->progress.total, 2 * 4);
  for (const DeviceStack& ds : stacks) {
    std::vector<Verdict> stored = StoredVerdicts(ds.stack.Id());
    ASSERT_EQ(stored.size(), 4u) << "device " << ds.device;
    for (const Verdict& v : stored) {
      const bool hangs = ds.device == 1 && OutputChannels(v.problem) == 7;
      EXPECT_EQ(v.kind, hangs ? VerdictKind::kHang : VerdictKind::kOk)
          << "device " << ds.device << " " << v.problem << ": " << v.message;
      if (!hangs) {
        EXPECT_EQ(v.implementation, "fake-gpu:" + std::to_string(ds.device));
      }
      EXPECT_TRUE(v.repro.ends_with(" --devices " + std::to_string(ds.device))) << v.repro;
    }
  }
}

// The same rule without `device`: the cards stay one stack sharing one queue, and the
// problem hangs on whichever card takes it, once.
TEST_F(MultiDevice, RulesWithoutDeviceKeepIdenticalCardsOneStack) {
  auto engine = StartOnTwoIdenticalCards("spin when k == 7\n");
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  const std::vector<DeviceStack> stacks = (*engine)->stacks();
  ASSERT_EQ(stacks.size(), 2u);
  EXPECT_EQ(stacks[0].stack.Id(), stacks[1].stack.Id());
  std::vector<ProbeJob> jobs;
  for (int64_t k : {7, 8, 9, 10}) jobs.push_back({SmallProblem(k), ""});
  auto result = (*engine)->Run(jobs);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->progress.total, 4);
  std::vector<Verdict> stored = StoredVerdicts(stacks[0].stack.Id());
  ASSERT_EQ(stored.size(), 4u);
  for (const Verdict& v : stored) {
    EXPECT_EQ(v.kind, OutputChannels(v.problem) == 7 ? VerdictKind::kHang : VerdictKind::kOk)
        << v.problem;
  }
}

// Start-up: the first worker (the one that reports how many GPUs there are) already runs
// on device 0 and serves its pool; the other devices' first workers are all spawned
// before any of them says hello, so their start-ups overlap (each takes 300 ms here).
TEST_F(MultiDevice, FirstWorkerServesDeviceZeroAndTheOthersStartTogether) {
  SetEnv("CONVGUARD_FAKE_GPUS", "3");
  SetEnv("CONVGUARD_FAKE_START_MS", "300");
  const std::string log_path = dir_ + "/starts.log";
  SetEnv("CONVGUARD_FAKE_START_LOG", log_path);
  struct Event {
    std::string what;
    int device;
    int64_t ns;
  };
  auto read_log = [&]() {
    std::vector<Event> events;
    std::ifstream in(log_path);
    Event e;
    while (in >> e.what >> e.device >> e.ns) events.push_back(e);
    std::ofstream(log_path, std::ios::trunc).flush();
    return events;
  };
  auto count = [](const std::vector<Event>& events, const std::string& what, int device) {
    return std::count_if(events.begin(), events.end(),
                         [&](const Event& e) { return e.what == what && e.device == device; });
  };

  // Without standby workers (counted in the test after this one), so that every start is
  // a pool's first worker.
  ProbeOptions no_standby = FakeGpuOptions();
  no_standby.standby_workers = 0;
  {
    auto engine = ProbeEngine::Start(no_standby, store_.get());
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  }
  std::vector<Event> events = read_log();
  ASSERT_EQ(events.size(), 6u);  // three starts, three hellos: no worker started twice
  for (int d : {0, 1, 2}) {
    EXPECT_EQ(count(events, "start", d), 1) << "device " << d;
    EXPECT_EQ(count(events, "hello", d), 1) << "device " << d;
  }
  auto time_of = [&](const std::string& what, int device) {
    for (const Event& e : events) {
      if (e.what == what && e.device == device) return e.ns;
    }
    return int64_t{-1};
  };
  // Devices 1 and 2 were both started before either said hello.
  EXPECT_LT(time_of("start", 2), time_of("hello", 1));
  EXPECT_LT(time_of("start", 1), time_of("hello", 2));

  // Device 0 not selected: the first worker is not kept, and the selected ones start.
  ProbeOptions selected = no_standby;
  selected.devices = {1, 2};
  {
    auto engine = ProbeEngine::Start(selected, store_.get());
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  }
  events = read_log();
  EXPECT_EQ(count(events, "start", 0), 1);  // the first worker, which sees every device
  EXPECT_EQ(count(events, "start", 1), 1);
  EXPECT_EQ(count(events, "start", 2), 1);
}

// A worker killed for a hang is replaced by a standby worker that started while the first
// attempt ran: the confirmation's worker said hello before the first attempt was killed,
// so the swap waits for no start-up (here 600 ms, as importing torch takes seconds). With
// no standby, the confirmation's worker starts only after the kill.
TEST_F(MultiDevice, AStandbyWorkerReplacesAKilledOneWithoutWaitingForAStart) {
  SetEnv("CONVGUARD_FAKE_GPUS", "1");
  SetEnv("CONVGUARD_FAKE_HANG_DEVICE", "0");
  SetEnv("CONVGUARD_FAKE_HANG_K", "7");
  SetEnv("CONVGUARD_FAKE_START_MS", "600");
  const std::string log_path = dir_ + "/standby.log";
  SetEnv("CONVGUARD_FAKE_START_LOG", log_path);
  for (int standby : {1, 0}) {
    std::ofstream(log_path, std::ios::trunc).flush();
    ProbeOptions o = FakeGpuOptions();
    o.standby_workers = standby;
    o.redo = true;  // the second round probes the same problem again
    int64_t first_kill_ns = -1;
    ProbeCallbacks callbacks;
    callbacks.on_event = [&](const std::string& e) {
      if (first_kill_ns < 0 && e.find("missed the run-stage deadline") != std::string::npos)
        first_kill_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    };
    auto engine = ProbeEngine::Start(o, store_.get(), callbacks);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    // k8 first: the hang is then not its worker's first probe, so it is confirmed in a
    // fresh worker (a first probe would be confirmed in place, with no kill before).
    auto result = (*engine)->Run({{SmallProblem(8), ""}, {SmallProblem(7), ""}});
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    ASSERT_EQ(result->verdicts.size(), 2u);
    EXPECT_EQ(result->verdicts[1].kind, VerdictKind::kHang) << result->verdicts[1].message;
    ASSERT_GT(first_kill_ns, 0);
    // The hellos in order: the first worker's, then the one that confirmed the hang.
    std::vector<int64_t> hellos;
    std::ifstream in(log_path);
    std::string what;
    int device = 0;
    int64_t ns = 0;
    while (in >> what >> device >> ns)
      if (what == "hello") hellos.push_back(ns);
    ASSERT_GE(hellos.size(), 2u) << "standby " << standby;
    std::sort(hellos.begin(), hellos.end());
    if (standby == 1) {
      EXPECT_LT(hellos[1], first_kill_ns) << "the standby was not up before the kill";
    } else {
      EXPECT_GT(hellos[1], first_kill_ns) << "a worker started before it was needed";
    }
  }
}

// A worker whose start takes longer than the time between kills (a PyTorch worker on a
// GPU: about 7 s against 4 s per HANG) finds one standby still starting at every swap.
// Each such wait adds a standby to the pool, up to standby_workers_max; a count the user
// fixed (max = standby_workers) stays as it is.
TEST_F(MultiDevice, TheStandbyPoolGrowsWhenASwapWaitsForAStart) {
  SetEnv("CONVGUARD_FAKE_GPUS", "1");
  SetEnv("CONVGUARD_FAKE_HANG_DEVICE", "0");
  SetEnv("CONVGUARD_FAKE_HANG_K", "7");
  SetEnv("CONVGUARD_FAKE_START_MS", "1500");
  // k8 first, then three problems that hang: each kill needs a started worker.
  std::vector<ProbeJob> jobs = {{SmallProblem(8), ""}};
  for (int c : {5, 6, 7}) {
    StatusOr<Problem> p = ParseProblem("n1_c" + std::to_string(c) + "_h8_w8_k7_r3_s3_p1");
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    jobs.push_back({*p, ""});
  }
  for (const int max : {3, 1}) {
    ProbeOptions o = FakeGpuOptions();
    o.standby_workers = 1;
    o.standby_workers_max = max;
    o.redo = true;
    std::vector<int> targets;  // the pool's standby count after each growth
    ProbeCallbacks callbacks;
    callbacks.on_event = [&](const std::string& e) {
      const std::string said = "was still starting when it was needed";
      if (e.find(said) == std::string::npos) return;
      const size_t at = e.find("keeping ");
      ASSERT_NE(at, std::string::npos) << e;
      targets.push_back(std::atoi(e.c_str() + at + 8));
      EXPECT_NE(e.find("standby workers for device 0 from now on"), std::string::npos) << e;
    };
    auto engine = ProbeEngine::Start(o, store_.get(), callbacks);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    auto result = (*engine)->Run(jobs);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    ASSERT_EQ(result->verdicts.size(), jobs.size());
    EXPECT_EQ(result->verdicts[0].kind, VerdictKind::kOk) << result->verdicts[0].message;
    for (size_t i = 1; i < jobs.size(); ++i) {
      EXPECT_EQ(result->verdicts[i].kind, VerdictKind::kHang) << result->verdicts[i].message;
    }
    if (max == 1) {
      EXPECT_TRUE(targets.empty()) << "a fixed standby count grew to " << targets.back();
    } else {
      // The first swap after a kill already waits (its standby was spawned when the first
      // worker had calibrated, 1.5 s of start-up before it can serve); each wait adds one,
      // never past the maximum.
      ASSERT_FALSE(targets.empty()) << "no swap waited for a 1.5 s start";
      for (size_t i = 0; i < targets.size(); ++i) EXPECT_EQ(targets[i], 2 + static_cast<int>(i));
      EXPECT_LE(targets.back(), max);
    }
  }
}

// Through the real binary. `convguard sweep` has no option naming a worker executable, so
// fake GPUs cannot reach it; what can be checked there is that a device selection for a
// backend without GPUs is refused before anything runs.
TEST_F(MultiDevice, SweepRefusesDevicesForACpuBackend) {
  testing_support::CliResult r =
      testing_support::RunConvguard({"sweep", "--backend", "reference", "--devices", "0",
                                     "--no-store", "--grid", "c=4 k=8 hw=8 r=3 p=same"},
                                    60.0);
  ASSERT_TRUE(r.exited) << r.err;
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("sees no GPU"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("OK"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace convguard
