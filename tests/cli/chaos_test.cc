// The chaos sweep: two thousand problems on the reference backend with real faults of
// every kind injected, while a driver SIGKILLs random workers and, several times, the
// sweep itself, which is resumed until it is done. Afterwards the store must hold exactly
// one verdict per problem, each the one its fault rule says, no claim, and no worker
// process left; an engine that lost a worker to an outside SIGKILL must not have called
// the problem a CRASH. Labelled `slow` (about a minute on two cores).
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/inject/fault_rules.h"
#include "convguard/problem_source.h"
#include "convguard/text_forms.h"
#include "convguard/verdict.h"
#include "os/process.h"
#include "support/cli_runner.h"

namespace convguard {
namespace {

using namespace testing_support;

// Every fault kind; 2,000 problems `c=1..40 k=1..50 hw=4 r=1`.
constexpr const char* kRules =
    "spin when k == 7 && c % 8 == 1\n"
    "block when k == 13 && c % 8 == 2\n"
    "segv when k == 17 && c % 4 == 3\n"
    "abort when k == 19 && c % 4 == 0\n"
    "exit(7) when k == 23 && c % 4 == 1\n"
    "wrong(0.5) when k % 11 == 5\n"
    "error(\"chaos\") when k % 13 == 6\n"
    "oom when k % 17 == 8\n"
    "unsupported(\"chaos\") when k % 19 == 9\n";
constexpr const char* kGrid = "c=1..40 k=1..50 hw=4 r=1";

// What the rules make of `p`: no rule, OK; else its fault's verdict (this file has no
// `slow`, whose verdict depends on the deadline).
VerdictKind Truth(const inject::FaultRules& rules, const Problem& p) {
  const inject::FaultRule* rule = rules.Match(p, "direct");
  return rule == nullptr ? VerdictKind::kOk : inject::VerdictOfFault(rule->fault.kind);
}

int64_t QueryInt(const std::string& db, const std::string& sql) {
  sqlite3* conn = nullptr;
  if (sqlite3_open_v2(db.c_str(), &conn, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) return -1;
  sqlite3_stmt* stmt = nullptr;
  int64_t value = -1;
  if (sqlite3_prepare_v2(conn, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    value = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(conn);
  return value;
}

// Kills up to `budget` random workers of `needle` while `running`, one every 150..500 ms.
void KillWorkers(const std::string& needle, std::atomic<bool>& running, int budget,
                 std::atomic<int>& killed, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> pause_ms(150, 500);
  while (running && budget > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
    const std::vector<int> live = FindProcesses(needle).live;
    if (live.empty()) continue;
    const int pid = live[std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng)];
    if (::kill(pid, SIGKILL) == 0) {
      ++killed;
      --budget;
    }
  }
}

void ReapOrphans() {
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

TEST(Chaos, KilledWorkersAndAKilledSweepStillGiveOneTrueVerdictPerProblem) {
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);  // what a killed sweep leaves comes to us
  const std::string dir = MakeTempDir("chaos");
  const std::string db = dir + "/v.sqlite";
  const std::string rules_path = WriteFile(dir + "/chaos-marker.rules", kRules);
  StatusOr<inject::FaultRules> rules = inject::ParseFaultRules(kRules, rules_path);
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  StatusOr<GridExpansion> grid = ExpandGrid(kGrid);
  ASSERT_TRUE(grid.ok());
  std::map<std::string, VerdictKind> truth;
  std::map<VerdictKind, int> expected_counts;
  for (const Problem& p : grid->problems) {
    truth[ToCanonical(p)] = Truth(*rules, p);
    expected_counts[truth[ToCanonical(p)]]++;
  }
  ASSERT_EQ(truth.size(), 2000u);
  for (VerdictKind k :
       {VerdictKind::kOk, VerdictKind::kHang, VerdictKind::kCrash, VerdictKind::kWrong,
        VerdictKind::kError, VerdictKind::kOom, VerdictKind::kUnsupported}) {
    ASSERT_GT(expected_counts[k], 0) << VerdictName(k);
  }

  const std::vector<std::string> sweep = {ConvguardBin(),
                                          "sweep",
                                          "--backend",
                                          "reference",
                                          "--inject",
                                          rules_path,
                                          "--db",
                                          db,
                                          "--workers",
                                          "2",
                                          "--quiet",
                                          "--table",
                                          "none",
                                          "--grid",
                                          kGrid,
                                          "--deadline-floor",
                                          "500",
                                          "--confirm-floor",
                                          "1000",
                                          "--confirm-factor",
                                          "2"};
  const std::string worker_needle = "worker --backend reference --inject " + rules_path;
  std::atomic<int> workers_killed{0};
  int sweeps_killed = 0;
  int exit_code = -1;
  for (int run = 0; run < 10 && exit_code != 0; ++run) {
    os::SpawnOptions spawn;
    spawn.argv = sweep;
    // Nothing is read from its stdout (a pipe): --table none keeps it from filling.
    spawn.stderr_mode = os::StderrMode::kDevNull;
    auto child = os::SpawnChild(spawn);
    ASSERT_TRUE(child.ok()) << child.status().ToString();
    child->CloseStdin();
    std::atomic<bool> running{true};
    // At most 3 worker kills per run: the engine runs a probe again after up to 3 outside
    // kills (a 4th would stand as its CRASH verdict, tested in engine_test), so no verdict
    // of this test can come from the killer, wherever its kills land.
    std::thread killer(KillWorkers, worker_needle, std::ref(running), 3, std::ref(workers_killed),
                       1234u + static_cast<uint32_t>(run));
    // The first three runs are SIGKILLed themselves, mid-sweep, after 1.5 to 3.5 s.
    StatusOr<os::ExitInfo> exit = os::ExitInfo::Running();
    if (run < 3) {
      exit = child->WaitExit(std::chrono::milliseconds(1500 + 1000 * run));
      if (exit.ok() && exit->running()) {
        ASSERT_TRUE(child->KillGroup(SIGKILL).ok());
        ++sweeps_killed;
        exit = child->WaitExit(std::chrono::seconds(10));
      }
    } else {
      exit = child->WaitExit(std::chrono::minutes(5));
    }
    running = false;
    killer.join();
    ASSERT_TRUE(exit.ok()) << exit.status().ToString();
    ASSERT_FALSE(exit->running()) << "a sweep did not end within 5 minutes";
    if (exit->exited()) exit_code = exit->exit_code;
    // Workers die with their sweep.
    for (int i = 0; i < 50 && !FindProcesses(worker_needle).live.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ReapOrphans();
    }
    ASSERT_TRUE(FindProcesses(worker_needle).live.empty()) << "workers outlived sweep " << run;
  }
  ASSERT_EQ(exit_code, 0) << "the sweep did not finish in 10 runs";
  EXPECT_GE(sweeps_killed, 2) << "the sweep should have been killed mid-run";
  EXPECT_GT(workers_killed.load(), 0);

  // One verdict per problem, each the injected truth; no claim left.
  CliResult exported = RunConvguard({"db", "export", "--db", db});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  std::map<std::string, int> seen;
  int wrong_kind = 0;
  int outside_noted = 0;
  std::istringstream in(exported.out);
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || j.value("type", "") != "verdict") continue;
    const std::string problem = j["problem"];
    ++seen[problem];
    auto it = truth.find(problem);
    ASSERT_NE(it, truth.end()) << "a verdict for a problem not swept: " << problem;
    if (j["kind"] != std::string(VerdictName(it->second))) {
      ++wrong_kind;
      ADD_FAILURE() << problem << ": " << j["kind"] << ", injected truth "
                    << VerdictName(it->second) << ": " << j.value("message", "");
    }
    if (j.value("message", "").find("SIGKILLed from outside") != std::string::npos) ++outside_noted;
  }
  EXPECT_EQ(seen.size(), truth.size());
  for (const auto& [problem, n] : seen) EXPECT_EQ(n, 1) << problem;
  EXPECT_EQ(wrong_kind, 0);
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM verdicts"), 2000);
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM claims"), 0);
  ReapOrphans();
  EXPECT_TRUE(FindProcesses(worker_needle).live.empty());
  std::printf("chaos: %d sweeps and %d workers SIGKILLed; %d verdicts note an outside kill\n",
              sweeps_killed, workers_killed.load(), outside_noted);
}

}  // namespace
}  // namespace convguard
