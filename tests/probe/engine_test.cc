// The probe engine with real worker processes, real faults and real kills.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "convguard/probe.h"
#include "convguard/store.h"
#include "convguard/text_forms.h"
#include "support/cli_runner.h"

namespace convguard {
namespace {

using testing_support::SourceDir;

Problem SmallProblem(int64_t c, int64_t k) {
  StatusOr<Problem> p =
      ParseProblem("n1_c" + std::to_string(c) + "_h8_w8_k" + std::to_string(k) + "_r3_s3_p1");
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return *p;
}

ProbeOptions FaultOptions() {
  ProbeOptions o;
  o.backend = "reference";
  o.fault_rules_path = SourceDir() + "/tests/inputs/faults.rules";
  o.worker_executable = testing_support::ConvguardBin();
  o.workers_per_device = 2;
  return o;
}

std::map<int64_t, Verdict> ByOutputChannels(const std::vector<Verdict>& verdicts) {
  std::map<int64_t, Verdict> by_k;
  for (const Verdict& v : verdicts) {
    StatusOr<Problem> p = ParseProblem(v.problem, TextForm::kCanonical);
    EXPECT_TRUE(p.ok());
    by_k[p->k] = v;
  }
  return by_k;
}

TEST(ProbeEngine, EveryFaultKindGivesItsVerdict) {
  std::vector<ProbeJob> jobs;
  for (int64_t k : {3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 16})
    jobs.push_back({SmallProblem(4, k), ""});
  auto engine = ProbeEngine::Start(FaultOptions(), nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_TRUE((*engine)->stack().is_emulated());
  auto result = (*engine)->Run(jobs);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->verdicts.size(), jobs.size());
  auto by_k = ByOutputChannels(result->verdicts);

  // The first job of each of the two workers hangs: each is confirmed in place, in one
  // attempt (the fresh-worker confirmation: RequestsWrittenAheadAreTakenBack... below).
  EXPECT_EQ(by_k[3].kind, VerdictKind::kHang) << by_k[3].message;  // spin
  EXPECT_EQ(by_k[3].attempts, 1);
  EXPECT_NE(by_k[3].message.find("confirmed in place"), std::string::npos) << by_k[3].message;
  EXPECT_EQ(by_k[5].kind, VerdictKind::kHang) << by_k[5].message;  // blocked in a syscall
  EXPECT_EQ(by_k[5].attempts, 1);
  EXPECT_EQ(by_k[6].kind, VerdictKind::kCrash);
  EXPECT_EQ(by_k[6].crash_signal, SIGSEGV) << by_k[6].message;
  EXPECT_EQ(by_k[7].kind, VerdictKind::kCrash);
  EXPECT_EQ(by_k[7].crash_signal, SIGABRT) << by_k[7].message;
  EXPECT_EQ(by_k[9].kind, VerdictKind::kWrong) << by_k[9].message;
  EXPECT_GT(by_k[9].mismatches, 0);
  EXPECT_EQ(by_k[10].kind, VerdictKind::kError);
  EXPECT_NE(by_k[10].message.find("injected backend failure"), std::string::npos)
      << by_k[10].message;
  // Two seconds is slow, never a hang: the confirmation deadline outlasts it.
  EXPECT_EQ(by_k[11].kind, VerdictKind::kSlow) << by_k[11].message;
  EXPECT_GE(by_k[11].time_ms_median, 500.0);
  EXPECT_GE(by_k[11].elapsed_ms, 2000.0);  // it really took two seconds
  EXPECT_EQ(by_k[12].kind, VerdictKind::kOom) << by_k[12].message;
  EXPECT_EQ(by_k[13].kind, VerdictKind::kUnsupported);
  EXPECT_NE(by_k[13].message.find("no kernel for this shape"), std::string::npos);
  EXPECT_EQ(by_k[14].kind, VerdictKind::kCrash);
  EXPECT_EQ(by_k[14].crash_signal, 0);
  EXPECT_EQ(by_k[14].exit_code, 42);
  EXPECT_EQ(by_k[16].kind, VerdictKind::kOk) << by_k[16].message;
  EXPECT_GT(by_k[16].time_ms_median, 0.0);

  for (const Verdict& v : result->verdicts) {
    EXPECT_TRUE(v.emulated);
    EXPECT_FALSE(v.stack_id.empty());
    EXPECT_NE(v.repro.find("convguard probe " + v.problem), std::string::npos) << v.repro;
    EXPECT_NE(v.repro.find("--inject"), std::string::npos);
    EXPECT_FALSE(v.recorded_at.empty());
    EXPECT_EQ(v.tool_version, CONVGUARD_VERSION);
  }
}

// A caller that learns enough mid-run (the planner) stops it: with one worker the order
// is fixed. The job marked always_decide (k 3, spins) is confirmed at once; the other
// hanging job's (k 5, blocks) confirmation waits behind the first attempts and is dropped
// when the OK job (k 4) says enough; the jobs after it never start. Nothing is recorded
// for a dropped job, and its claim is released.
TEST(ProbeEngine, StopWhenEnoughDropsWhatHasNotStartedAndDecidesWhatMust) {
  ProbeOptions o = FaultOptions();
  o.workers_per_device = 1;
  o.deadlines.confirm_floor_ms = 700;
  const std::string db = testing_support::MakeTempDir("stop-when") + "/v.sqlite";
  StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(db);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto engine = ProbeEngine::Start(o, store->get());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  std::vector<ProbeJob> jobs = {{SmallProblem(4, 3), "", true},
                                {SmallProblem(4, 5), ""},
                                {SmallProblem(4, 4), ""},
                                {SmallProblem(4, 8), ""},
                                {SmallProblem(4, 16), ""}};
  std::vector<int64_t> asked;
  auto result = (*engine)->Run(jobs, [&](const Verdict& v) {
    asked.push_back(ByOutputChannels({v}).begin()->first);
    return v.kind == VerdictKind::kOk;
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_TRUE(result->stopped_early);
  const std::map<int64_t, Verdict> by_k = ByOutputChannels(result->verdicts);
  ASSERT_EQ(by_k.size(), 2u) << ::testing::PrintToString(asked);
  EXPECT_EQ(by_k.at(3).kind, VerdictKind::kHang);
  EXPECT_EQ(by_k.at(4).kind, VerdictKind::kOk);
  EXPECT_EQ(asked, (std::vector<int64_t>{3, 4}));  // k 3's confirmation came first
  EXPECT_EQ(result->dropped, 3);                   // k 5's confirmation, k 8 and k 16
  StatusOr<std::vector<Verdict>> stored = (*store)->ListVerdicts(VerdictFilter{});
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size(), 2u);
  // k 5 was claimed by its first attempt; the claim is gone, so another owner may take it.
  StatusOr<ClaimResult> claim =
      (*store)->Claim({(*engine)->stack().Id(), ToCanonical(SmallProblem(4, 5)), "direct"},
                      "someone else", false, 3600.0);
  ASSERT_TRUE(claim.ok());
  EXPECT_EQ(*claim, ClaimResult::kClaimed);
  ASSERT_TRUE((*store)->Release("someone else", std::nullopt).ok());
  // Without stop_when, a run decides everything again (k 5 confirmed now, at once).
  auto all = (*engine)->Run(jobs);
  ASSERT_TRUE(all.ok());
  EXPECT_FALSE(all->stopped_early);
  EXPECT_EQ(all->verdicts.size() + all->known.size(), 5u);
}

// A worker's first job that overruns its first deadline is confirmed in place: the
// worker is fresh for it, so it is waited for up to the confirmation deadline instead of
// being killed and run again; a later job's overrun is confirmed in a fresh worker.
TEST(ProbeEngine, AWorkersFirstProbeIsConfirmedInPlace) {
  ProbeOptions o = FaultOptions();
  o.workers_per_device = 1;
  // k 11: slow(500), 4 runs, 2 s; k 3 spins.
  auto engine = ProbeEngine::Start(o, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto result = (*engine)->Run({{SmallProblem(4, 11), ""}, {SmallProblem(4, 3), ""}});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  auto by_k = ByOutputChannels(result->verdicts);
  ASSERT_EQ(by_k.size(), 2u);
  EXPECT_EQ(by_k[11].kind, VerdictKind::kSlow) << by_k[11].message;
  EXPECT_EQ(by_k[11].attempts, 1);
  EXPECT_GE(by_k[11].elapsed_ms, 2000.0);
  EXPECT_NE(by_k[11].message.find("finished under the confirmation deadline in the same worker"),
            std::string::npos)
      << by_k[11].message;
  EXPECT_EQ(by_k[3].kind, VerdictKind::kHang) << by_k[3].message;
  EXPECT_EQ(by_k[3].attempts, 2);
  EXPECT_NE(by_k[3].message.find("the confirmation in a fresh worker"), std::string::npos)
      << by_k[3].message;
}

// One worker, the next request written while each probe runs (the default), every job
// behind a fault that kills or loses the worker: the request sent ahead is taken back
// unanswered and probed in the next worker, so every job gets its own verdict with the
// attempts it would get one request at a time (the OK jobs: exactly one), and a hang in a
// request that was sent ahead is still caught by its deadline.
TEST(ProbeEngine, RequestsWrittenAheadAreTakenBackWhenTheirWorkerIsLost) {
  // k: 16 OK, 3 spins, 6 SIGSEGV, 7 abort, 14 exit(42), 5 blocks; c tells the OK jobs apart.
  const std::vector<std::pair<int64_t, int64_t>> order = {{4, 16}, {4, 3}, {5, 16}, {4, 6},
                                                          {6, 16}, {4, 7}, {7, 16}, {4, 14},
                                                          {8, 16}, {4, 5}, {9, 16}};
  std::vector<ProbeJob> jobs;
  for (const auto& [c, k] : order) jobs.push_back({SmallProblem(c, k), ""});
  std::map<bool, std::map<std::string, std::pair<VerdictKind, int>>> seen;
  for (const bool ahead : {true, false}) {
    ProbeOptions o = FaultOptions();
    o.workers_per_device = 1;
    o.standby_workers = 0;
    o.requests_ahead = ahead ? 2 : 0;
    o.deadlines.confirm_floor_ms = 700;
    auto engine = ProbeEngine::Start(o, nullptr);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    auto result = (*engine)->Run(jobs);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    ASSERT_EQ(result->verdicts.size(), jobs.size()) << "ahead=" << ahead;
    for (const Verdict& v : result->verdicts) seen[ahead][v.problem] = {v.kind, v.attempts};
  }
  for (const auto& [c, k] : order) {
    const std::string p = ToCanonical(SmallProblem(c, k));
    SCOPED_TRACE(p);
    ASSERT_EQ(seen[true].count(p), 1u);
    EXPECT_EQ(seen[true][p], seen[false][p]);
    const auto [kind, attempts] = seen[true][p];
    if (k == 16) {
      EXPECT_EQ(kind, VerdictKind::kOk);
      EXPECT_EQ(attempts, 1);
    } else if (k == 3 || k == 5) {
      EXPECT_EQ(kind, VerdictKind::kHang);
      EXPECT_EQ(attempts, 2);
    } else {
      EXPECT_EQ(kind, VerdictKind::kCrash);
    }
  }
}

TEST(ProbeEngine, HangOfAMillisecondProblemIsDecidedQuickly) {
  ProbeOptions o = FaultOptions();
  o.workers_per_device = 1;
  o.deadlines.confirm_floor_ms = 700;
  auto engine = ProbeEngine::Start(o, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  const auto start = std::chrono::steady_clock::now();
  auto result = (*engine)->Run({{SmallProblem(4, 3), ""}});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->verdicts.size(), 1u);
  EXPECT_EQ(result->verdicts[0].kind, VerdictKind::kHang);
  // floor (250 ms) + a fresh worker + confirmation (700 ms); generous bound for a loaded CI.
  EXPECT_LT(seconds, 5.0);
}

TEST(ProbeEngine, RepliesAccountForTheWorkersOwnTimeAndHangsDoNot) {
  ProbeOptions o = FaultOptions();
  o.workers_per_device = 1;
  o.deadlines.confirm_floor_ms = 700;
  auto engine = ProbeEngine::Start(o, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  // One job per Run: nothing is written ahead, so every reply has its own round trip.
  // OK and WRONG (k = 9) reply; a hang (k = 3) never does, nor its confirmation.
  for (int64_t k : {4, 9, 3}) {
    SCOPED_TRACE("k = " + std::to_string(k));
    auto result = (*engine)->Run({{SmallProblem(4, k), ""}});
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    ASSERT_EQ(result->verdicts.size(), 1u);
    const WorkerTime& w = result->worker_time;
    if (k == 3) {
      EXPECT_EQ(result->verdicts[0].kind, VerdictKind::kHang);
      EXPECT_EQ(w.replies, 0);
      EXPECT_EQ(w.round_trip_ms, 0.0);
      continue;
    }
    EXPECT_EQ(w.replies, 1);
    EXPECT_GT(w.prep_ms, 0.0);
    EXPECT_GT(w.run_ms, 0.0);
    EXPECT_GT(w.check_ms, 0.0);
    // The stages lie inside the worker's whole time, which lies inside the round trip.
    EXPECT_LE(w.prep_ms + w.run_ms + w.check_ms, w.worker_total_ms);
    EXPECT_LE(w.worker_total_ms, w.round_trip_ms);
  }
}

TEST(ProbeEngine, ProtocolGarbageAndDeathMidReplyAreVerdictsAndTheRunGoesOn) {
  const std::string fake = testing_support::MisbehavingWorkerBin();
  ProbeOptions o;
  o.backend = "misbehaving";
  o.worker_executable = fake;
  o.workers_per_device = 1;
  auto engine = ProbeEngine::Start(o, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  std::vector<ProbeJob> jobs;
  for (int64_t c : {1, 2, 3, 4}) jobs.push_back({SmallProblem(c, 8), "direct"});
  auto result = (*engine)->Run(jobs);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->verdicts.size(), 4u);
  std::map<int64_t, Verdict> by_c;
  for (const Verdict& v : result->verdicts) by_c[ParseProblem(v.problem)->c] = v;
  EXPECT_EQ(by_c[1].kind, VerdictKind::kOk);  // junk before a proper reply is noted, not fatal
  EXPECT_NE(by_c[1].message.find("not protocol frames"), std::string::npos) << by_c[1].message;
  EXPECT_EQ(by_c[2].kind, VerdictKind::kCrash);
  EXPECT_NE(by_c[2].message.find("middle of a reply"), std::string::npos) << by_c[2].message;
  EXPECT_EQ(by_c[3].kind, VerdictKind::kCrash);
  EXPECT_EQ(by_c[3].exit_code, 1);
  EXPECT_EQ(by_c[4].kind, VerdictKind::kOk);  // the run went on with a fresh worker
}

// A real worker reads CONVGUARD_DEVICE_INDEX (set by the engine for each GPU's pool; here
// inherited, since a CPU backend gets no per-device pools) as a fault rule's `device`.
TEST(ProbeEngine, RealWorkersReadTheirDeviceIndexForFaultRules) {
  const std::string rules_path = ::testing::TempDir() + "/convguard_device_index.rules";
  std::ofstream(rules_path) << "error(\"bad card\") when device == 1 && k == 5\n";
  ProbeOptions o = FaultOptions();
  o.fault_rules_path = rules_path;
  o.workers_per_device = 1;
  struct Restore {
    std::optional<std::string> saved;
    Restore() {
      if (const char* v = std::getenv("CONVGUARD_DEVICE_INDEX")) saved = v;
    }
    ~Restore() {
      if (saved)
        ::setenv("CONVGUARD_DEVICE_INDEX", saved->c_str(), 1);
      else
        ::unsetenv("CONVGUARD_DEVICE_INDEX");
    }
  } restore;

  std::map<std::string, VerdictKind> kind_by_index;
  std::set<std::string> stack_ids;
  for (const char* index : {"0", "1"}) {
    ::setenv("CONVGUARD_DEVICE_INDEX", index, 1);
    auto engine = ProbeEngine::Start(o, nullptr);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    stack_ids.insert((*engine)->stack().Id());
    auto result = (*engine)->Run({{SmallProblem(4, 5), ""}});
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    ASSERT_EQ(result->verdicts.size(), 1u);
    kind_by_index[index] = result->verdicts[0].kind;
    if (std::string(index) == "1") {
      EXPECT_NE(result->verdicts[0].message.find("bad card"), std::string::npos)
          << result->verdicts[0].message;
    }
  }
  EXPECT_EQ(kind_by_index["0"], VerdictKind::kOk);
  EXPECT_EQ(kind_by_index["1"], VerdictKind::kError);
  EXPECT_EQ(stack_ids.size(), 2u);  // the rules read `device`: each device its own stack

  ::setenv("CONVGUARD_DEVICE_INDEX", "one", 1);
  auto bad = ProbeEngine::Start(o, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("CONVGUARD_DEVICE_INDEX='one' is not a device index"),
            std::string::npos)
      << bad.status().message();
}

TEST(ProbeEngine, UnknownBackendAndMissingWorkerAreErrors) {
  ProbeOptions o;
  o.backend = "reference";
  o.worker_executable = "/nonexistent/convguard";
  auto engine = ProbeEngine::Start(o, nullptr);
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.status().message().find("/nonexistent/convguard"), std::string::npos)
      << engine.status().message();
  o.worker_executable = testing_support::ConvguardBin();
  o.backend = "no-such-backend";
  engine = ProbeEngine::Start(o, nullptr);
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.status().message().find("no-such-backend"), std::string::npos)
      << engine.status().message();
}

// The stack-identity service reads a stack from a worker's hello, records it, and asks
// once per process: a second question is answered without a worker (here, after the
// worker executable is gone).
TEST(StackIdentity, AWorkerSaysTheStackOnceAndTheStoreRecordsIt) {
  const std::string dir = testing_support::MakeTempDir("identity");
  const std::string worker = dir + "/convguard-copy";
  std::filesystem::copy_file(testing_support::ConvguardBin(), worker);
  std::filesystem::permissions(worker, std::filesystem::perms::owner_all);
  StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir + "/v.sqlite");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ProbeOptions o;
  o.backend = "emulated-rdna1";
  o.worker_executable = worker;
  StatusOr<std::vector<DeviceStack>> first = IdentifyStacks(o, store->get());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].device, -1);  // a CPU backend
  EXPECT_TRUE((*first)[0].stack.is_emulated());
  StatusOr<std::optional<StackFingerprint>> recorded = (*store)->GetStack((*first)[0].stack.Id());
  ASSERT_TRUE(recorded.ok());
  EXPECT_TRUE(recorded->has_value());

