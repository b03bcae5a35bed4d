// The command line remembers which stack a backend presents across runs, and asks a worker
// again when anything the answer depends on changes: convguard itself, a steering
// variable, the fault rules' text; CONVGUARD_CACHE_DIR=off turns it off.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "support/cli_runner.h"

namespace convguard {
namespace {

namespace fs = std::filesystem;
using testing_support::CliResult;
using testing_support::MakeTempDir;
using testing_support::RunProgram;
using testing_support::SourceDir;
using testing_support::WriteFile;

using Env = std::vector<std::pair<std::string, std::string>>;

// The "stack identity: ..." line --verbose prints.
std::string IdentityLine(const CliResult& r) {
  const size_t at = r.err.find("stack identity: ");
  if (at == std::string::npos) return "";
  return r.err.substr(at, r.err.find('\n', at) - at);
}

class IdentityCacheCli : public ::testing::Test {
 protected:
  void SetUp() override {
    // A copy of convguard, so that the test can change it: the native worker is the
    // convguard executable itself, so the copy is a file the stack depends on.
    dir_ = MakeTempDir("identity-cli");
    bin_ = dir_ + "/convguard";
    fs::copy_file(testing_support::ConvguardBin(), bin_);
    fs::permissions(bin_, fs::perms::owner_all);
    cache_ = dir_ + "/cache";
  }

  CliResult Scan(const Env& extra = {}, const std::vector<std::string>& more = {}) {
    std::vector<std::string> argv = {bin_,         "scan",     log_, "--backend", "emulated-rdna1",
                                     "--no-store", "--verbose"};
    argv.insert(argv.end(), more.begin(), more.end());
    Env env = {{"CONVGUARD_CACHE_DIR", cache_}};
    env.insert(env.end(), extra.begin(), extra.end());
    return RunProgram(argv, 120.0, env);
  }

  std::string dir_, bin_, cache_;
  std::string log_ = SourceDir() + "/tests/inputs/miopen/pytorch_tinynet_train.log";
};

TEST_F(IdentityCacheCli, TheSecondRunUsesTheRememberedStack) {
  const CliResult first = Scan();
  ASSERT_TRUE(first.exited) << first.err;
  EXPECT_EQ(IdentityLine(first), "stack identity: asked a worker (nothing remembered yet)")
      << first.err;
  const CliResult second = Scan();
  EXPECT_EQ(IdentityLine(second).rfind("stack identity: remembered in " + cache_ + "/stacks-", 0),
            0u)
      << second.err;
  // The same stack, so the same report.
  EXPECT_EQ(second.exit_code, first.exit_code);
  EXPECT_EQ(second.out, first.out);
}

TEST_F(IdentityCacheCli, AChangedConvguardIsAskedAgain) {
  ASSERT_TRUE(Scan().exited);
  fs::last_write_time(bin_, fs::last_write_time(bin_) + std::chrono::seconds(2));
  const CliResult again = Scan();
  EXPECT_EQ(IdentityLine(again), "stack identity: asked a worker (" + bin_ + " changed)")
      << again.err;
  EXPECT_NE(IdentityLine(Scan()).find("remembered in"), std::string::npos);
}

TEST_F(IdentityCacheCli, ASteeringVariableIsPartOfTheStack) {
  ASSERT_TRUE(Scan().exited);
  const CliResult knob = Scan({{"MIOPEN_FIND_MODE", "1"}});
  EXPECT_EQ(IdentityLine(knob), "stack identity: asked a worker (nothing remembered yet)")
      << knob.err;
  // Each environment has its own entry.
  EXPECT_NE(IdentityLine(Scan()).find("remembered in"), std::string::npos);
  EXPECT_NE(IdentityLine(Scan({{"MIOPEN_FIND_MODE", "1"}})).find("remembered in"),
            std::string::npos);
}

TEST_F(IdentityCacheCli, FaultRulesEditedInPlaceAreAskedAgain) {
  const std::string rules = WriteFile(dir_ + "/rules", "spin when k == 3\n");
  ASSERT_TRUE(Scan({}, {"--inject", rules}).exited);
  EXPECT_NE(IdentityLine(Scan({}, {"--inject", rules})).find("remembered in"), std::string::npos);
  WriteFile(rules, "spin when k == 5\n");  // same path, same size, other rules
  const CliResult edited = Scan({}, {"--inject", rules});
  EXPECT_EQ(IdentityLine(edited), "stack identity: asked a worker (nothing remembered yet)")
      << edited.err;
}

TEST_F(IdentityCacheCli, OffRemembersNothing) {
  const CliResult off = Scan({{"CONVGUARD_CACHE_DIR", "off"}});
  ASSERT_TRUE(off.exited) << off.err;
  EXPECT_EQ(IdentityLine(off), "stack identity: asked a worker (the identity cache is off)")
      << off.err;
  EXPECT_FALSE(fs::exists(cache_));
}

TEST_F(IdentityCacheCli, AnUnwritableCacheStillScans) {
  WriteFile(cache_, "a file where the cache folder should be");
  const CliResult r = Scan();
  ASSERT_TRUE(r.exited) << r.err;
  EXPECT_NE(IdentityLine(r).find("not remembered: cannot create the identity cache folder"),
            std::string::npos)
      << r.err;
  const CliResult off = Scan({{"CONVGUARD_CACHE_DIR", "off"}});
  EXPECT_EQ(r.exit_code, off.exit_code);
  EXPECT_EQ(r.out, off.out);
}

}  // namespace
}  // namespace convguard
