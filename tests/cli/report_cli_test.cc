// `convguard report` end to end: real sweeps fill a store (the reference backend under
// fault rules, workers killed by the watchdog), then every format is read back and
// checked against what the sweeps recorded. The HTML page is opened in headless Chromium
// by tests/report/check_html_report.py.
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

const std::vector<std::string> kQuick = {"--deadline-floor", "300", "--confirm-floor", "800",
                                         "--quiet"};
// Four problems hang (c 16 at 40x40), eight do not.
const std::string kGrid = "c=3,16 k=16,32 hw=24,40 n=1,2 r=3 p=same";

// A stack variant: the same CPU, one knob, and rules that make some problems spin.
std::string RulesWithKnob(const std::string& dir, const std::string& name,
                          const std::string& knob_value, const std::string& rule) {
  return WriteFile(dir + "/" + name,
                   "# a knob variant of the reference stack, for the report tests\n"
                   "stack.knobs.CONV_SOLVER_GEMM: " +
                       knob_value + "\n" + rule);
}

CliResult Sweep(const std::string& db, const std::string& rules) {
  std::vector<std::string> args = {"sweep", "--backend", "reference", "--inject", rules,
                                   "--db",  db,          "--grid",    kGrid};
  args.insert(args.end(), kQuick.begin(), kQuick.end());
  return RunConvguard(args, 300.0);
}

class ReportCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("report"));
    db_ = new std::string(*dir_ + "/verdicts.sqlite");
    const std::string base =
        RulesWithKnob(*dir_, "base.rules", "1", "spin when c == 16 && h > 32\n");
    const std::string variant = RulesWithKnob(*dir_, "variant.rules", "0", "");
    CliResult a = Sweep(*db_, base);
    ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
    CliResult b = Sweep(*db_, variant);
    ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
    CliResult stacks = RunConvguard({"db", "stacks", "--db", *db_});
    ASSERT_EQ(stacks.exit_code, 0) << stacks.err;
    // The stack whose knob is 1 is the one with hangs.
    nlohmann::json j = nlohmann::json::parse(
        RunConvguard({"report", "--db", *db_, "--format", "json", "--verdict", "HANG"}).out);
    ASSERT_EQ(j["stacks"].size(), 1u) << j.dump();
    base_id_ = new std::string(j["stacks"][0]["stack_id"].get<std::string>());
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete db_;
    delete base_id_;
  }
  static CliResult Report(std::vector<std::string> args) {
    args.insert(args.begin(), {"report", "--db", *db_});
    return RunConvguard(args);
  }
  static std::string* dir_;
  static std::string* db_;
  static std::string* base_id_;
};
std::string* ReportCli::dir_ = nullptr;
std::string* ReportCli::db_ = nullptr;
std::string* ReportCli::base_id_ = nullptr;

