#include "support/cli_runner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "os/process.h"
#include "os/system.h"

namespace convguard::testing_support {

namespace {

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

// A test binary started as a worker (by code that left the worker executable to default
// to "this executable") must not run the whole suite again inside itself: it refuses at
// once, and the caller sees a worker that ended before saying hello.
const bool kTestBinaryIsNoWorker = [] {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string program, command;
  std::getline(in, program, '\0');
  std::getline(in, command, '\0');
  if (command == "worker") {
    std::fputs(
        "this test binary is not a convguard worker: name the convguard binary as the worker "
        "executable\n",
        stderr);
    std::_Exit(2);
  }
  return true;
}();

std::string ConvguardBin() { return EnvOr("CONVGUARD_BIN", CONVGUARD_BIN_DEFAULT); }
std::string SourceDir() { return EnvOr("CONVGUARD_SOURCE_DIR", CONVGUARD_SOURCE_DIR_DEFAULT); }
std::string MisbehavingWorkerBin() {
  return EnvOr("CONVGUARD_MISBEHAVING_WORKER", CONVGUARD_MISBEHAVING_WORKER_DEFAULT);
}

CliResult RunConvguard(const std::vector<std::string>& args, double timeout_s,
                       const std::vector<std::pair<std::string, std::string>>& env) {
  std::vector<std::string> argv{ConvguardBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, timeout_s, env);
}

CliResult RunProgram(const std::vector<std::string>& argv, double timeout_s,
                     const std::vector<std::pair<std::string, std::string>>& env) {
  CliResult result;
  os::SpawnOptions options;
  options.argv = argv;
  options.env_set = env;
  options.stderr_mode = os::StderrMode::kPipe;
  StatusOr<os::ChildProcess> child = os::SpawnChild(options);
  if (!child.ok()) {
    result.err = "spawn failed: " + child.status().ToString();
    return result;
  }
  result.pid = child->pid();
  child->CloseStdin();
  const os::Deadline deadline = os::Deadline::After(
      std::chrono::duration_cast<os::Duration>(std::chrono::duration<double>(timeout_s)));
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    std::vector<int> fds;
    if (out_open) fds.push_back(child->stdout_fd());
    if (err_open) fds.push_back(child->stderr_fd());
    StatusOr<std::vector<int>> ready = os::PollReadable(fds, deadline);
    if (!ready.ok()) break;
    if (ready->empty()) {
      if (deadline.RemainingAt(os::RealClock().Now()) == os::Duration::zero()) {
        result.timed_out = true;
        break;
      }
      continue;
    }
    for (int fd : *ready) {
      uint8_t buf[65536];
      StatusOr<os::IoResult> r = os::ReadSome(fd, buf, os::Deadline::After(os::Duration::zero()));
      std::string& sink = fd == child->stdout_fd() ? result.out : result.err;
      bool& open = fd == child->stdout_fd() ? out_open : err_open;
      if (!r.ok() || r->eof()) {
        open = false;
      } else if (r->data()) {
        sink.append(reinterpret_cast<const char*>(buf), r->bytes);
      }
    }
  }
  StatusOr<os::ExitInfo> exit = result.timed_out ? child->KillAndReap(std::chrono::seconds(5))
                                                 : child->WaitExit(std::chrono::seconds(30));
  if (exit.ok() && exit->exited()) {
    result.exited = true;
    result.exit_code = exit->exit_code;
  } else if (exit.ok() && exit->signaled()) {
    result.signal = exit->signal;
  }
  return result;
}

namespace {

// The folders MakeTempDir made, removed when the test program ends (a test's models,
// stores and logs add up to gigabytes over many runs), unless $CONVGUARD_KEEP_TEST_DIRS is
// set (to look at them after a failure). Only the process that made them removes them: a
// death test's child that exits runs static destructors too.
class TempDirs {
 public:
  ~TempDirs() {
    if (os::CurrentPid() != owner_ || os::GetEnv("CONVGUARD_KEEP_TEST_DIRS")) return;
    std::error_code ignored;
    for (const std::filesystem::path& dir : dirs_) std::filesystem::remove_all(dir, ignored);
  }
  void Add(const std::filesystem::path& dir) {
    std::lock_guard<std::mutex> lock(mutex_);
    dirs_.push_back(dir);
  }

 private:
  const int owner_ = os::CurrentPid();
  std::mutex mutex_;
  std::vector<std::filesystem::path> dirs_;
};

TempDirs& MadeDirs() {
  static TempDirs dirs;
  return dirs;
}

}  // namespace

std::string MakeTempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) /
                                    ("convguard-" + tag + "-" + std::to_string(os::CurrentPid()) +
                                     "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  MadeDirs().Add(dir);
  return dir.string();
}

std::string WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return path;
}

ProcessScan FindProcesses(const std::string& needle) {
  ProcessScan scan;
  const int self = os::CurrentPid();
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const int pid = std::atoi(name.c_str());
    if (pid == self) continue;
    std::ifstream cmd(entry.path() / "cmdline", std::ios::binary);
    std::stringstream text;
    text << cmd.rdbuf();
    std::string cmdline = text.str();
    for (char& c : cmdline) {
      if (c == '\0') c = ' ';
    }
    std::ifstream stat(entry.path() / "stat");
    std::string stat_line;
    std::getline(stat, stat_line);
    const size_t close = stat_line.rfind(')');
    const char state =
        close != std::string::npos && close + 2 < stat_line.size() ? stat_line[close + 2] : '?';
    // A zombie has an empty cmdline; match it by its parent being us or by comm.
    if (state == 'Z') {
      if (stat_line.find("(convguard)") != std::string::npos) scan.zombies.push_back(pid);
      continue;
    }
    if (cmdline.find(needle) != std::string::npos) scan.live.push_back(pid);
  }
  return scan;
}

}  // namespace convguard::testing_support
