// Reading the problem sources of `sweep` and `queue add`: grids, problem lists, MIOpen logs.
#include "cli/problem_flags.h"

#include <cstdio>
#include <string>
#include <vector>

#include "convguard/problem_source.h"
#include "convguard/text_forms.h"

namespace convguard::cli {
namespace {

// The most unread lines of one log listed one by one; the rest are counted.
constexpr size_t kMaxUnreadShown = 100;
// How much of the error that made a list a log is quoted (it quotes the whole line).
constexpr size_t kMaxListErrorShown = 200;

// "log FILE: N commands of M distinct problems (F from Find, R executions); K lines
// skipped (O other MIOpenDriver commands); U lines unread:", then each unread line's number
// and reason (the first kMaxUnreadShown of them).
void ReportLog(const MiopenLog& log, const char* who) {
  int64_t find = 0;
  int64_t run = 0;
  for (const LoggedProblem& lp : log.problems) {
    find += lp.find_lines;
    run += lp.run_lines;
  }
  std::string skipped = std::to_string(log.skipped_lines) + " lines skipped";
  if (log.other_driver_commands > 0) {
    skipped += " (" + std::to_string(log.other_driver_commands) + " other MIOpenDriver commands)";
  }
  std::fprintf(stderr,
               "%s: log %s: %zu commands of %zu distinct problems (%lld from Find, "
               "%lld executions); %s; %zu lines unread%s\n",
               who, log.origin.c_str(), log.calls.size(), log.problems.size(),
               static_cast<long long>(find), static_cast<long long>(run), skipped.c_str(),
               log.unread.size(), log.unread.empty() ? "" : ":");
  for (size_t i = 0; i < log.unread.size() && i < kMaxUnreadShown; ++i) {
    std::fprintf(stderr, "%s:   line %lld: %s\n", who, static_cast<long long>(log.unread[i].line),
                 log.unread[i].reason.c_str());
  }
  if (log.unread.size() > kMaxUnreadShown) {
    std::fprintf(stderr, "%s:   ... and %zu more unread lines\n", who,
                 log.unread.size() - kMaxUnreadShown);
  }
}

// `path` read as an MIOpen log after it failed as a problem list with `list_error`: only
// when that failure was a line the list could not read (not a missing file or include)
// and the file looks like a log. Otherwise an error (the caller reports list_error).
StatusOr<MiopenLog> ReadLogInsteadOfList(const std::string& path, const Status& list_error) {
  if (list_error.code() != StatusCode::kInvalidArgument &&
      list_error.code() != StatusCode::kUnsupported &&
      list_error.code() != StatusCode::kOutOfRange) {
    return list_error;
  }
  // ReadMiopenLog succeeds exactly when LooksLikeMiopenLog holds for the file's bytes.
  return ReadMiopenLog(path);
}

}  // namespace

bool ReadProblemSourceFlags(const FlagParser& flags, const char* who, std::vector<ProbeJob>& jobs) {
  const std::string algo = flags.Get("--algo");
  for (const std::string& spec : flags.GetAll("--grid")) {
    StatusOr<GridExpansion> grid = ExpandGrid(spec);
    if (!grid.ok()) {
      std::fprintf(stderr, "%s: --grid '%s': %s\n", who, spec.c_str(),
                   grid.status().message().c_str());
      return false;
    }
    if (grid->skipped_invalid > 0) {
      std::fprintf(stderr, "%s: --grid: skipped %lld invalid combinations (first: %s)\n", who,
                   static_cast<long long>(grid->skipped_invalid),
                   grid->first_skipped_reason.c_str());
    }
    for (const Problem& p : grid->problems) jobs.push_back({p, algo});
  }
  for (const std::string& path : flags.GetAll("--list")) {
    StatusOr<std::vector<ListedProblem>> list = ReadProblemList(path);
    if (!list.ok()) {
      // A log is not a list: its foreign lines fail the list. Read it as the log it is,
      // saying why, so that a typo in a real list is still seen.
      if (StatusOr<MiopenLog> log = ReadLogInsteadOfList(path, list.status()); log.ok()) {
        std::string why = list.status().message();
        if (why.size() > kMaxListErrorShown) why = why.substr(0, kMaxListErrorShown - 3) + "...";
        std::fprintf(stderr,
                     "%s: --list %s is not a problem list (%s) but holds "
                     "MIOpenDriver convolution commands: reading it as an MIOpen log (--log)\n",
                     who, path.c_str(), why.c_str());
        ReportLog(*log, who);
        for (const LoggedProblem& lp : log->problems) jobs.push_back({lp.problem, algo});
        continue;
      }
      std::fprintf(stderr, "%s: --list: %s\n", who, list.status().message().c_str());
      return false;
    }
    // A line's own `algo=NAME` wins over --algo: the list says what each problem runs with.
    for (const ListedProblem& lp : *list) {
      jobs.push_back({lp.problem, lp.algorithm.empty() ? algo : lp.algorithm});
    }
  }
  for (const std::string& path : flags.GetAll("--log")) {
    StatusOr<MiopenLog> log = ReadMiopenLog(path);
    if (!log.ok()) {
      std::fprintf(stderr, "%s: --log: %s\n", who, log.status().message().c_str());
      return false;
    }
    ReportLog(*log, who);
    for (const LoggedProblem& lp : log->problems) jobs.push_back({lp.problem, algo});
  }
  return true;
}

}  // namespace convguard::cli
