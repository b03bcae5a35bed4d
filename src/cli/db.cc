// convguard db: look at, export and import the verdict store, and move its contents to and
// from another store (push and pull: db_transfer.cc).
#include <algorithm>
#include <climits>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "cli/db_transfer.h"
#include "cli/flags.h"
#include "cli/probe_common.h"
#include "convguard/exit_status.h"
#include "convguard/store.h"
#include "convguard/text_forms.h"
#include "probe/deadline_policy.h"

namespace convguard::cli {
namespace {

constexpr const char* kDbUsage =
    "usage: convguard db show [--stack ID] [--verdict KIND] [--problem P] [--limit N] [--long]\n"
    "       convguard db stacks\n"
    "       convguard db sequences [--stack ID] [--long]   (what 'convguard replay' found)\n"
    "       convguard db export [FILE]      (JSON Lines; '-' or nothing: stdout)\n"
    "       convguard db import FILE [--replace]\n"
    "       convguard db push TARGET [--stack ID] [--prefer-incoming] [--long]\n"
    "       convguard db pull SOURCE [--stack ID] [--prefer-incoming] [--long]\n"
    "\n"
    "The store is --db PATH, else $CONVGUARD_DB, else ~/.local/share/convguard/verdicts.sqlite.\n"
    "PATH may be a PostgreSQL connection string (postgresql://HOST/DB, service=NAME, ...;\n"
    "docs/store-postgresql.md).\n"
    "Import checks every line before writing any; verdicts already stored are kept unless\n"
    "--replace is given (replaced ones stay in the history). Nothing is lost either way.\n"
    "\n"
    "push copies the store's stacks, verdicts, attempts (history) and sequence verdicts into\n"
    "TARGET; pull copies SOURCE's into the store. TARGET and SOURCE are another store: a\n"
    "PostgreSQL connection string or an SQLite file. What is already there is not copied\n"
    "again, so a second push adds nothing. When both hold different verdicts for one key\n"
    "(a conflict), the destination keeps its own current and the incoming one in its\n"
    "history (outcome \"conflict\", recorded once); --prefer-incoming makes the incoming one\n"
    "current instead (the other goes to the history). Conflicts are listed on stderr and\n"
    "are not an error (exit status 0). One transaction per batch: after an error, what was\n"
    "committed stays, and the report says how much. Claims are not copied.\n"
    "\n"
    "options:\n";

std::vector<FlagSpec> DbFlagSpecs() {
  return {
      {"--help", "", "show this help", false, "-h"},
      {"--db", "PATH|CONNINFO", "the store: an SQLite file or a PostgreSQL connection string"},
      DbWaitFlagSpec(),
      {"--stack", "ID", "only this stack (show, sequences, export, push, pull)"},
      {"--verdict", "KIND", "only this verdict (OK, SLOW, HANG, CRASH, WRONG, ...)"},
      {"--problem", "P", "only this problem (any text form)"},
      {"--limit", "N", "at most N rows"},
      {"--long", "", "show, sequences: every record with its evidence; push, pull: every conflict"},
      {"--replace", "", "import: replace stored verdicts that differ"},
      {"--prefer-incoming", "",
       "push, pull: on a conflict make the incoming verdict current (the other to history)"},
  };
}

StatusOr<VerdictFilter> FilterFromFlags(const FlagParser& f) {
  VerdictFilter filter;
  if (f.Has("--stack")) filter.stack_id = f.Get("--stack");
  if (f.Has("--verdict")) {
    CG_ASSIGN_OR_RETURN(VerdictKind k, ParseVerdictName(f.Get("--verdict")));
    filter.kind = k;
  }
  if (f.Has("--problem")) {
    CG_ASSIGN_OR_RETURN(Problem p, ParseProblem(f.Get("--problem")));
    filter.problem = ToCanonical(p);
  }
  if (f.Has("--limit")) {
    CG_ASSIGN_OR_RETURN(filter.limit, ParseIntFlag("--limit", f.Get("--limit"), 1, INT64_MAX));
  }
  return filter;
}

int Fail(const std::string& what, const Status& s) {
  std::fprintf(stderr, "convguard db %s: %s\n", what.c_str(), s.message().c_str());
  return s.code() == StatusCode::kInvalidArgument ? kExitBadInput : kExitFailure;
}

}  // namespace

int DbMain(const Args& args) {
  FlagParser flags("db", DbFlagSpecs());
  if (Status s = flags.Parse(args); !s.ok()) return Fail("", s);
  if (flags.Has("--help") || flags.positionals().empty()) {
    std::fputs(kDbUsage, flags.Has("--help") ? stdout : stderr);
    std::fputs(flags.OptionsHelp().c_str(), flags.Has("--help") ? stdout : stderr);
    return flags.Has("--help") ? kExitOk : kExitBadInput;
  }
  const std::string action = flags.positionals().front();
  const std::vector<std::string> rest(flags.positionals().begin() + 1, flags.positionals().end());
  if (action != "show" && action != "stacks" && action != "sequences" && action != "export" &&
      action != "import" && action != "push" && action != "pull") {
    std::fprintf(stderr,
                 "convguard db: unknown action '%s' (allowed: show, stacks, sequences, export, "
                 "import, push, pull)\n",
                 action.c_str());
    return kExitBadInput;
  }
  if (action == "push" || action == "pull") return DbTransferMain(flags, action, rest);
  if (flags.Has("--prefer-incoming")) {
    std::fprintf(stderr,
                 "convguard db %s: --prefer-incoming applies to push and pull only (import "
                 "has --replace)\n",
                 action.c_str());
    return kExitBadInput;
  }
  StatusOr<VerdictFilter> filter = FilterFromFlags(flags);
  if (!filter.ok()) return Fail(action, filter.status());
  if (action == "import" && rest.size() != 1) {
    std::fprintf(stderr,
                 "convguard db import: give exactly one FILE (JSON Lines from 'db export')\n");
    return kExitBadInput;
  }
  std::string import_text;
  if (action == "import") {
    std::ifstream in(rest.front(), std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "convguard db import: cannot read '%s'\n", rest.front().c_str());
      return kExitBadInput;
    }
    std::ostringstream text;
    text << in.rdbuf();
    import_text = text.str();
  }
  StatusOr<std::unique_ptr<Store>> store = OpenStoreFromFlags(flags);
  if (!store.ok()) return Fail(action, store.status());
  if (!*store) {
    std::fprintf(stderr, "convguard db: --no-store leaves nothing to show\n");
    return kExitBadInput;
  }
  Store& db = **store;

