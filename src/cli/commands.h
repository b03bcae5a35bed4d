// Subcommands of the convguard CLI. Each takes the arguments after its own name and
// returns the process exit status (see convguard/exit_status.h). Output goes to stdout, errors to
// stderr with one line naming what is wrong and what is allowed.
#pragma once

#include <string>
#include <vector>

namespace convguard::cli {

using Args = std::vector<std::string>;

int DescribeMain(const Args& args);
int ProbeMain(const Args& args);
int SweepMain(const Args& args);
int DbMain(const Args& args);
int WorkerCommandMain(const Args& args);
int PlanMain(const Args& args);
int RunMain(const Args& args);
int ScanMain(const Args& args);
int FixMain(const Args& args);
int PatternMain(const Args& args);
int ReportMain(const Args& args);
int ReplayMain(const Args& args);
int QueueMain(const Args& args);

}  // namespace convguard::cli
