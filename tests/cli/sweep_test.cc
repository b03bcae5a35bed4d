// `convguard sweep` and `convguard db` end to end: the real binary, real workers, a real
// SQLite file, real SIGKILLs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "os/process.h"
#include "support/cli_runner.h"

namespace convguard {
namespace {

using namespace testing_support;

int CountLines(const std::string& text, const std::string& needle) {
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
  return n;
}

TEST(SweepCli, ReproducesTheSeedTableOnTheEmulatedStack) {
  const std::string dir = MakeTempDir("seed");
  const std::string db = dir + "/verdicts.sqlite";
  auto r = RunConvguard({"sweep", "--backend", "emulated-rdna1", "--db", db, "--workers", "2",
                         "--grid", "c=16 k=32 hw=32,48,64 r=3 p=same", "--grid",
                         "c=3 k=16 hw=32,64,224 r=3 p=same"});
  ASSERT_TRUE(r.exited) << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The seed report's table, row by row.
  EXPECT_NE(r.out.find("| 16 | 32 | 32x32 | OK |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| 16 | 32 | 48x48 | HANG |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| 16 | 32 | 64x64 | HANG |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| 3 | 16 | 32x32 | OK |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| 3 | 16 | 64x64 | OK |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| 3 | 16 | 224x224 | OK |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("EMULATED STACK"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("EMULATED STACK"), std::string::npos) << r.err;

  // A second sweep knows everything and probes nothing.
  auto again = RunConvguard({"sweep", "--backend", "emulated-rdna1", "--db", db, "--grid",
                             "c=16 k=32 hw=32,48,64 r=3 p=same", "--grid",
                             "c=3 k=16 hw=32,64,224 r=3 p=same"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("known 6"), std::string::npos) << again.err;
  EXPECT_NE(again.out.find("| 16 | 32 | 64x64 | HANG |"), std::string::npos) << again.out;

  // The store shows them, and exports one line per verdict.
  auto show = RunConvguard({"db", "show", "--db", db, "--verdict", "hang"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(CountLines(show.out, "HANG"), 2) << show.out;
  auto exported = RunConvguard({"db", "export", "--db", db});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_EQ(CountLines(exported.out, "\"type\":\"verdict\""), 6) << exported.out;
}

TEST(SweepCli, ProbeCommandTakesTheSeedVocabularyAndExitsWithTheVerdict) {
  const std::string db = MakeTempDir("probe") + "/v.sqlite";
  auto hang = RunConvguard({"probe", "--backend", "emulated-rdna1", "--db", db, "--in", "16",
                            "--out", "32", "--size", "64x64"});
  ASSERT_TRUE(hang.exited);
  EXPECT_EQ(hang.exit_code, 11) << hang.out << hang.err;  // HANG
  EXPECT_NE(hang.out.find("HANG"), std::string::npos);
  EXPECT_NE(hang.out.find("EMULATION"), std::string::npos) << hang.out;
  EXPECT_NE(hang.out.find("repro     convguard probe n1_c16_h64_w64_k32_r3_s3_p1"),
            std::string::npos)
      << hang.out;
  auto ok = RunConvguard(
      {"probe", "--backend", "emulated-rdna1", "--db", db, "c16_h32_k32_r3_p1", "--check", "full"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("check full:"), std::string::npos) << ok.out;
  // Known now: shown from the store without probing.
  auto known = RunConvguard({"probe", "--backend", "emulated-rdna1", "--db", db, "--in", "16",
                             "--out", "32", "--size", "64x64"});
  EXPECT_EQ(known.exit_code, 11);
  EXPECT_NE(known.out.find("from the store"), std::string::npos) << known.out;
}

// A probe's problem is its worker's first: a hang is confirmed in place (one attempt, the
// worker never killed before the confirmation deadline); --confirm-fresh confirms it in
// another fresh worker instead (two attempts). Same verdict, same exit status.
TEST(SweepCli, AFirstProblemIsConfirmedInPlaceUnlessConfirmFreshIsGiven) {
  const std::string dir = MakeTempDir("in-place");
  const std::string rules = WriteFile(dir + "/spin.rules", "spin when k == 3\n");
  const std::vector<std::string> probe = {"probe",      "n1_c4_h8_w8_k3_r3", "--backend",
                                          "reference",  "--inject",          rules,
                                          "--no-store", "--confirm-floor",   "700"};
  auto in_place = RunConvguard(probe);
  EXPECT_EQ(in_place.exit_code, 11) << in_place.out << in_place.err;  // HANG
  EXPECT_NE(in_place.out.find("confirmed in place (the worker was fresh for it"), std::string::npos)
      << in_place.out;
  EXPECT_NE(in_place.out.find("attempts  1,"), std::string::npos) << in_place.out;

  std::vector<std::string> fresh = probe;
  fresh.push_back("--confirm-fresh");
  auto confirmed = RunConvguard(fresh);
  EXPECT_EQ(confirmed.exit_code, 11) << confirmed.out << confirmed.err;
  EXPECT_NE(confirmed.out.find("the confirmation in a fresh worker missed"), std::string::npos)
      << confirmed.out;
  EXPECT_NE(confirmed.out.find("attempts  2,"), std::string::npos) << confirmed.out;
}

// A group of problems that are slow but OK (each run sleeps 150 ms before computing) must
// not stretch the deadlines of the hangs that follow: they are decided with the deadlines
// of a sweep without the slow ones (within 20 %). Before the deadline model learned a
// median per family it took the 10th percentile of recent throughputs, and 8 slow
// problems in 32 made every later deadline about 100 times longer.
TEST(SweepCli, SlowProblemsDoNotStretchTheDeadlinesOfLaterHangs) {
  const std::string dir = MakeTempDir("inflation");
  std::string list;
  for (int k = 4; k <= 96; k += 4) list += "n1_c4_h16_w16_k" + std::to_string(k) + "_r3_s3_p1\n";
  for (int k = 8; k <= 64; k += 8) list += "n1_c8_h16_w16_k" + std::to_string(k) + "_r3_s3_p1\n";
  for (int k : {8, 16, 24, 32}) list += "n1_c24_h16_w16_k" + std::to_string(k) + "_r3_s3_p1\n";
  WriteFile(dir + "/problems.list", list);
  const std::string with_slow =
      WriteFile(dir + "/slow.rules", "slow(150) when c == 8\nspin when c == 24\n");
  const std::string without = WriteFile(dir + "/plain.rules", "spin when c == 24\n");
  std::vector<double> deadlines[2];
  for (int run = 0; run < 2; ++run) {
    const std::string db = dir + "/run" + std::to_string(run) + ".sqlite";
    CliResult sweep =
        RunConvguard({"sweep", "--backend", "reference", "--inject", run == 0 ? with_slow : without,
                      "--list", dir + "/problems.list", "--db", db, "--deadline-floor", "1000",
                      "--confirm-floor", "1", "--quiet"},
                     600.0);
    ASSERT_EQ(sweep.exit_code, 0) << sweep.out << sweep.err;
    CliResult report = RunConvguard({"report", "--db", db, "--format", "json"});
    ASSERT_EQ(report.exit_code, 0) << report.err;
    const nlohmann::json j = nlohmann::json::parse(report.out);
    int slow_ok = 0;
    for (const nlohmann::json& v : j["stacks"][0]["verdicts"]) {
      const std::string problem = v["problem"];
      if (v["kind"] == "HANG") deadlines[run].push_back(v["deadline_ms"].get<double>());
      if (problem.find("_c8_") != std::string::npos && v["kind"] == "OK" &&
          v["time_ms_median"].get<double>() >= 150.0)
        ++slow_ok;
    }
    // The scenario happened: the slow problems were OK (learned from), and 4 hangs.
    if (run == 0) {
      EXPECT_EQ(slow_ok, 8) << report.out;
    }
    ASSERT_EQ(deadlines[run].size(), 4u) << report.out;
  }
  const auto [lo, hi] = std::minmax_element(deadlines[1].begin(), deadlines[1].end());
  for (double d : deadlines[0]) {
    EXPECT_LE(d, 1.2 * *hi) << "with slow problems: " << ::testing::PrintToString(deadlines[0])
                            << ", without: " << ::testing::PrintToString(deadlines[1]);
    EXPECT_GE(d, 0.8 * *lo);
  }
}

struct BadSweep {
  std::string name;
  std::vector<std::string> args;
  std::string message_part;
};

class SweepBadInput : public ::testing::TestWithParam<BadSweep> {};

TEST_P(SweepBadInput, ExitsTwoBeforeStartingAnything) {
  const std::string dir = MakeTempDir("bad");
  WriteFile(dir + "/bad.list", "# a list\nc16_h32_k32_r3\nthis is not a problem\n");
  WriteFile(dir + "/typo.rules", "spin when c == 16 && hh > 32\n");
  WriteFile(dir + "/dangling.rules", "spin when c == 16 \\\n");
  WriteFile(dir + "/trans.log",
            "MIOpen(HIP): Command [LogCmdConvolution] ./bin/MIOpenDriver conv -n 1 -c 16 -H 8 -W 8 "
            "-k 16 -y 3 -x 3 -m trans -g 1 -F 1 -t 1\n");
  std::vector<std::string> args = GetParam().args;
  for (std::string& a : args) {
    if (a.rfind("DIR", 0) == 0) a = dir + a.substr(3);
  }
  args.push_back("--db");
  args.push_back(dir + "/never-created.sqlite");
  auto r = RunConvguard(args);
  ASSERT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(GetParam().message_part), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/never-created.sqlite"));
}

INSTANTIATE_TEST_SUITE_P(
    Table, SweepBadInput,
    ::testing::Values(
        BadSweep{"NoProblems", {"sweep"}, "no problems"},
        BadSweep{"UnknownGridKey", {"sweep", "--grid", "c=16 k=32 hw=32 r=3 q=4"}, "q"},
        BadSweep{"BackwardsRange", {"sweep", "--grid", "c=16 k=32 hw=64..32 r=3"}, "64..32"},
        BadSweep{"MissingKey", {"sweep", "--grid", "c=16 hw=32 r=3"}, "k"},
        BadSweep{"BadListLine", {"sweep", "--list", "DIR/bad.list"}, "bad.list:3"},
        BadSweep{"MissingList", {"sweep", "--list", "DIR/absent.list"}, "absent.list"},
        BadSweep{"LogWithoutCommands",
                 {"sweep", "--log", "DIR/bad.list"},
                 "bad.list: no MIOpenDriver convolution command in 3 lines read"},
        BadSweep{"MissingLog", {"sweep", "--log", "DIR/absent.log"}, "absent.log' does not exist"},
        BadSweep{"LogWithOnlyUnreadCommands", {"sweep", "--log", "DIR/trans.log"}, "no problems"},
        BadSweep{"ZeroWorkers",
                 {"sweep", "--grid", "c=16 k=32 hw=32 r=3", "--workers", "0"},
                 "--workers"},
        BadSweep{"UnknownBackend",
                 {"sweep", "--grid", "c=16 k=32 hw=32 r=3", "--backend", "rocm9"},
                 "rocm9"},
        BadSweep{"BadCheck", {"sweep", "--grid", "c=16 k=32 hw=32 r=3", "--check", "most"}, "most"},
        BadSweep{"MissingRules",
                 {"sweep", "--grid", "c=16 k=32 hw=32 r=3", "--inject", "DIR/none.rules"},
                 "none.rules"},
        // Fault rules are parsed before any worker starts: the parser's message, exit 2.
        BadSweep{"RulesWithAnUnknownField",
                 {"sweep", "--grid", "c=16 k=32 hw=32 r=3", "--inject", "DIR/typo.rules"},
                 "typo.rules:1:22: "},
        BadSweep{"ProbeWithBadRules",
                 {"probe", "c16_h32_k32_r3", "--inject", "DIR/typo.rules"},
                 "typo.rules:1:22: "},
        BadSweep{"RulesEndingInADanglingBackslash",
                 {"sweep", "--grid", "c=16 k=32 hw=32 r=3", "--inject", "DIR/dangling.rules"},
                 "the next line is blank or a comment"},
        BadSweep{"WorkerMemoryWithoutAUnit",
                 {"sweep", "--grid", "c=16 k=32 hw=32 r=3", "--worker-memory", "8Q"},
                 "--worker-memory '8Q' is not a size; allowed: a number with K, M, G or T"},
        BadSweep{"WorkerMemoryTooSmall",
                 {"sweep", "--grid", "c=16 k=32 hw=32 r=3", "--worker-memory", "1M"},
                 "at least 64M"},
        BadSweep{"WorkerMemoryTooLong",
                 {"sweep", "--grid", "c=16 k=32 hw=32 r=3", "--worker-memory",
                  "99999999999999999999999G"},
                 "is not a size"},
        BadSweep{"WorkerCpuZero",
                 {"sweep", "--grid", "c=16 k=32 hw=32 r=3", "--worker-cpu-seconds", "0"},
                 "--worker-cpu-seconds"}),
    [](const ::testing::TestParamInfo<BadSweep>& info) { return info.param.name; });

// A PyTorch run's output with MIOPEN_ENABLE_LOGGING_CMD=1 (tests/inputs/README.md).
std::string TrainingLog() { return SourceDir() + "/tests/inputs/miopen/pytorch_tinynet_train.log"; }

// What a sweep of the training log must say and do, however the log was named.
void ExpectTrainingLogSwept(const CliResult& r) {
  ASSERT_TRUE(r.exited) << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("convguard sweep: log " + TrainingLog() +
                       ": 41 commands of 11 distinct problems (11 from Find, 30 executions); 36 "
                       "lines skipped (8 other MIOpenDriver commands); 5 lines unread:\n"),
            std::string::npos)
      << r.err;
  const std::string three_d =
      ": miopen-driver: flag '--spatial_dim' = 3 is a 3-D convolution; convguard handles 2-D\n";
  const std::string trans =
      ": miopen-driver: flag '-m' = 'trans' is a transposed convolution; convguard runs -m conv "
      "only\n";
  for (const std::string& line : {"line 16" + three_d, "line 17" + three_d, "line 69" + trans,
                                  "line 70" + trans, "line 75" + trans}) {
    EXPECT_NE(r.err.find("convguard sweep:   " + line), std::string::npos) << line << r.err;
  }
  // Each distinct problem is probed once, whatever the number of its commands.
  EXPECT_NE(r.err.find("11 problems on stack"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("done, 11/11"), std::string::npos) << r.err;
  EXPECT_EQ(CountLines(r.out, "| OK |"), 11) << r.out;
  // The channels_last eval convolution: -H 48 -W 64 read as height 48, width 64.
  EXPECT_NE(r.out.find("n8_c3_h48_w64_k16_r3_s3_p1_u1_d1_g1_f16_nhwc_fwd"), std::string::npos)
      << r.out;
}

// A list line's `algo=NAME` is the algorithm that line is probed with.
TEST(SweepCli, AListLineNamesItsAlgorithm) {
  const std::string dir = MakeTempDir("sweep-algo");
  const std::string list = WriteFile(
      dir + "/a.list", "n1_c3_h8_w8_k4_r3_s3_p1 algo=no-such-algorithm\nn1_c4_h8_w8_k4_r3_s3_p1\n");
  CliResult r = RunConvguard({"sweep", "--list", list, "--backend", "reference", "--no-store"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("UNSUPPORTED n1_c3_h8_w8_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd "
                       "no-such-algorithm"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("OK n1_c4_h8_w8_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd direct"),
            std::string::npos)
      << r.err;
}

TEST(SweepCli, LogProbesItsDistinctProblemsAndReportsUnreadLines) {
  auto r = RunConvguard({"sweep", "--backend", "reference", "--no-store", "--workers", "2",
                         "--quiet", "--log", TrainingLog()},
                        300);
  ExpectTrainingLogSwept(r);
  EXPECT_EQ(r.err.find("not a problem list"), std::string::npos) << r.err;
}

TEST(SweepCli, ListThatIsAnMiopenLogIsReadAsOneAndSaysSo) {
  auto r = RunConvguard({"sweep", "--backend", "reference", "--no-store", "--workers", "2",
                         "--quiet", "--list", TrainingLog()},
                        300);
  ExpectTrainingLogSwept(r);
  EXPECT_NE(r.err.find("convguard sweep: --list " + TrainingLog() + " is not a problem list (" +
                       TrainingLog() + ":1: "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("but holds MIOpenDriver convolution commands: reading it as an MIOpen log"),
            std::string::npos)
      << r.err;
}

// The number after "known " in a sweep's summary line (0 when absent).
int KnownCount(const std::string& err) {
  const size_t done = err.rfind("convguard sweep: done");
  if (done == std::string::npos) return -1;
  const size_t at = err.find("known ", done);
  return at == std::string::npos ? 0 : std::atoi(err.c_str() + at + 6);
}

TEST(SweepCli, TwoSweepsOnOneStoreShareTheWorkWithoutDuplicates) {
  const std::string dir = MakeTempDir("twin");
  const std::string db = dir + "/v.sqlite";
  const std::string rules = WriteFile(dir + "/slow.rules", "slow(40) when always\n");
  const std::vector<std::string> args = {"sweep",     "--backend",
                                         "reference", "--inject",
                                         rules,       "--db",
                                         db,          "--workers",
                                         "1",         "--quiet",
                                         "--table",   "none",
                                         "--grid",    "c=2,3 k=2,3,4 hw=5..9 r=3 p=same"};
  const int total = 2 * 3 * 5;
  CliResult a, b;
  std::thread other([&] { b = RunConvguard(args, 300); });
  a = RunConvguard(args, 300);
  other.join();
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const int probed_a = total - KnownCount(a.err);
  const int probed_b = total - KnownCount(b.err);
  // Every problem was probed by exactly one of the two sweeps...
  EXPECT_EQ(probed_a + probed_b, total) << a.err << "\n" << b.err;
  // ...and both did some of the work (each probe takes 160 ms: neither can finish alone
  // before the other starts).
  EXPECT_GT(probed_a, 0);
  EXPECT_GT(probed_b, 0);
  auto all = RunConvguard({"db", "export", "--db", db});
  EXPECT_EQ(CountLines(all.out, "\"type\":\"verdict\""), total);
}

TEST(SweepCli, InterruptStopsCleanlyAndKeepsWhatWasDecided) {
  const std::string dir = MakeTempDir("sigint");
  const std::string db = dir + "/v.sqlite";
  const std::string rules =
      WriteFile(dir + "/int-faults.rules", "spin when k == 3\nslow(100) when always\n");
  os::SpawnOptions spawn;
  spawn.argv = {ConvguardBin(), "sweep", "--backend", "reference",
                "--inject",     rules,   "--db",      db,
                "--workers",    "2",     "--grid",    "c=2 k=3,4,5,6 hw=5..9 r=3 p=same"};
  spawn.stderr_mode = os::StderrMode::kPipe;
  auto child = os::SpawnChild(spawn);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  ASSERT_TRUE(child->KillGroup(SIGINT).ok());
  auto exit = child->WaitExit(std::chrono::seconds(20));
  ASSERT_TRUE(exit.ok());
  ASSERT_TRUE(exit->exited()) << exit->ToString();
  EXPECT_EQ(exit->exit_code, 130);
  // Its workers are gone, and what it decided is in the store; a rerun completes the rest.
  for (int i = 0; i < 50 && !FindProcesses(rules).live.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(FindProcesses(rules).live.empty());
  auto rerun =
      RunConvguard({"sweep", "--backend", "reference", "--inject", rules, "--db", db, "--workers",
                    "2", "--quiet", "--grid", "c=2 k=3,4,5,6 hw=5..9 r=3 p=same"},
                   300);
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_GT(KnownCount(rerun.err), 0) << rerun.err;
  auto all = RunConvguard({"db", "export", "--db", db});
  EXPECT_EQ(CountLines(all.out, "\"type\":\"verdict\""), 20);
}

// Makes this test process the reaper of orphans, so that what a killed sweep leaves
// behind comes to us and can be counted and reaped rather than hiding under init.
void BecomeSubreaper() { ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); }

int ReapOrphans() {
  int reaped = 0;
  while (waitpid(-1, nullptr, WNOHANG) > 0) ++reaped;
  return reaped;
}

TEST(SweepCli, SigkillMidRunThenRerunRecordsEveryProblemExactlyOnce) {
  BecomeSubreaper();
  const std::string dir = MakeTempDir("kill");
  const std::string db = dir + "/v.sqlite";
  // A rules file whose unique path marks this test's workers in /proc.
  const std::string rules =
      WriteFile(dir + "/marker-faults.rules", "spin when k == 3\nslow(300) when k == 8\n");
  const std::vector<std::string> sweep = {
      "sweep", "--backend", "reference", "--inject",
      rules,   "--db",      db,          "--workers",
      "2",     "--quiet",   "--grid",    "c=2,4 k=3,8,16 hw=6,8,10 r=3 p=same"};
  const int total = 2 * 3 * 3;

  os::SpawnOptions spawn;
  spawn.argv.push_back(ConvguardBin());
  spawn.argv.insert(spawn.argv.end(), sweep.begin(), sweep.end());
  spawn.stderr_mode = os::StderrMode::kDevNull;
  auto child = os::SpawnChild(spawn);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  // Some verdicts, a hang in flight: each worker's first problem (k 3) spins and is
  // confirmed in place, decided after the 3 s confirmation floor.
  std::this_thread::sleep_for(std::chrono::milliseconds(4000));
  EXPECT_FALSE(FindProcesses(rules).live.empty()) << "workers should be running";
  ASSERT_TRUE(child->KillGroup(SIGKILL).ok());
  auto exit = child->WaitExit(std::chrono::seconds(10));
  ASSERT_TRUE(exit.ok() && exit->signaled());

  // Its workers die with it (they are killed when their parent dies).
  for (int i = 0; i < 50 && !FindProcesses(rules).live.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ReapOrphans();
  }
  EXPECT_TRUE(FindProcesses(rules).live.empty());

  auto partial = RunConvguard({"db", "export", "--db", db});
  const int before = CountLines(partial.out, "\"type\":\"verdict\"");
  EXPECT_LT(before, total) << "the kill should have interrupted the sweep";

  std::vector<std::string> rerun = sweep;
  auto r = RunConvguard(rerun, 300);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("known " + std::to_string(before)), std::string::npos) << r.err;

  auto all = RunConvguard({"db", "export", "--db", db});
  ASSERT_EQ(all.exit_code, 0);
  std::set<std::string> problems;
  int verdict_lines = 0;
  std::istringstream in(all.out);
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"type\":\"verdict\"") == std::string::npos) continue;
    ++verdict_lines;
    const size_t at = line.find("\"problem\":\"");
    ASSERT_NE(at, std::string::npos);
    problems.insert(line.substr(at + 11, line.find('"', at + 11) - at - 11));
  }
  EXPECT_EQ(verdict_lines, total);
  EXPECT_EQ(static_cast<int>(problems.size()), total);
  EXPECT_EQ(CountLines(all.out, "\"kind\":\"HANG\""), 6) << all.out;  // k == 3 in every c x hw

  ReapOrphans();
  const ProcessScan scan = FindProcesses(rules);
  EXPECT_TRUE(scan.live.empty());
}

}  // namespace
}  // namespace convguard
