// convguard pattern: where a stack's failures live, learned from its verdicts and printed
// as fault rules (convguard/pattern.h).
#include "convguard/pattern.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/model_common.h"
#include "cli/pattern_flags.h"
#include "cli/probe_common.h"
#include "convguard/exit_status.h"
#include "convguard/store.h"

namespace convguard::cli {
namespace {

std::vector<FlagSpec> PatternCommandFlagSpecs() {
  std::vector<FlagSpec> specs = {
      {"--help", "", "show this help", false, "-h"},
      {"--db", "PATH|CONNINFO",
       "the store: an SQLite file or a PostgreSQL connection string (default: $CONVGUARD_DB "
       "or ~/.local/share/convguard/verdicts.sqlite)"},
      DbWaitFlagSpec(),
      {"--stack", "ID", "the stack to learn (default: the store's only stack)"},
      {"--no-algo", "", "do not split on the algorithm"},
      {"--json", "", "print the pattern as JSON (with the rules text)"},
      {"--output", "FILE", "also write the rules file to FILE (never over an existing one)", false,
       "-o"},
  };
  for (FlagSpec& f : PatternFlagSpecs()) specs.push_back(std::move(f));
  return specs;
}

std::string Usage(const FlagParser& flags) {
  return "usage: convguard pattern [--stack ID] [options]\n"
         "\n"
         "Learns where a stack's failures live from its verified verdicts: a shallow\n"
         "decision tree over the problem's fields and derived features (c*k, h*w, oh*ow,\n"
         "powers of two, divisibility by 2/4/8/16, kernel, stride, dilation, groups, dtype,\n"
         "layout, direction, algorithm), printed in the fault-rules language: `spin when\n"
         "...` where problems HANG, `segv` where they CRASH, `wrong(0.5)` where WRONG, and\n"
         "so on. Each rule says how many verdicts it covers and how many of those it gets\n"
         "wrong, on the verdicts learned from and on a held-out part (problems chosen by a\n"
         "hash); the counts are measured by parsing the printed rules. The file works with\n"
         "--inject on the reference backend, which reproduces the pattern.\n"
         "\n"
         "options:\n" +
         flags.OptionsHelp() +
         "\nexit status: 0 learned, 1 failure, 2 bad input (no store, no such stack, too few\n"
         "verdicts).\n";
}

int Fail(const Status& s) {
  std::fprintf(stderr, "convguard pattern: %s\n", s.message().c_str());
  return ExitStatusForError(s);
}

}  // namespace

int PatternMain(const Args& args) {
  FlagParser flags("pattern", PatternCommandFlagSpecs());
  if (Status s = flags.Parse(args); !s.ok()) return Fail(s);
  if (flags.Has("--help")) {
    std::fputs(Usage(flags).c_str(), stdout);
    return kExitOk;
  }
  if (!flags.positionals().empty())
    return Fail(Status::InvalidArgument("unexpected argument '" + flags.positionals().front() +
                                        "' (pattern reads the store; see --help)"));
  PatternOptions options;
  if (Status st = PatternOptionsFromFlags(flags, options); !st.ok()) return Fail(st);
  options.use_algorithm = !flags.Has("--no-algo");
  const std::string out = flags.Has("--output") ? flags.Get("--output") : "";
  std::error_code ec;
  if (!out.empty() && std::filesystem::exists(out, ec))
    return Fail(Status::InvalidArgument("'" + out + "' exists; choose another --output"));
  const std::string path = StorePathFromFlags(flags);
  // A server's store is opened (and created) as any other; only a file can be missing.
  if (!IsPostgresStoreTarget(path) && !std::filesystem::exists(path, ec))
    return Fail(Status::NotFound("no store at '" + path + "' (probe or sweep first, or --db)"));
  StatusOr<std::unique_ptr<Store>> store = OpenStoreFromFlags(flags);
  if (!store.ok()) return Fail(store.status());
  std::string stack;
  if (flags.Has("--stack")) {
    stack = flags.Get("--stack");
  } else {
    StatusOr<std::vector<StackFingerprint>> stacks = (*store)->ListStacks();
    if (!stacks.ok()) return Fail(stacks.status());
    if (stacks->empty())
      return Fail(Status::InvalidArgument("the store '" + path + "' holds no stack yet"));
    if (stacks->size() > 1) {
      std::string ids;
      for (const StackFingerprint& s : *stacks) ids += (ids.empty() ? "" : ", ") + s.Id();
      return Fail(Status::InvalidArgument("the store holds " + std::to_string(stacks->size()) +
                                          " stacks; choose one with --stack (" + ids + ")"));
    }
    stack = stacks->front().Id();
  }
  VerdictFilter filter;
  filter.stack_id = stack;
  StatusOr<std::vector<Verdict>> verdicts = (*store)->ListVerdicts(filter);
  if (!verdicts.ok()) return Fail(verdicts.status());
  if (verdicts->empty())
    return Fail(Status::InvalidArgument("the store has no verdict of stack '" + stack +
                                        "' (see convguard db stacks)"));
  StatusOr<Pattern> pattern = LearnPattern(*verdicts, options);
  if (!pattern.ok()) return Fail(pattern.status());
  const std::string text = pattern->RulesText();
  if (!out.empty()) {
    std::ofstream file(out, std::ios::binary | std::ios::trunc);
    file << text;
    if (!file.flush()) return Fail(Status::Internal("cannot write '" + out + "'"));
  }
  std::fputs((flags.Has("--json") ? pattern->ToJson() + "\n" : text).c_str(), stdout);
  return kExitOk;
}

}  // namespace convguard::cli