  std::filesystem::remove(worker);
  StatusOr<std::vector<DeviceStack>> again = IdentifyStacks(o, nullptr);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)[0].stack.Id(), (*first)[0].stack.Id());

  // An engine's workers tell the same stack.
  o.worker_executable = testing_support::ConvguardBin();
  auto engine = ProbeEngine::Start(o, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_EQ((*engine)->stack().Id(), (*first)[0].stack.Id());

  o.backend = "no-such-backend";
  StatusOr<std::vector<DeviceStack>> unknown = IdentifyStacks(o, nullptr);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("no-such-backend"), std::string::npos)
      << unknown.status().message();
}

// A store that takes everything but verdicts for problems with k == 5 (and, when asked,
// claims of problems with k == `refuse_claim_k`): a real SQLite store behind it, so
// claims, stacks and attempts behave as in a sweep.
class RefusingStore final : public Store {
 public:
  explicit RefusingStore(std::unique_ptr<Store> inner, int64_t refuse_claim_k = -1)
      : inner_(std::move(inner)), refuse_claim_k_(refuse_claim_k) {}
  Status PutStack(const StackFingerprint& s) override { return inner_->PutStack(s); }
  StatusOr<std::optional<StackFingerprint>> GetStack(const std::string& id) override {
    return inner_->GetStack(id);
  }
  StatusOr<std::vector<StackFingerprint>> ListStacks() override { return inner_->ListStacks(); }
  Status PutVerdict(const Verdict& v) override {
    StatusOr<Problem> p = ParseProblem(v.problem);
    if (p.ok() && p->k == 5) return Status::IOError("disk full (refused by the test)");
    return inner_->PutVerdict(v);
  }
  StatusOr<std::optional<Verdict>> GetVerdict(const VerdictKey& k) override {
    return inner_->GetVerdict(k);
  }
  StatusOr<std::vector<Verdict>> ListVerdicts(const VerdictFilter& f) override {
    return inner_->ListVerdicts(f);
  }
  Status AddAttempt(const Attempt& a) override { return inner_->AddAttempt(a); }
  StatusOr<std::vector<Attempt>> ListAttempts(const VerdictKey& k) override {
    return inner_->ListAttempts(k);
  }
  StatusOr<ClaimResult> Claim(const VerdictKey& k, const std::string& owner, bool redo,
                              double stale) override {
    StatusOr<Problem> p = ParseProblem(k.problem);
    if (p.ok() && p->k == refuse_claim_k_) {
      return Status::IOError("server gone (refused by the test)");
    }
    return inner_->Claim(k, owner, redo, stale);
  }
  Status Release(const std::string& owner, const std::optional<VerdictKey>& k) override {
    return inner_->Release(owner, k);
  }
  StatusOr<int64_t> AddSequenceVerdict(const SequenceVerdict& v) override {
    return inner_->AddSequenceVerdict(v);
  }
  StatusOr<std::vector<SequenceVerdict>> ListSequenceVerdicts(
      const std::optional<std::string>& stack_id) override {
    return inner_->ListSequenceVerdicts(stack_id);
  }
  StatusOr<StackRecords> ReadStackRecords(const std::string& id) override {
    return inner_->ReadStackRecords(id);
  }
  StatusOr<MergeReport> MergeStackRecords(const StackRecords& r, const MergeOptions& o) override {
    return inner_->MergeStackRecords(r, o);
  }
  StatusOr<std::string> ExportJsonLines(const VerdictFilter& f) override {
    return inner_->ExportJsonLines(f);
  }
  StatusOr<ImportReport> ImportJsonLines(const std::string& text, bool replace) override {
    return inner_->ImportJsonLines(text, replace);
  }

