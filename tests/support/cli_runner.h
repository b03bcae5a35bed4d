// tests/support/cli_runner.h — runs the real convguard binary as a child process.
//
// Integration tests drive the CLI exactly as a user does: argv in, exit status, stdout
// and stderr out. The binary comes from $CONVGUARD_BIN (set by CMake for every test).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace convguard::testing_support {

struct CliResult {
  bool exited = false;  // false: killed by a signal (or by the runner's timeout)
  int exit_code = -1;
  int signal = 0;
  bool timed_out = false;
  std::string out;
  std::string err;
  int pid = 0;
};

// The convguard binary under test and the source tree (for tests/inputs).
std::string ConvguardBin();
std::string SourceDir();
// The protocol-breaking test worker (tests/probe/misbehaving_worker.cc).
std::string MisbehavingWorkerBin();

// Runs `convguard ARGS...`, capturing both streams, killing it after `timeout_s`.
CliResult RunConvguard(const std::vector<std::string>& args, double timeout_s = 120.0,
                       const std::vector<std::pair<std::string, std::string>>& env = {});

// Runs any program the same way: argv[0] is its path (or a name looked up on PATH).
CliResult RunProgram(const std::vector<std::string>& argv, double timeout_s = 120.0,
                     const std::vector<std::pair<std::string, std::string>>& env = {});

// A fresh empty directory under the test temp dir.
std::string MakeTempDir(const std::string& tag);

// Writes `text` to `path` (overwriting); returns path.
std::string WriteFile(const std::string& path, const std::string& text);

// Processes whose command line contains `needle`, excluding this test process: pids of
// live (non-zombie) ones and of zombies separately.
struct ProcessScan {
  std::vector<int> live;
  std::vector<int> zombies;
};
ProcessScan FindProcesses(const std::string& needle);

}  // namespace convguard::testing_support
