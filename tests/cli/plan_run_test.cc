// `convguard plan` and `convguard run` end to end: the real binary, real workers for the
// probes, a real SQLite store, plans executed and checked in the CLI process.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/cli_runner.h"

namespace convguard {
namespace {

using namespace testing_support;

const std::vector<std::string> kQuickDeadlines = {"--deadline-floor", "300", "--confirm-floor",
                                                  "800"};

std::vector<std::string> Args(std::vector<std::string> head, const std::vector<std::string>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

// The acceptance check: every problem of the seed's table that hangs on the
// emulated RDNA1 stack gets a plan whose leaves are all OK, and `run` verifies it.
TEST(PlanRunCli, EveryHangingProblemOfTheSeedTableGetsAVerifiedPlan) {
  const std::string db = MakeTempDir("plan-seed") + "/verdicts.sqlite";
  auto sweep = RunConvguard(Args({"sweep", "--backend", "emulated-rdna1", "--db", db, "--workers",
                                  "2", "--list", SourceDir() + "/tests/inputs/seed.list"},
                                 kQuickDeadlines));
  ASSERT_EQ(sweep.exit_code, 0) << sweep.err;
  auto hangs = RunConvguard({"db", "show", "--db", db, "--verdict", "hang"});
  ASSERT_EQ(hangs.exit_code, 0) << hangs.err;
  std::vector<std::string> hanging;
  std::istringstream lines(hangs.out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    for (std::string w; words >> w;) {
      if (w.rfind("n1_c", 0) == 0) hanging.push_back(w);
    }
  }
  ASSERT_EQ(hanging.size(), 2u) << hangs.out;  // 48x48 and 64x64

  for (const std::string& problem : hanging) {
    auto plan = RunConvguard(Args(
        {"plan", problem, "--backend", "emulated-rdna1", "--db", db, "--probe-missing", "--json"},
        kQuickDeadlines));
    ASSERT_EQ(plan.exit_code, 0) << problem << "\n" << plan.out << plan.err;
    nlohmann::json report = nlohmann::json::parse(plan.out);
    ASSERT_FALSE(report["plan"].is_null()) << plan.out;
    EXPECT_NE(report["plan"]["root"]["kind"], "native") << plan.out;
    EXPECT_GE(report["probes_run"].get<int>(), 1);
    // Every leaf of the plan is OK in the store: the leaves carry measured times.
    std::vector<nlohmann::json> todo = {report["plan"]["root"]};
    int leaves = 0;
    while (!todo.empty()) {
      nlohmann::json step = todo.back();
      todo.pop_back();
      if (step.contains("children")) {
        for (const auto& c : step["children"]) todo.push_back(c);
      } else {
        ++leaves;
        EXPECT_TRUE(step.contains("measured_ms")) << step.dump();
        EXPECT_NE(step["problem"], problem);
      }
    }
    EXPECT_GE(leaves, 1);
    // The reference's leaves reproduce the float64 result bit for bit, and say so.
    EXPECT_EQ(report["plan"]["exact"], true) << plan.out;
    EXPECT_EQ(report["plan"]["tolerance"], 0.0) << plan.out;

    auto run = RunConvguard({"run", problem, "--backend", "emulated-rdna1", "--db", db, "--runs",
                             "2", "--exact-leaves"});
    ASSERT_EQ(run.exit_code, 0) << problem << "\n" << run.out << run.err;
    EXPECT_NE(run.out.find("check: full"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("every leaf is bit-exact"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("verdict: exact"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("[EMULATION:"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("0 mismatches"), std::string::npos) << run.out;
  }

  // A problem that is OK as is runs as is.
  auto native = RunConvguard({"plan", "n1_c16_h32_w32_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd",
                              "--backend", "emulated-rdna1", "--db", db});
  ASSERT_EQ(native.exit_code, 0) << native.out << native.err;
  EXPECT_NE(native.out.find("plan: run it as is"), std::string::npos) << native.out;
}

// Planning runs no backend in the deciding process: with in-process backends forbidden
// (a backend created outside a worker is then refused), `plan` still identifies the
// stack and probes what it needs in workers, while `run`, which executes the plan in its
// own process by design, is refused with a message naming the variable.
TEST(PlanRunCli, PlanningRunsNoBackendInTheDecidingProcess) {
#if defined(CONVGUARD_HAVE_ONEDNN)
  const std::string backend = "onednn";  // a vendor library
#else
  const std::string backend = "emulated-rdna1";
#endif
  const std::string db = MakeTempDir("plan-no-vendor") + "/verdicts.sqlite";
  const std::vector<std::pair<std::string, std::string>> forbid = {
      {"CONVGUARD_FORBID_IN_PROCESS_BACKENDS", "1"}};
  const std::string problem = "n1_c8_h12_w12_k8_r3_s3_p1";
  auto plan = RunConvguard(
      Args({"plan", problem, "--backend", backend, "--db", db, "--probe-missing"}, kQuickDeadlines),
      120.0, forbid);
  ASSERT_EQ(plan.exit_code, 0) << plan.out << plan.err;
  EXPECT_NE(plan.out.find("plan: run it as is"), std::string::npos) << plan.out;

  auto refused = RunConvguard({"run", problem, "--backend", backend, "--db", db, "--runs", "1"},
                              120.0, forbid);
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("CONVGUARD_FORBID_IN_PROCESS_BACKENDS=1 forbids"), std::string::npos)
      << refused.err;

  auto ran = RunConvguard({"run", problem, "--backend", backend, "--db", db, "--runs", "1"});
  EXPECT_EQ(ran.exit_code, 0) << ran.out << ran.err;
}

TEST(PlanRunCli, NoExactPlanSaysSoAndSuggestsModelChanges) {
  const std::string db = MakeTempDir("plan-none") + "/verdicts.sqlite";
  auto sweep = RunConvguard(Args({"sweep", "--backend", "emulated-rdna1", "--db", db, "--grid",
                                  "c=16 k=32 hw=32,64 r=3 p=same"},
                                 kQuickDeadlines));
  ASSERT_EQ(sweep.exit_code, 0) << sweep.err;
  // Rewrites limited to depth 0 and no probing: only the store's leaves count.
  auto plan = RunConvguard({"plan", "n1_c16_h64_w64_k32_r3_s3_p1", "--backend", "emulated-rdna1",
                            "--db", db, "--max-depth", "0"});
  EXPECT_EQ(plan.exit_code, 20) << plan.out << plan.err;
  EXPECT_NE(plan.out.find("no exact plan"), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("32x32"), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("CHANGE THE MODEL"), std::string::npos) << plan.out;
  auto run = RunConvguard({"run", "n1_c16_h64_w64_k32_r3_s3_p1", "--backend", "emulated-rdna1",
                           "--db", db, "--max-depth", "0"});
  EXPECT_EQ(run.exit_code, 20) << run.out << run.err;
  EXPECT_NE(run.err.find("no exact plan"), std::string::npos) << run.err;
}

TEST(PlanRunCli, BadInputIsRefusedWithExitStatus2) {
  const std::string db = MakeTempDir("plan-bad") + "/verdicts.sqlite";
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"plan", "--db", db}, "no PROBLEM"},
      {{"plan", "n1_c16_h8_w8_k0_r3", "--db", db}, "k"},
      {{"plan", "n1_c16_h8_w8_k4_r3", "--db", db, "--max-depth", "9"}, "--max-depth"},
      {{"plan", "n1_c16_h8_w8_k4_r3", "--db", db, "--fallback", "nope"}, "--fallback 'nope'"},
      {{"plan", "n1_c16_h8_w8_k4_r3", "--db", db, "--backend", "reference", "--fallback",
        "reference"},
       "primary"},
      {{"plan", "n1_c16_h8_w8_k4_r3", "--db", db, "--probe-budget", "0"}, "--probe-budget"},
      {{"run", "n1_c16_h8_w8_k4_r3", "--db", db, "--runs", "0"}, "--runs"},
      {{"run", "n1_c16_h8_w8_k4_r3", "--db", db, "--backend", "torch"}, "Python worker"},
      {{"run", "n1_c16_h8_w8_k4_r3", "--db", db, "--backend", "reference", "--device-tensors"},
       "computes in host memory"},
      {{"plan", "n1_c16_h8_w8_k4_r3", "--db", db, "--bogus"}, "--bogus"},
  };
  for (const Case& c : cases) {
    auto r = RunConvguard(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << " " << c.args[1] << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
  auto help = RunConvguard({"plan", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--probe-missing"), std::string::npos);
  EXPECT_NE(help.out.find("exit status"), std::string::npos);
  auto run_help = RunConvguard({"run", "--help"});
  EXPECT_EQ(run_help.exit_code, 0);
  EXPECT_NE(run_help.out.find("--runs"), std::string::npos);
  EXPECT_NE(run_help.out.find("--device-tensors"), std::string::npos);
  // Refused before the store was opened: nothing was written.
  EXPECT_FALSE(std::filesystem::exists(db)) << db;
}

}  // namespace
}  // namespace convguard

namespace convguard {
namespace {

// The torch backend cannot run in-process, so `plan` reads its stack from a worker;
// `run` refuses it (tested with the bad input above).
TEST(PlanRunCli, PlanOnTheTorchBackendReadsTheStackFromAWorker) {
  using namespace testing_support;
  const std::string db = MakeTempDir("plan-torch") + "/verdicts.sqlite";
  auto plan =
      RunConvguard({"plan", "n1_c4_h8_w8_k4_r3_s3_p1", "--backend", "torch", "--db", db}, 180.0);
  if (plan.exit_code == 1 && plan.err.find("PyTorch is not importable") != std::string::npos) {
    GTEST_SKIP() << "no Python interpreter here can import torch: " << plan.err;
  }
  EXPECT_EQ(plan.exit_code, 20) << plan.out << plan.err;
  EXPECT_NE(plan.out.find("torch on"), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("no exact plan"), std::string::npos) << plan.out;
  // The worker recorded the stack in the store.
  auto stacks = RunConvguard({"db", "stacks", "--db", db});
  ASSERT_EQ(stacks.exit_code, 0) << stacks.err;
  EXPECT_NE(stacks.out.find("torch"), std::string::npos) << stacks.out;
}

}  // namespace
}  // namespace convguard