 private:
  std::unique_ptr<Store> inner_;
  int64_t refuse_claim_k_;
};

// A verdict the store does not take ends the run with an error that names it; it is
// never dropped with only a log line.
TEST(ProbeEngine, AVerdictTheStoreRefusesIsAnErrorTheCallerSees) {
  const std::string path = testing_support::MakeTempDir("engine-refusing") + "/v.sqlite";
  StatusOr<std::unique_ptr<Store>> sqlite = OpenSqliteStore(path);
  ASSERT_TRUE(sqlite.ok()) << sqlite.status().ToString();
  RefusingStore store(std::move(sqlite).value());
  ProbeOptions o;
  o.backend = "reference";
  o.worker_executable = testing_support::ConvguardBin();
  o.workers_per_device = 1;
  auto engine = ProbeEngine::Start(o, &store);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto result = (*engine)->Run(
      {{SmallProblem(4, 4), ""}, {SmallProblem(4, 5), ""}, {SmallProblem(4, 6), ""}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kIOError) << result.status().ToString();
  EXPECT_NE(result.status().message().find("OK verdict of n1_c4_h8_w8_k5"), std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("could not be stored"), std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("disk full"), std::string::npos)
      << result.status().message();
  // The run stopped there and released its claims: a second run with a store that takes
  // everything finds the refused problem unknown and probes it.
  StatusOr<std::unique_ptr<Store>> reopened = OpenSqliteStore(path);
  ASSERT_TRUE(reopened.ok());
  VerdictFilter all;
  StatusOr<std::vector<Verdict>> stored = (*reopened)->ListVerdicts(all);
  ASSERT_TRUE(stored.ok());
  for (const Verdict& v : *stored)
    EXPECT_EQ(v.problem.find("_k5_"), std::string::npos) << v.problem;
  auto engine2 = ProbeEngine::Start(o, reopened->get());
  ASSERT_TRUE(engine2.ok()) << engine2.status().ToString();
  auto again = (*engine2)->Run({{SmallProblem(4, 5), ""}});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_EQ(again->verdicts.size(), 1u);
  EXPECT_EQ(again->verdicts[0].kind, VerdictKind::kOk);
}

// A claim the store cannot answer (its server gone for good) stops the run as a refused
// verdict does: an error naming the problem, the probe in flight killed, and every claim
// of the run released before Run returns.
TEST(ProbeEngine, AClaimTheStoreCannotAnswerStopsTheRunAndReleasesItsClaims) {
  const std::string path = testing_support::MakeTempDir("engine-claim-refused") + "/v.sqlite";
  StatusOr<std::unique_ptr<Store>> sqlite = OpenSqliteStore(path);
  ASSERT_TRUE(sqlite.ok()) << sqlite.status().ToString();
  RefusingStore store(std::move(sqlite).value(), /*refuse_claim_k=*/6);
  ProbeOptions o;
  o.backend = "reference";
  o.worker_executable = testing_support::ConvguardBin();
  o.workers_per_device = 1;
  auto engine = ProbeEngine::Start(o, &store);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  // k 4 is claimed and sent; k 6 is claimed while it runs (a request written ahead).
  auto result = (*engine)->Run({{SmallProblem(4, 4), ""}, {SmallProblem(4, 6), ""}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kIOError) << result.status().ToString();
  EXPECT_NE(result.status().message().find("could not claim n1_c4_h8_w8_k6"), std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("server gone"), std::string::npos)
      << result.status().message();
  // The engine is still alive, and holds nothing: another owner gets every key.
  StatusOr<std::unique_ptr<Store>> other = OpenSqliteStore(path);
  ASSERT_TRUE(other.ok());
  const double kNever = std::numeric_limits<double>::infinity();
  StatusOr<ClaimResult> k4 =
      (*other)->Claim({(*engine)->stack().Id(), ToCanonical(SmallProblem(4, 4)), "direct"},
                      "other:1:1", false, kNever);
  ASSERT_TRUE(k4.ok()) << k4.status().ToString();
  EXPECT_NE(*k4, ClaimResult::kHeldByOther);
}

}  // namespace
}  // namespace convguard

