// The exit-status table: verdict statuses, and the Python worker's statuses held to the
// C++ worker's.
#include "convguard/exit_status.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "support/cli_runner.h"

namespace convguard {
namespace {

TEST(ExitStatus, EveryVerdictHasItsOwnStatusAndOnlyOkIsZero) {
  const std::map<VerdictKind, int> expected = {
      {VerdictKind::kOk, 0},     {VerdictKind::kSlow, 10},        {VerdictKind::kHang, 11},
      {VerdictKind::kCrash, 12}, {VerdictKind::kWrong, 13},       {VerdictKind::kMistrusted, 14},
      {VerdictKind::kError, 15}, {VerdictKind::kUnsupported, 16}, {VerdictKind::kOom, 17}};
  std::set<int> seen;
  for (const auto& [kind, status] : expected) {
    EXPECT_EQ(ExitStatusForVerdict(kind), status) << VerdictName(kind);
    EXPECT_TRUE(seen.insert(ExitStatusForVerdict(kind)).second) << VerdictName(kind);
  }
  for (int s : {kExitFailure, kExitBadInput, kExitNoPlan, kExitInterrupted})
    EXPECT_EQ(seen.count(s), 0u) << s;
}

// The torch worker is Python and cannot include this header: its constants must say the
// same, or the engine would misread how a torch worker ended.
TEST(ExitStatus, ThePythonWorkerUsesTheSameWorkerStatuses) {
  const std::string path = testing_support::SourceDir() + "/python/convguard/worker/main.py";
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::stringstream text;
  text << in.rdbuf();
  std::map<std::string, int> python;
  const std::regex line(R"(^(EXIT_[A-Z_]+) = (\d+)$)", std::regex::multiline);
  const std::string source = text.str();
  for (auto it = std::sregex_iterator(source.begin(), source.end(), line);
       it != std::sregex_iterator(); ++it) {
    python[(*it)[1]] = std::stoi((*it)[2]);
  }
  EXPECT_EQ(python["EXIT_USAGE"], kExitBadInput);
  EXPECT_EQ(python["EXIT_BACKEND_FAILED"], kExitWorkerBackendFailed);
  EXPECT_EQ(python["EXIT_PROTOCOL_BROKEN"], kExitWorkerProtocolBroken);
  EXPECT_EQ(python["EXIT_DEVICE_BROKEN"], kExitWorkerDeviceBroken);
  EXPECT_EQ(python.size(), 4u) << "a new Python exit status belongs in convguard/exit_status.h too";
}

}  // namespace
}  // namespace convguard
