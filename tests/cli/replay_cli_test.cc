// `convguard replay` end to end: real workers on the reference backend, real hangs and
// crashes from sequence fault rules (`calls`, `prev.*`), real SQLite stores; a sequence
// is found, minimised, written, replayed again, listed and seen by `scan`.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "convguard/exit_status.h"
#include "convguard/sequence.h"
#include "convguard/text_forms.h"
#include "support/cli_runner.h"

namespace convguard {
namespace {

using namespace testing_support;

std::string P(int c) {
  return "n1_c" + std::to_string(c) + "_h8_w8_k4_r3_s3_p1_u1_d1_g1_f32_nchw_fwd";
}

std::string Lines(const std::vector<int>& channels) {
  std::string out;
  for (int c : channels) out += P(c) + "\n";
  return out;
}

std::string Driver(int c) {
  return "MIOpen(HIP): Command [LogCmdConvolution] ./bin/MIOpenDriver conv -n 1 -c " +
         std::to_string(c) +
         " -H 8 -W 8 -k 4 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -m conv -g 1 -F 1 -t 1\n";
}

std::vector<std::string> Replay(const std::string& list, const std::string& db,
                                const std::string& rules, std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"replay", list, "--backend", "reference", "--db", db};
  if (!rules.empty()) {
    args.push_back("--inject");
    args.push_back(rules);
  }
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// 20 calls; c=16 at calls 3, 10 and 16 (1-based). With `calls >= 6`, call 10 hangs.
const std::vector<int> kTwenty = {7, 3, 16, 4, 5, 7, 3, 4, 5, 16, 3, 7, 4, 5, 3, 16, 4, 7, 5, 3};

TEST(ReplayCli, AHangAfterTheNthCallIsFoundAloneOkAndMinimisedToNCalls) {
  const std::string dir = MakeTempDir("replay-calls");
  const std::string db = dir + "/v.sqlite";
  const std::string list = WriteFile(dir + "/app.list", Lines(kTwenty));
  const std::string rules = WriteFile(dir + "/late.rules", "spin when calls >= 6 && c == 16\n");
  CliResult r = RunConvguard(Replay(
      list, db, rules, {"--minimise", "--minimal-out", dir + "/min", "--confirm-floor", "1500"}));
  ASSERT_EQ(r.exit_code, ExitStatusForVerdict(VerdictKind::kHang)) << r.out << r.err;
  EXPECT_NE(r.out.find("HANG at call 10 of 20: " + P(16)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fails only after the calls before it"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("minimal failing sequence: 6 of 10 calls (minimal:"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("stored as sequence verdict #1"), std::string::npos) << r.out;
  // Every problem ran alone in a fresh worker, and was OK there.
  EXPECT_NE(r.out.find("each problem alone, in a fresh worker: 5 of 5 OK"), std::string::npos)
      << r.out;

  // The minimal list reads back as 6 calls ending with the trigger, with a repro line.
  StatusOr<CallSequence> minimal = ReadCallSequence(dir + "/min.list");
  ASSERT_TRUE(minimal.ok()) << minimal.status().ToString();
  ASSERT_EQ(minimal->calls.size(), 6u);
  EXPECT_EQ(ToCanonical(minimal->calls.back().problem), P(16));
  for (size_t i = 0; i + 1 < minimal->calls.size(); ++i) {
    EXPECT_NE(ToCanonical(minimal->calls[i].problem), P(16)) << i;
  }
  const std::string list_text = Read(dir + "/min.list");
  EXPECT_NE(list_text.find("# repro: convguard replay " + dir + "/min.list --backend reference"),
            std::string::npos)
      << list_text;
  const std::string driver = Read(dir + "/min.driver.txt");
  EXPECT_NE(driver.find("MIOpenDriver conv -n 1 -c 16 -H 8 -W 8"), std::string::npos) << driver;

  // The repro: the minimal list hangs at its last call.
  CliResult again = RunConvguard(Replay(dir + "/min.list", db, rules, {"--no-alone"}));
  ASSERT_EQ(again.exit_code, ExitStatusForVerdict(VerdictKind::kHang)) << again.out << again.err;
  EXPECT_NE(again.out.find("HANG at call 6 of 6"), std::string::npos) << again.out;

  // Nothing is overwritten: the same prefix again is refused before anything runs.
  CliResult clash =
      RunConvguard(Replay(list, db, rules, {"--minimise", "--minimal-out", dir + "/min"}));
  EXPECT_EQ(clash.exit_code, kExitBadInput);
  EXPECT_NE(clash.err.find("min.list' exists"), std::string::npos) << clash.err;
  EXPECT_EQ(Read(dir + "/min.list"), list_text);

  CliResult listed = RunConvguard({"db", "sequences", "--db", db, "--long"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("#1    HANG"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("#2    HANG"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("minimal: 6 calls"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("alone: OK"), std::string::npos) << listed.out;
}

TEST(ReplayCli, AHangThatNeedsOneProblemAfterAnotherShrinksToExactlyThoseTwo) {
  const std::string dir = MakeTempDir("replay-prev");
  // c=16 after c=3 hangs; c=16 after anything else does not. First at calls 9, 10.
  const std::string list =
      WriteFile(dir + "/app.list", Lines({16, 5, 3, 7, 16, 4, 3, 5, 3, 16, 3, 16, 7}));
  const std::string rules = WriteFile(dir + "/pair.rules", "spin when prev.c == 3 && c == 16\n");
  CliResult r = RunConvguard(
      Replay(list, dir + "/v.sqlite", rules,
             {"--minimise", "--no-alone", "--format", "json", "--confirm-floor", "1500"}));
  ASSERT_EQ(r.exit_code, ExitStatusForVerdict(VerdictKind::kHang)) << r.out << r.err;
  EXPECT_NE(r.out.find("\"failed_at\":9"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"minimal\":[\"" + P(3) + " direct\",\"" + P(16) + " direct\"]"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\"alone\":[]"), std::string::npos) << r.out;
}

TEST(ReplayCli, AFineSequenceReplaysOkWithEveryProblemsOwnVerdictRecorded) {
  const std::string dir = MakeTempDir("replay-ok");
  const std::string db = dir + "/v.sqlite";
  const std::string list = WriteFile(dir + "/app.list", Lines({3, 3, 4, 5, 4, 3}));
  CliResult r = RunConvguard(Replay(list, db, "", {"--format", "json"}));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\"kind\":\"OK\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"calls_run\":6"), std::string::npos) << r.out;
  for (int c : {3, 4, 5}) {
    EXPECT_NE(r.out.find("{\"algorithm\":\"direct\",\"kind\":\"OK\",\"problem\":\"" + P(c) + "\"}"),
              std::string::npos)
        << c << ": " << r.out;
  }
  CliResult listed = RunConvguard({"db", "sequences", "--db", db, "--long"});
  ASSERT_EQ(listed.exit_code, 0);
  EXPECT_NE(listed.out.find("#1    OK"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("6/6 calls"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("alone: OK          " + P(5)), std::string::npos) << listed.out;
}

TEST(ReplayCli, ACrashMidSequenceIsACrashVerdictAtItsCall) {
  const std::string dir = MakeTempDir("replay-crash");
  const std::string list = WriteFile(dir + "/app.list", Lines({3, 4, 5, 7, 3}));
  const std::string rules = WriteFile(dir + "/crash.rules", "segv when calls >= 3\n");
  CliResult r = RunConvguard(Replay(list, dir + "/v.sqlite", rules));
  ASSERT_EQ(r.exit_code, ExitStatusForVerdict(VerdictKind::kCrash)) << r.out << r.err;
  EXPECT_NE(r.out.find("CRASH at call 3 of 5: " + P(5)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("SIGSEGV"), std::string::npos) << r.out;
  // Alone, each problem is the first call of its worker: none crashes.
  EXPECT_NE(r.out.find("3 of 3 OK"), std::string::npos) << r.out;
}

TEST(ReplayCli, ASequenceThatMissesItsOwnDeadlineIsSlow) {
  const std::string dir = MakeTempDir("replay-slow");
  const std::string list = WriteFile(dir + "/app.list", Lines({3, 3, 3, 3, 3, 3}));
  const std::string rules = WriteFile(dir + "/slow.rules", "slow(120) when c == 3\n");
  CliResult r = RunConvguard(
      Replay(list, dir + "/v.sqlite", rules, {"--sequence-deadline", "0.4", "--no-alone"}));
  ASSERT_EQ(r.exit_code, ExitStatusForVerdict(VerdictKind::kSlow)) << r.out << r.err;
  EXPECT_NE(r.out.find("missed its deadline of 400 ms"), std::string::npos) << r.out;
}

TEST(ReplayCli, AScanOfAReplayedLogSaysItsSequenceFailed) {
  const std::string dir = MakeTempDir("replay-scan");
  const std::string db = dir + "/v.sqlite";
  const std::string log =
      WriteFile(dir + "/app.log", "epoch 1\n" + Driver(3) + Driver(16) + "loss 0.3\n" + Driver(3) +
                                      Driver(16) + Driver(16));
  const std::string rules = WriteFile(dir + "/late.rules", "spin when calls >= 4 && c == 16\n");
  CliResult r = RunConvguard(Replay(log, db, rules, {"--no-alone", "--confirm-floor", "1500"}));
  ASSERT_EQ(r.exit_code, ExitStatusForVerdict(VerdictKind::kHang)) << r.out << r.err;
  EXPECT_NE(r.out.find("HANG at call 4 of 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(" + log + ":6)"), std::string::npos) << r.out;

  CliResult scan = RunConvguard(
      {"scan", log, "--backend", "reference", "--inject", rules, "--db", db, "--probe"});
  EXPECT_EQ(scan.exit_code, kExitModelBlocked) << scan.out << scan.err;
  EXPECT_NE(scan.out.find("blocked: its calls, replayed in order in one worker, gave HANG at "
                          "call 4 of 5"),
            std::string::npos)
      << scan.out;
}

TEST(ReplayCli, BadInputIsOneMessageAndExitTwo) {
  const std::string dir = MakeTempDir("replay-bad");
  const std::string db = dir + "/v.sqlite";
  const std::string list = WriteFile(dir + "/app.list", Lines({3}));
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"replay"}, "no LOG or LIST given"},
      {{"replay", list, list}, "one LOG or LIST at a time"},
      {{"replay", dir + "/nope.list"}, "does not exist"},
      {{"replay", WriteFile(dir + "/empty.list", "# nothing here\n")}, "holds no convolution call"},
      {{"replay", WriteFile(dir + "/chatter.log", "epoch 1\nloss 0.5\n")}, "MIOpenDriver"},
      {{"replay", list, "--minimise", "--budget", "0"}, "--budget must be more than 0 seconds"},
      {{"replay", list, "--budget", "10"}, "--budget needs --minimise"},
      {{"replay", list, "--minimal-out", dir + "/m"}, "--minimal-out needs --minimise"},
      {{"replay", list, "--format", "xml"}, "--format 'xml' is unknown (allowed: text, json)"},
      {{"replay", list, "--algo", "direct"}, "--algo"},
      {{"replay", list, "--backend", "nope"}, "--backend 'nope' is not available"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.push_back("--db");
    args.push_back(db);
    CliResult r = RunConvguard(args);
    EXPECT_EQ(r.exit_code, kExitBadInput) << c.says << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  // Nothing was started or stored for any of them.
  EXPECT_FALSE(std::filesystem::exists(db));
}

}  // namespace
}  // namespace convguard