namespace convguard {
namespace {

TEST(ClaimOwner, ThisProcessIsAliveAndAGoneOneIsNot) {
  StatusOr<std::string> me = ThisProcessClaimOwner();
  ASSERT_TRUE(me.ok()) << me.status().ToString();
  const OwnerLiveness alive = LocalClaimOwnerLiveness();
  EXPECT_TRUE(alive(*me));
  // The same pid with another start time is a recycled pid: not the owner.
  const size_t last = me->rfind(':');
  const std::string recycled = me->substr(0, last + 1) + "1";
  EXPECT_FALSE(alive(recycled));
  // Owners on other hosts, and strings that are not owners, cannot be checked from here.
  EXPECT_TRUE(alive("some-other-host:1:1"));
  EXPECT_TRUE(alive("not an owner"));
}

}  // namespace
}  // namespace convguard

namespace convguard {
namespace {

int OpenDescriptors() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// SIGKILLs every worker of `needle` that has been running `problem_marker` for a while,
// `times` times, from a thread: an outside hand, as the kernel's OOM killer would be.
void KillWorkersRunning(const std::string& needle, int times, std::atomic<int>& killed) {
  for (int i = 0; i < 400 && killed < times; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (int pid : testing_support::FindProcesses(needle).live) {
      if (::kill(pid, SIGKILL) == 0) {
        ++killed;
        std::this_thread::sleep_for(std::chrono::milliseconds(600));  // the next attempt
        break;
      }
    }
  }
}

ProbeOptions SlowOptions(const std::string& rules) {
  ProbeOptions o;
  o.backend = "reference";
  o.fault_rules_path = rules;
  o.worker_executable = testing_support::ConvguardBin();
  o.workers_per_device = 1;
  o.standby_workers = 0;  // only the worker that probes is there to be killed
  o.warmup = 0;
  o.repeats = 1;
  o.deadlines.floor_ms = 10000.0;  // the 1.5 s of slow(1500) is far inside every deadline
  return o;
}

// A worker SIGKILLed by someone else says nothing about its problem: the probe runs again
// in a fresh worker. Only a probe whose workers keep being killed (a 4th time) gets the
// death as its verdict. Nothing leaks: the engine's descriptors are back where they were.
TEST(ProbeEngine, AWorkerKilledFromOutsideIsProbedAgainAndOnlyAPersistentKillDecides) {
  const std::string dir = testing_support::MakeTempDir("outside-kill");
  const std::string rules =
      testing_support::WriteFile(dir + "/slow-marker.rules", "slow(1500) when k == 5\n");
  const std::string needle = "worker --backend reference --inject " + rules;
  const int fds_before = OpenDescriptors();
  {
    auto engine = ProbeEngine::Start(SlowOptions(rules), nullptr);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    std::atomic<int> killed{0};
    std::thread killer(KillWorkersRunning, needle, 1, std::ref(killed));
    auto once = (*engine)->Run({ProbeJob{SmallProblem(4, 5), ""}});
    killer.join();
    ASSERT_TRUE(once.ok()) << once.status().ToString();
    ASSERT_EQ(killed.load(), 1);
    ASSERT_EQ(once->verdicts.size(), 1u);
    const Verdict& v = once->verdicts.front();
    EXPECT_EQ(v.kind, VerdictKind::kOk) << v.message;
    EXPECT_EQ(v.attempts, 2);
    EXPECT_NE(v.message.find("SIGKILLed from outside 1 time and the probe run again"),
              std::string::npos)
        << v.message;

    std::atomic<int> killed_again{0};
    std::thread persistent(KillWorkersRunning, needle, 4, std::ref(killed_again));
    auto four = (*engine)->Run({ProbeJob{SmallProblem(6, 5), ""}});
    persistent.join();
    ASSERT_TRUE(four.ok()) << four.status().ToString();
    ASSERT_EQ(four->verdicts.size(), 1u);
    const Verdict& crash = four->verdicts.front();
    EXPECT_EQ(crash.kind, VerdictKind::kCrash) << crash.message;
    EXPECT_EQ(crash.crash_signal, SIGKILL) << crash.message;
    EXPECT_EQ(crash.attempts, 4);
    EXPECT_NE(crash.message.find("SIGKILLed from outside 3 times"), std::string::npos)
        << crash.message;
  }
  EXPECT_EQ(OpenDescriptors(), fds_before);
  EXPECT_TRUE(testing_support::FindProcesses(needle).live.empty());
}

}  // namespace
}  // namespace convguard