  if (action == "stacks") {
    StatusOr<std::vector<StackFingerprint>> stacks = db.ListStacks();
    if (!stacks.ok()) return Fail(action, stacks.status());
    for (const StackFingerprint& s : *stacks) {
      std::printf("%s  %s\n", s.Id().c_str(), s.Summary().c_str());
      // The deadline model a sweep of this stack learns, from the stack's OK verdicts in
      // the order they were recorded (probe/deadline_policy.h).
      VerdictFilter ok;
      ok.stack_id = s.Id();
      ok.kind = VerdictKind::kOk;
      StatusOr<std::vector<Verdict>> verdicts = db.ListVerdicts(ok);
      if (!verdicts.ok()) return Fail(action, verdicts.status());
      std::stable_sort(verdicts->begin(), verdicts->end(), [](const Verdict& a, const Verdict& b) {
        return a.recorded_at < b.recorded_at;
      });
      probe::DeadlinePolicy model{DeadlineOptions{}};
      int64_t observed = 0;
      for (const Verdict& v : *verdicts) {
        StatusOr<Problem> p = ParseProblem(v.problem);
        if (!p.ok() || v.time_ms_median <= 0) continue;
        model.Observe(*p, v.algorithm, v.time_ms_median);
        ++observed;
      }
      if (observed > 0)
        std::printf("  deadline model, learned from %lld OK verdicts:\n%s",
                    static_cast<long long>(observed), model.Describe(false).c_str());
    }
    return kExitOk;
  }
  if (action == "sequences") {
    StatusOr<std::vector<SequenceVerdict>> sequences = db.ListSequenceVerdicts(filter->stack_id);
    if (!sequences.ok()) return Fail(action, sequences.status());
    for (const SequenceVerdict& v : *sequences) {
      std::printf("#%-4lld %-11s %s %lld/%lld calls  %s", static_cast<long long>(v.id),
                  std::string(VerdictName(v.kind)).c_str(), v.stack_id.c_str(),
                  static_cast<long long>(v.calls_run), static_cast<long long>(v.calls),
                  v.source.c_str());
      if (v.failed_at >= 0) {
        std::printf("  at call %lld: %s '%s'", static_cast<long long>(v.failed_at + 1),
                    v.failed_problem.c_str(), v.failed_algorithm.c_str());
      }
      if (!v.minimal.empty()) std::printf("  minimal: %zu calls", v.minimal.size());
      std::printf("%s\n", v.emulated ? " (emulated)" : "");
      if (!flags.Has("--long")) continue;
      std::printf("  recorded %s by convguard %s; %.2f s\n", v.recorded_at.c_str(),
                  v.tool_version.c_str(), v.elapsed_ms / 1000.0);
      if (!v.message.empty()) std::printf("  evidence: %s\n", v.message.c_str());
      for (const ProblemAlone& a : v.alone) {
        std::printf("  alone: %-11s %s '%s'\n", std::string(VerdictName(a.kind)).c_str(),
                    a.problem.c_str(), a.algorithm.c_str());
      }
      if (!v.minimal.empty()) {
        std::printf("  minimal sequence (%s):\n", v.minimal_note.c_str());
        for (const std::string& call : v.minimal) std::printf("    %s\n", call.c_str());
      }
      std::printf("  repro: %s\n", v.repro.c_str());
    }
    std::fprintf(stderr, "%zu sequence verdicts\n", sequences->size());
    return kExitOk;
  }
  if (action == "show") {
    StatusOr<std::vector<Verdict>> verdicts = db.ListVerdicts(*filter);
    if (!verdicts.ok()) return Fail(action, verdicts.status());
    for (const Verdict& v : *verdicts) {
      if (flags.Has("--long")) {
        StatusOr<std::optional<StackFingerprint>> stack = db.GetStack(v.stack_id);
        const StackFingerprint* sp = stack.ok() && stack->has_value() ? &**stack : nullptr;
        std::printf("%s\n", FormatVerdict(v, sp).c_str());
      } else {
        char time[32] = "-";
        if (v.time_ms_median > 0) std::snprintf(time, sizeof time, "%.3g ms", v.time_ms_median);
        std::printf("%-11s %-10s %s %s %s%s\n", std::string(VerdictName(v.kind)).c_str(), time,
                    v.stack_id.c_str(), v.problem.c_str(), v.algorithm.c_str(),
                    v.emulated ? " (emulated)" : "");
      }
    }
    std::fprintf(stderr, "%zu verdicts\n", verdicts->size());
    return kExitOk;
  }
  if (action == "export") {
    StatusOr<std::string> text = db.ExportJsonLines(*filter);
    if (!text.ok()) return Fail(action, text.status());
    if (rest.empty() || rest.front() == "-") {
      std::fwrite(text->data(), 1, text->size(), stdout);
      return kExitOk;
    }
    // Never overwrite a user's file silently.
    if (std::ifstream(rest.front()).good()) {
      std::fprintf(stderr,
                   "convguard db export: '%s' exists; choose another name or remove it first\n",
                   rest.front().c_str());
      return kExitBadInput;
    }
    std::ofstream out(rest.front(), std::ios::binary);
    out << *text;
    if (!out) {
      std::fprintf(stderr, "convguard db export: could not write '%s'\n", rest.front().c_str());
      return kExitFailure;
    }
    return kExitOk;
  }
  StatusOr<ImportReport> report = db.ImportJsonLines(import_text, flags.Has("--replace"));
  if (!report.ok()) return Fail(action, report.status());
  std::printf(
      "imported: %lld new, %lld replaced, %lld kept (differing, not replaced), %lld identical\n",
      static_cast<long long>(report->inserted), static_cast<long long>(report->replaced),
      static_cast<long long>(report->kept_existing), static_cast<long long>(report->identical));
  return kExitOk;
}

}  // namespace convguard::cli
