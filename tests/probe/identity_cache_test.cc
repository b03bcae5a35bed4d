// The identity cache (src/probe/identity_cache.h): an answer is used only while its key and
// every file it depends on are unchanged; anything else is a miss that says why.
#include "probe/identity_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "convguard/probe.h"
#include "os/system.h"
#include "support/cli_runner.h"

namespace convguard::probe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing_support::MakeTempDir;
using testing_support::WriteFile;

struct Fixture {
  std::string dir = MakeTempDir("identity-cache");
  std::string lib = WriteFile(dir + "/libvendor.so", "vendor library, version 1");
  std::string driver = WriteFile(dir + "/libdriver.so", "driver 550");
  IdentityCache cache{dir + "/cache"};
  json value = {{"answer", 42}};
};

TEST(IdentityCache, ARememberedAnswerIsFoundWhileNothingChanged) {
  Fixture f;
  std::string why;
  EXPECT_FALSE(f.cache.Find("stacks", "key", &why).has_value());
  EXPECT_EQ(why, "nothing remembered yet");
  ASSERT_TRUE(f.cache.Remember("stacks", "key", f.value, {f.lib, f.driver}).ok());
  EXPECT_TRUE(fs::exists(f.cache.EntryPath("stacks", "key")));
  auto found = f.cache.Find("stacks", "key", &why);
  ASSERT_TRUE(found.has_value()) << why;
  EXPECT_EQ(*found, f.value);
  // Another kind or another key is another entry.
  EXPECT_FALSE(f.cache.Find("torch-python", "key").has_value());
  EXPECT_FALSE(f.cache.Find("stacks", "other key").has_value());
}

TEST(IdentityCache, AChangedFileIsAMissNamingIt) {
  Fixture f;
  ASSERT_TRUE(f.cache.Remember("stacks", "key", f.value, {f.lib, f.driver}).ok());
  WriteFile(f.lib, "vendor library, version 10");  // another size
  std::string why;
  EXPECT_FALSE(f.cache.Find("stacks", "key", &why).has_value());
  EXPECT_EQ(why, f.lib + " changed");

  // Same size, new modification time: a rebuilt library of the same length.
  ASSERT_TRUE(f.cache.Remember("stacks", "key", f.value, {f.lib, f.driver}).ok());
  ASSERT_TRUE(f.cache.Find("stacks", "key").has_value());
  fs::last_write_time(f.driver, fs::last_write_time(f.driver) + std::chrono::seconds(1));
  EXPECT_FALSE(f.cache.Find("stacks", "key", &why).has_value());
  EXPECT_EQ(why, f.driver + " changed");

  ASSERT_TRUE(f.cache.Remember("stacks", "key", f.value, {f.lib, f.driver}).ok());
  fs::remove(f.lib);
  EXPECT_FALSE(f.cache.Find("stacks", "key", &why).has_value());
  EXPECT_EQ(why, f.lib + " is gone");
}

TEST(IdentityCache, ADamagedEntryIsAMissAndIsReplaced) {
  Fixture f;
  ASSERT_TRUE(f.cache.Remember("stacks", "key", f.value, {f.lib}).ok());
  const std::string entry = f.cache.EntryPath("stacks", "key");
  for (const std::string& damage :
       {std::string("{\"version\":1,\"key\":\"key\""), std::string("[]"), std::string(""),
        std::string("{\"version\":1,\"key\":\"key\",\"value\":1,\"files\":[[\"x\"]]}")}) {
    WriteFile(entry, damage);
    std::string why;
    EXPECT_FALSE(f.cache.Find("stacks", "key", &why).has_value()) << damage;
    EXPECT_NE(why.find("is damaged"), std::string::npos) << why;
  }
  ASSERT_TRUE(f.cache.Remember("stacks", "key", f.value, {f.lib}).ok());
  EXPECT_TRUE(f.cache.Find("stacks", "key").has_value());
}