namespace convguard {
namespace {

// Bounded workers: a problem too large for the worker's address-space cap is an OOM
// verdict that names the cap (a small one is OK under the same cap); a worker that uses
// up its CPU-time cap is ended by SIGXCPU and the CRASH verdict says which cap it was.
TEST(ProbeEngine, WorkerCapsTurnRunawaysIntoVerdictsThatNameTheCap) {
  const std::string dir = testing_support::MakeTempDir("caps");
  const std::string rules =
      testing_support::WriteFile(dir + "/caps-marker.rules", "spin when k == 9\n");
  ProbeOptions o;
  o.backend = "reference";
  o.fault_rules_path = rules;
  o.worker_executable = testing_support::ConvguardBin();
  o.workers_per_device = 1;
  o.worker_memory_limit_bytes = int64_t{256} << 20;
  o.worker_cpu_seconds = 1;
  o.deadlines.floor_ms = 30000.0;  // the CPU cap, not the watchdog, ends the spin
  auto engine = ProbeEngine::Start(o, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  StatusOr<Problem> big = ParseProblem("n1_c64_h512_w512_k64_r3_s3_p1");  // ~400 MiB of tensors
  ASSERT_TRUE(big.ok());
  auto result = (*engine)->Run(
      {ProbeJob{*big, ""}, ProbeJob{SmallProblem(4, 4), ""}, ProbeJob{SmallProblem(4, 9), ""}});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  std::map<int64_t, Verdict> by_k = ByOutputChannels(result->verdicts);
  ASSERT_EQ(by_k.size(), 3u);
  EXPECT_EQ(by_k[64].kind, VerdictKind::kOom) << by_k[64].message;
  EXPECT_NE(by_k[64].message.find("capped at 256 MiB (RLIMIT_AS, --worker-memory)"),
            std::string::npos)
      << by_k[64].message;
  EXPECT_EQ(by_k[4].kind, VerdictKind::kOk) << by_k[4].message;
  EXPECT_EQ(by_k[9].kind, VerdictKind::kCrash) << by_k[9].message;
  EXPECT_EQ(by_k[9].crash_signal, SIGXCPU) << by_k[9].message;
  EXPECT_NE(by_k[9].message.find("CPU time cap of 1 s (RLIMIT_CPU, --worker-cpu-seconds)"),
            std::string::npos)
      << by_k[9].message;
}

}  // namespace
}  // namespace convguard