TEST_F(ReportCli, JsonHoldsEveryVerdictCountsGroupsAndTheKnobRecommendation) {
  CliResult r = Report({"--stack", *base_id_, "--format", "json", "--held-out", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["stacks"].size(), 1u);
  const nlohmann::json& s = j["stacks"][0];
  EXPECT_EQ(s["verdicts"].size(), 16u);
  EXPECT_EQ(s["counts"]["HANG"], 4);
  EXPECT_EQ(s["counts"]["OK"], 12);
  // Each failing group is one (c, k, rest) with the sizes that hang.
  ASSERT_EQ(s["failing"].size(), 4u) << s["failing"].dump();
  for (const nlohmann::json& g : s["failing"]) {
    EXPECT_EQ(g["c"], 16);
    EXPECT_EQ(g["kind"], "HANG");
    EXPECT_EQ(g["sizes"], nlohmann::json::array({"40x40"}));
  }
  // The pattern is learned from the stack's verdicts and states its own errors.
  ASSERT_TRUE(s["pattern"].is_object()) << s["no_pattern"];
  EXPECT_EQ(s["pattern"]["train_errors"], 0);
  // The variant with the knob at 0 runs every failing problem OK: the recommendation
  // names the knob and measures its cost on the problems both stacks ran OK.
  ASSERT_EQ(s["recommendations"].size(), 1u) << s["recommendations"].dump();
  const nlohmann::json& rec = s["recommendations"][0];
  EXPECT_EQ(rec["kind"], "set-knobs");
  EXPECT_EQ(rec["knobs"]["CONV_SOLVER_GEMM"], "0");
  EXPECT_EQ(rec["failing_problems"], 4);
  EXPECT_EQ(rec["fixed_problems"], 4);
  EXPECT_EQ(rec["cost"]["problems"], 12);
  EXPECT_GT(rec["cost"]["geomean_ratio"].get<double>(), 0.0);
}

TEST_F(ReportCli, TheHealthyVariantHasNothingToFix) {
  CliResult r = Report({"--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["stacks"].size(), 2u);
  int nothing = 0;
  for (const nlohmann::json& s : j["stacks"])
    if (s["stack_id"] != *base_id_) {
      EXPECT_EQ(s["counts"]["OK"], 16);
      EXPECT_EQ(s["recommendations"][0]["kind"], "nothing-to-fix");
      ++nothing;
    }
  EXPECT_EQ(nothing, 1);
}

TEST_F(ReportCli, MarkdownRegeneratesTheSeedReportSections) {
  CliResult r = Report({"--stack", *base_id_, "--format", "markdown"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* section :
       {"## Problem", "### Configurations That Hang", "## Known Working Configurations",
        "## Models That Work", "## Pattern", "## Recommendation"})
    EXPECT_NE(r.out.find(section), std::string::npos) << section << "\n" << r.out;
  EXPECT_NE(r.out.find("| 16 | 32 | 40x40 | n1 3x3 pad 1 fwd | HANG |"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("| 3 | 32 | 24x24, 40x40 | n2 3x3 pad 1 fwd |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("set CONV_SOLVER_GEMM=0"), std::string::npos) << r.out;
}

TEST_F(ReportCli, CsvHasOneRowPerVerdictAndAColumnPerField) {
  CliResult r = Report({"--stack", *base_id_, "--format", "csv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 17u) << r.out;
  // Fields outside quotes: every row has as many as the header.
  const auto fields = [](const std::string& line) {
    size_t n = 1;
    bool quoted = false;
    for (char c : line) {
      if (c == '"') quoted = !quoted;
      if (c == ',' && !quoted) ++n;
    }
    return n;
  };
  for (const std::string& line : lines) EXPECT_EQ(fields(line), fields(lines[0])) << line;
  int hangs = 0;
  for (const std::string& line : lines) hangs += line.find(",HANG,") != std::string::npos;
  EXPECT_EQ(hangs, 4);
}

TEST_F(ReportCli, FiltersNarrowTheListingsButNotThePattern) {
  CliResult r = Report({"--stack", *base_id_, "--verdict", "HANG", "--held-out", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("4 verdicts of 4 problems (the stack has 16): HANG 4"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("spin when"), std::string::npos) << r.out;
}

TEST_F(ReportCli, ModelLayersWithVerdictsAndPredictions) {
  const std::string layers = WriteFile(*dir_ + "/layers.json", R"({"convguard_layers": 1,
      "origin": "three layers", "layers": [
        {"name": "stem", "op": "Conv2d", "problem": "n1_c3_h24_w24_k16_r3_s3_p1"},
        {"name": "hangs", "op": "Conv2d", "problem": "n1_c16_h40_w40_k32_r3_s3_p1"},
        {"name": "unseen", "op": "Conv2d", "problem": "n1_c16_h64_w64_k32_r3_s3_p1"}]})");
  CliResult r =
      Report({"--stack", *base_id_, "--model", layers, "--format", "json", "--held-out", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  const nlohmann::json& s = j["stacks"][0];
  // Only the model's problems are listed.
  EXPECT_EQ(s["verdicts"].size(), 2u);
  ASSERT_EQ(s["models"].size(), 1u);
  const nlohmann::json& m = s["models"][0];
  // The hanging layer has no exact plan from stored verdicts yet (no candidate probed).
  EXPECT_EQ(m["status"], "blocked");
  ASSERT_EQ(m["layers"].size(), 3u);
  EXPECT_EQ(m["layers"][0]["state"], "OK");
  EXPECT_EQ(m["layers"][1]["state"], "HANG");
  EXPECT_EQ(m["layers"][1]["plan"], "");
  EXPECT_EQ(m["layers"][2]["state"], "UNKNOWN");
  EXPECT_EQ(m["layers"][2]["predicted"], "HANG");
  // A prediction is never a verdict: the store still has none for that problem.
  CliResult show =
      RunConvguard({"db", "show", "--db", *db_, "--problem", "n1_c16_h64_w64_k32_r3_s3_p1"});
  EXPECT_EQ(show.out.find("HANG"), std::string::npos) << show.out;

  // In a copy of the store, one more verdict: 17 input channels are OK on this stack. The
  // hanging layer now has an exact plan, planned from stored verdicts as a scan would.
  const std::string copy = *dir_ + "/copy.sqlite";
  ASSERT_EQ(RunConvguard({"db", "export", *dir_ + "/all.jsonl", "--db", *db_}).exit_code, 0);
  ASSERT_EQ(RunConvguard({"db", "import", *dir_ + "/all.jsonl", "--db", copy}).exit_code, 0);
  CliResult padded = RunConvguard({"probe", "n1_c17_h40_w40_k32_r3_s3_p1", "--backend", "reference",
                                   "--inject", *dir_ + "/base.rules", "--db", copy});
  ASSERT_EQ(padded.exit_code, 0) << padded.out << padded.err;
  CliResult fixed = RunConvguard({"report", "--db", copy, "--stack", *base_id_, "--model", layers,
                                  "--format", "json", "--held-out", "0"});
  ASSERT_EQ(fixed.exit_code, 0) << fixed.err;
  const nlohmann::json fm = nlohmann::json::parse(fixed.out)["stacks"][0]["models"][0];
  EXPECT_EQ(fm["layers"][1]["plan"], "pad-input-channels c=16->17") << fm.dump();
  EXPECT_EQ(fm["status"], "unknown (its bad layers have exact rewrites)") << fm.dump();

  // With training, the layers' backward problems are unknown: no layer is OK any more.
  CliResult t = Report({"--stack", *base_id_, "--model", layers, "--training"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("stem  UNKNOWN"), std::string::npos) << t.out;
}

TEST_F(ReportCli, WritesANewFileAndNeverReplacesOne) {
  const std::string out = *dir_ + "/report.md";
  CliResult first = Report({"--format", "markdown", "-o", out});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_TRUE(std::filesystem::exists(out));
  const auto size = std::filesystem::file_size(out);
  CliResult again = Report({"--format", "html", "-o", out});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
  EXPECT_EQ(std::filesystem::file_size(out), size);
}

TEST_F(ReportCli, BadInputIsOneClearLineAndExitTwo) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--verdict", "CRASH"}, "no verdict in the store"},
      {{"--verdict", "SOMETIMES"}, "unknown verdict 'SOMETIMES'"},
      {{"--stack", "0123456789abcdef"}, "no stack 0123456789abcdef"},
      {{"--backend", "cudnn"}, "no backend cudnn"},
      {{"--format", "pdf"}, "allowed: text, markdown, json, csv, html"},
      {{"--training"}, "--training needs --model"},
      {{"--model", "/nonexistent/model.onnx"}, "/nonexistent/model.onnx"},
      {{"extra"}, "unexpected argument 'extra'"},
  };
  for (const Case& c : cases) {
    CliResult r = Report(c.args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(c.args) << r.out << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << ::testing::PrintToString(c.args) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

TEST(ReportCliStore, NoStoreAnEmptyStoreAndASingleVerdict) {
  const std::string dir = MakeTempDir("report-small");
  CliResult none = RunConvguard({"report", "--db", dir + "/absent.sqlite"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("no store at"), std::string::npos) << none.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/absent.sqlite"));

  const std::string db = dir + "/verdicts.sqlite";
  ASSERT_EQ(RunConvguard({"db", "stacks", "--db", db}).exit_code, 0);
  CliResult empty = RunConvguard({"report", "--db", db, "--format", "html"});
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.err.find("holds no verdict yet"), std::string::npos) << empty.err;
  EXPECT_TRUE(empty.out.empty()) << "an empty page presented as a result: " << empty.out;

  CliResult probe =
      RunConvguard({"probe", "n1_c3_h8_w8_k4_r3_s3_p1", "--backend", "reference", "--db", db});
  ASSERT_EQ(probe.exit_code, 0) << probe.err;
  CliResult one = RunConvguard({"report", "--db", db});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_NE(one.out.find("1 verdict of 1 problem: OK 1"), std::string::npos) << one.out;
  EXPECT_NE(one.out.find("pattern: none ("), std::string::npos) << one.out;
  EXPECT_NE(one.out.find("nothing to avoid"), std::string::npos) << one.out;
}

}  // namespace
}  // namespace convguard
