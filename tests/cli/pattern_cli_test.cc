// `convguard pattern` end to end: a real sweep on the emulated RDNA1 stack fills a store,
// the learned rules are written to a file, and the same grid swept on the reference
// backend with those rules injected gives the same verdicts: the round trip.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "support/cli_runner.h"

namespace convguard {
namespace {

using namespace testing_support;

const std::vector<std::string> kQuick = {"--deadline-floor", "300", "--confirm-floor", "800"};

std::vector<std::string> With(std::vector<std::string> head) {
  head.insert(head.end(), kQuick.begin(), kQuick.end());
  return head;
}

// The sweep table's rows without their timings: "| c | k | size | VERDICT |".
std::vector<std::string> TableRows(const std::string& out) {
  std::vector<std::string> rows;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("| ", 0) == 0 && line.find("x") != std::string::npos &&
        line.find("---") == std::string::npos && line.find("| c |") == std::string::npos) {
      size_t end = 0;
      for (int bars = 0; bars < 5 && end != std::string::npos; ++bars)
        end = line.find('|', end + (bars == 0 ? 0 : 1));
      rows.push_back(line.substr(0, end == std::string::npos ? line.size() : end + 1));
    }
  return rows;
}

TEST(PatternCli, LearnedRulesInjectedOnTheReferenceReproduceTheSweep) {
  const std::string dir = MakeTempDir("pattern");
  const std::string db = dir + "/emulated.sqlite";
  const std::string grid = "c=8,16,32 k=16,24,32 hw=24,40 r=3 p=same";
  CliResult sweep =
      RunConvguard(With({"sweep", "--backend", "emulated-rdna1", "--db", db, "--grid", grid}));
  ASSERT_EQ(sweep.exit_code, 0) << sweep.err;
  const std::vector<std::string> truth = TableRows(sweep.out);
  ASSERT_EQ(truth.size(), 18u) << sweep.out;

  const std::string rules = dir + "/learned.rules";
  CliResult learned = RunConvguard({"pattern", "--db", db, "--held-out", "0", "-o", rules});
  ASSERT_EQ(learned.exit_code, 0) << learned.err;
  EXPECT_NE(learned.out.find("spin when"), std::string::npos) << learned.out;
  EXPECT_NE(learned.out.find("errors of these rules: training 0 of 18"), std::string::npos)
      << learned.out;
  ASSERT_TRUE(std::filesystem::exists(rules));

  CliResult replay = RunConvguard(With({"sweep", "--backend", "reference", "--inject", rules,
                                        "--db", dir + "/replay.sqlite", "--grid", grid}));
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_EQ(TableRows(replay.out), truth) << replay.out;

  // JSON carries the same rules and counts.
  CliResult json = RunConvguard({"pattern", "--db", db, "--held-out", "0", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_NE(json.out.find("\"train_verdicts\": 18"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"fault\": \"spin\""), std::string::npos) << json.out;

  // A scan of layers the store does not know: UNKNOWN, with the pattern's prediction,
  // which is not stored.
  const std::string layers =
      WriteFile(dir + "/layers.json",
                R"({"convguard_layers": 1, "origin": "two layers", "layers": [
           {"name": "seed", "op": "Conv2d", "problem": "n1_c16_h64_w64_k32_r3_s3_p1"},
           {"name": "small", "op": "Conv2d", "problem": "n1_c8_h20_w20_k8_r3_s3_p1"}]})");
  CliResult scan = RunConvguard({"scan", layers, "--backend", "emulated-rdna1", "--db", db});
  EXPECT_EQ(scan.exit_code, 23) << scan.out << scan.err;
  EXPECT_NE(scan.out.find("UNKNOWN (no verdict; PREDICTED HANG, confidence 0."), std::string::npos)
      << scan.out;
  EXPECT_NE(scan.out.find("UNKNOWN (no verdict; PREDICTED OK, confidence 0."), std::string::npos)
      << scan.out;
  EXPECT_NE(scan.out.find("they are not verdicts and are not stored"), std::string::npos)
      << scan.out;
  CliResult scan_json =
      RunConvguard({"scan", layers, "--backend", "emulated-rdna1", "--db", db, "--json"});
  EXPECT_NE(scan_json.out.find("\"predicted\": {"), std::string::npos) << scan_json.out;
  CliResult stored =
      RunConvguard({"db", "show", "--db", db, "--problem", "n1_c16_h64_w64_k32_r3_s3_p1"});
  EXPECT_EQ(stored.exit_code, 0) << stored.err;
  EXPECT_NE(stored.err.find("0 verdicts"), std::string::npos) << stored.out << stored.err;

  // Nothing is overwritten: the rules file exists now.
  CliResult again = RunConvguard({"pattern", "--db", db, "-o", rules});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
}

TEST(PatternCli, AnInformativeSweepStopsAtItsBudgetAndPredictsTheRest) {
  const std::string dir = MakeTempDir("informative");
  const std::string db = dir + "/v.sqlite";
  CliResult sweep = RunConvguard(With({"sweep", "--backend", "emulated-rdna1", "--db", db, "--grid",
                                       "c=8,16,32 k=16,24,32 hw=24,40 r=3 p=same", "--order",
                                       "informative", "--budget", "10"}));
  ASSERT_EQ(sweep.exit_code, 0) << sweep.err;
  EXPECT_NE(sweep.err.find("budget of 10 probes reached: 8 problem(s) not probed"),
            std::string::npos)
      << sweep.err;
  const std::vector<std::string> rows = TableRows(sweep.out);
  const auto predicted = std::count_if(rows.begin(), rows.end(), [](const std::string& row) {
    return row.find("| PREDICTED ") != std::string::npos;
  });
  EXPECT_EQ(predicted, 8) << sweep.out;
  EXPECT_EQ(rows.size(), 18u) << sweep.out;  // 10 verdicts, then 8 predictions
  // Only the probes are stored; predictions never are.
  CliResult shown = RunConvguard({"db", "show", "--db", db});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.err.find("10 verdicts"), std::string::npos) << shown.err;

  for (const auto& [flag, value, says] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"--order", "random", "--order 'random' is unknown"}, {"--budget", "0", "--budget"}}) {
    CliResult bad = RunConvguard(
        {"sweep", "--backend", "reference", "--db", db, "--grid", "c=8 k=8 hw=8 r=3", flag, value});
    EXPECT_EQ(bad.exit_code, 2) << bad.err;
    EXPECT_NE(bad.err.find(says), std::string::npos) << bad.err;
  }
}

TEST(PatternCli, BadInputIsOneLineAndExitTwo) {
  const std::string dir = MakeTempDir("pattern-bad");
  const std::string one = dir + "/one.sqlite";
  CliResult probe = RunConvguard(
      With({"probe", "n1_c4_h8_w8_k4_r3_s3_p1", "--backend", "reference", "--db", one}));
  ASSERT_EQ(probe.exit_code, 0) << probe.err;
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {{"pattern", "--db", dir + "/missing.sqlite"}, "no store at"},
           {{"pattern", "--db", one}, "1 usable verdict(s) of stack"},
           {{"pattern", "--db", one, "--stack", "0123456789abcdef"}, "has no verdict of stack"},
           {{"pattern", "--db", one, "--depth", "0"}, "--depth"},
           {{"pattern", "--db", one, "--held-out", "95"}, "--held-out"},
       }) {
    CliResult r = RunConvguard(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.says << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/missing.sqlite"));
}

}  // namespace
}  // namespace convguard