TEST(IdentityCache, AnEntryOfAnotherKeyWithTheSameFileIsNotUsed) {
  // A hash collision (or an entry copied by hand) must not answer for another key.
  Fixture f;
  ASSERT_TRUE(f.cache.Remember("stacks", "key one", f.value, {f.lib}).ok());
  fs::copy_file(f.cache.EntryPath("stacks", "key one"), f.cache.EntryPath("stacks", "key two"));
  std::string why;
  EXPECT_FALSE(f.cache.Find("stacks", "key two", &why).has_value());
  EXPECT_EQ(why, "the environment or the options changed");
}

TEST(IdentityCache, AnEmptyFolderRemembersNothing) {
  IdentityCache off("");
  EXPECT_FALSE(off.enabled());
  EXPECT_TRUE(off.Remember("stacks", "key", json(1), {}).ok());
  std::string why;
  EXPECT_FALSE(off.Find("stacks", "key", &why).has_value());
  EXPECT_EQ(why, "the identity cache is off");
}

TEST(IdentityCache, AFolderThatCannotBeMadeIsAnErrorForTheLogOnly) {
  Fixture f;
  const std::string file = WriteFile(f.dir + "/not-a-folder", "x");
  IdentityCache blocked(file + "/cache");
  Status s = blocked.Remember("stacks", "key", f.value, {f.lib});
  EXPECT_EQ(s.code(), StatusCode::kIOError);
  EXPECT_FALSE(blocked.Find("stacks", "key").has_value());
}

// Sets or unsets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name), old_(os::GetEnv(name)) {
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(IdentityCache, TheDefaultFolderFollowsTheEnvironment) {
  ScopedEnv home("HOME", "/home/someone");
  {
    ScopedEnv dir("CONVGUARD_CACHE_DIR", "/chosen");
    ScopedEnv xdg("XDG_CACHE_HOME", "/xdg");
    EXPECT_EQ(DefaultIdentityCacheDir(), "/chosen");
  }
  {
    ScopedEnv dir("CONVGUARD_CACHE_DIR", "off");
    EXPECT_EQ(DefaultIdentityCacheDir(), "");
  }
  ScopedEnv dir("CONVGUARD_CACHE_DIR", nullptr);
  {
    ScopedEnv xdg("XDG_CACHE_HOME", "/xdg");
    EXPECT_EQ(DefaultIdentityCacheDir(), "/xdg/convguard");
  }
  ScopedEnv xdg("XDG_CACHE_HOME", nullptr);
  EXPECT_EQ(DefaultIdentityCacheDir(), "/home/someone/.cache/convguard");
  ScopedEnv no_home("HOME", nullptr);
  EXPECT_EQ(DefaultIdentityCacheDir(), "");
}

TEST(IdentityCache, TheMachineKeyHasTheBootAndTheSteeringVariables) {
  std::string key;
  {
    ScopedEnv knob("MIOPEN_FIND_MODE", "3");
    ScopedEnv unrelated("UNRELATED_VARIABLE_FOR_THIS_TEST", "1");
    key = MachineKey();
    EXPECT_NE(key.find("boot " + os::BootId() + "\n"), std::string::npos);
    EXPECT_NE(key.find("MIOPEN_FIND_MODE=3\n"), std::string::npos);
    EXPECT_EQ(key.find("UNRELATED_VARIABLE_FOR_THIS_TEST"), std::string::npos);
  }
  ScopedEnv knob("MIOPEN_FIND_MODE", "1");
  EXPECT_NE(MachineKey(), key);
}

TEST(IdentityCache, ThisProcessMapsItsExecutableAndTheCLibrary) {
  StatusOr<std::vector<std::string>> files = os::MappedFiles();
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  StatusOr<std::string> self = os::SelfExecutablePath();
  ASSERT_TRUE(self.ok());
  EXPECT_NE(std::find(files->begin(), files->end(), *self), files->end());
  bool libc = false;
  for (const std::string& f : *files) {
    EXPECT_EQ(f.front(), '/') << f;
    EXPECT_FALSE(f.starts_with("/dev/")) << f;
    libc = libc || fs::path(f).filename().string().starts_with("libc.so");
  }
  EXPECT_TRUE(libc);
  EXPECT_FALSE(os::BootId().empty()) << "Linux says its boot id in /proc";
}

}  // namespace
}  // namespace convguard::probe
