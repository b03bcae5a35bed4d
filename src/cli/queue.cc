// convguard queue: enqueue a sweep in a shared PostgreSQL store, see its progress per
// stack and host, drop one (docs/work-queue.md). Hosts work the queue with
// `convguard sweep --from-queue`.
#include "convguard/queue.h"

#include <cinttypes>
#include <climits>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/probe_common.h"
#include "cli/problem_flags.h"
#include "convguard/exit_status.h"
#include "convguard/store.h"
#include "convguard/text_forms.h"

namespace convguard::cli {
namespace {

constexpr const char* kUsage =
    "usage: convguard queue add (--grid SPEC | --list FILE | --log FILE)... [--algo NAME]\n"
    "                           [--stack ID] [--label TEXT] [--db CONNINFO]\n"
    "       convguard queue status [--db CONNINFO]\n"
    "       convguard queue drop ID [--db CONNINFO]\n"
    "\n"
    "The work queue of a shared PostgreSQL store (docs/work-queue.md). `add` enqueues a\n"
    "sweep's problems (read as `convguard sweep` reads them) for every stack that asks for\n"
    "work, or for the one stack --stack names; any number of hosts then run\n"
    "`convguard sweep --from-queue --db CONNINFO`, each probing the problems for its own\n"
    "stack. `status` shows the sweeps, each stack's progress (pending, leased, lapsed,\n"
    "done, and the verdicts), and each host's share. `drop` removes a sweep from the queue;\n"
    "verdicts already in the store stay.\n"
    "\n"
    "The store is --db CONNINFO, else $CONVGUARD_DB; it must be a PostgreSQL connection\n"
    "string (postgresql://HOST/DB, service=NAME, host=... dbname=...).\n"
    "\n"
    "options:\n";

std::vector<FlagSpec> QueueFlagSpecs() {
  return {
      {"--help", "", "show this help", false, "-h"},
      {"--db", "CONNINFO", "the shared PostgreSQL store"},
      DbWaitFlagSpec(),
      {"--grid", "SPEC", "add: a grid, e.g. 'c=3,16,32 k=16,32 hw=32..64:16 r=3 p=same'", true},
      {"--list", "FILE", "add: a problem list, one problem per line, any text form", true},
      {"--log", "FILE", "add: an MIOpen log: its distinct convolutions", true},
      {"--algo", "NAME",
       "add: algorithm for problems naming none; '*' every one (default: "
       "the backend's choice)"},
      {"--stack", "ID", "add: only this stack takes the sweep (default: every stack)"},
      {"--label", "TEXT", "add: how status names the sweep (default: its sources)"},
  };
}

int Fail(const std::string& what, const Status& s) {
  std::fprintf(stderr, "convguard queue: %s: %s\n", what.c_str(), s.message().c_str());
  return s.code() == StatusCode::kInvalidArgument ? kExitBadInput : kExitFailure;
}

std::string DefaultLabel(const FlagParser& flags) {
  std::string label;
  for (const char* source : {"--grid", "--list", "--log"}) {
    for (const std::string& v : flags.GetAll(source)) {
      if (!label.empty()) label += " ";
      label += std::string(source) + " '" + v + "'";
    }
  }
  if (flags.Has("--algo")) label += " --algo " + flags.Get("--algo");
  return label;
}

int Add(const FlagParser& flags, const std::string& target, const PostgresStoreOptions& options) {
  std::vector<ProbeJob> jobs;
  if (!ReadProblemSourceFlags(flags, "convguard queue add", jobs)) return kExitBadInput;
  if (jobs.empty()) {
    std::fprintf(stderr,
                 "convguard queue add: no problems: give --grid SPEC, --list FILE or --log FILE\n");
    return kExitBadInput;
  }
  QueueSweepSpec sweep;
  sweep.label = flags.Get("--label", DefaultLabel(flags));
  if (flags.Has("--stack")) {
    sweep.stack_id = flags.Get("--stack");
    if (sweep.stack_id->empty()) {
      std::fprintf(stderr,
                   "convguard queue add: --stack must name a stack id (see `convguard "
                   "db stacks`)\n");
      return kExitBadInput;
    }
  }
  for (const ProbeJob& j : jobs) sweep.problems.push_back({ToCanonical(j.problem), j.algorithm});
  StatusOr<std::unique_ptr<WorkQueue>> queue = OpenWorkQueue(target, options);
  if (!queue.ok()) return Fail("store", queue.status());
  StatusOr<int64_t> id = (*queue)->AddSweep(sweep);
  if (!id.ok()) return Fail("add", id.status());
  std::printf("queued sweep %lld: %zu problems for %s\n", static_cast<long long>(*id),
              sweep.problems.size(),
              sweep.stack_id ? ("stack " + *sweep.stack_id).c_str() : "every stack that joins");
  std::fprintf(stderr,
               "convguard queue add: hosts take them with: convguard sweep --from-queue --db "
               "%s\n",
               StoreTargetLabel(target).c_str());
  return kExitOk;
}

int ShowStatus(const std::string& target, const PostgresStoreOptions& options) {
  StatusOr<std::unique_ptr<WorkQueue>> queue = OpenWorkQueue(target, options);
  if (!queue.ok()) return Fail("store", queue.status());
  StatusOr<QueueStatus> status = (*queue)->GetStatus();
  if (!status.ok()) return Fail("status", status.status());
  if (status->sweeps.empty()) {
    std::printf("The queue is empty: nothing was added (convguard queue add).\n");
    return kExitOk;
  }
  std::printf(
      "## Sweeps\n\n| Sweep | Added (UTC) | For | Problems | Label |\n"
      "| --- | --- | --- | --- | --- |\n");
  for (const QueueSweepInfo& s : status->sweeps) {
    std::printf("| %lld | %s | %s | %lld | %s |\n", static_cast<long long>(s.id),
                s.created_at.c_str(), s.stack_id ? ("stack " + *s.stack_id).c_str() : "every stack",
                static_cast<long long>(s.problems), s.label.c_str());
  }
  std::map<std::string, std::string> outcomes;
  for (const auto& [stack, outcome, n] : status->outcomes) {
    std::string& text = outcomes[stack];
    text +=
        (text.empty() ? "" : ", ") + (outcome.empty() ? "?" : outcome) + ": " + std::to_string(n);
  }
  // Which stack is which, from the store's fingerprints (an id alone says little).
  std::map<std::string, std::string> summaries;
  if (StatusOr<std::unique_ptr<Store>> store = OpenPostgresStore(target, options); store.ok()) {
    if (StatusOr<std::vector<StackFingerprint>> stacks = (*store)->ListStacks(); stacks.ok()) {
      for (const StackFingerprint& s : *stacks) summaries[s.Id()] = s.Summary();
    }
  }
  std::printf("\n## Stacks\n\n");
  if (status->stacks.empty()) {
    std::printf("No stack has asked for work yet (convguard sweep --from-queue).\n");
  } else {
    std::printf(
        "| Stack | Pending | Leased | Lapsed | Done | Outcomes |\n"
        "| --- | --- | --- | --- | --- | --- |\n");
    for (const QueueStackProgress& p : status->stacks) {
      std::printf("| %s | %lld | %lld | %lld | %lld | %s |\n", p.stack_id.c_str(),
                  static_cast<long long>(p.pending), static_cast<long long>(p.leased),
                  static_cast<long long>(p.lapsed), static_cast<long long>(p.done),
                  outcomes[p.stack_id].c_str());
    }
    std::printf("\n");
    for (const QueueStackProgress& p : status->stacks) {
      auto it = summaries.find(p.stack_id);
      std::printf("- %s: %s\n", p.stack_id.c_str(),
                  it == summaries.end() ? "(not in the store yet)" : it->second.c_str());
    }
  }
  if (!status->hosts.empty()) {
    std::printf(
        "\n## Hosts\n\n| Stack | Host | Leased now | Done | Last done (UTC) |\n"
        "| --- | --- | --- | --- | --- |\n");
    for (const QueueHostProgress& h : status->hosts) {
      std::printf("| %s | %s | %lld | %lld | %s |\n", h.stack_id.c_str(), h.host.c_str(),
                  static_cast<long long>(h.leased), static_cast<long long>(h.done),
                  h.last_done_at.empty() ? "-" : h.last_done_at.c_str());
    }
  }
  return kExitOk;
}

int Drop(const std::string& target, const std::string& id_text,
         const PostgresStoreOptions& options) {
  StatusOr<int64_t> id = ParseIntFlag("sweep ID", id_text, 1, INT64_MAX);
  if (!id.ok()) {
    std::fprintf(stderr, "convguard queue drop: %s\n", id.status().message().c_str());
    return kExitBadInput;
  }
  StatusOr<std::unique_ptr<WorkQueue>> queue = OpenWorkQueue(target, options);
  if (!queue.ok()) return Fail("store", queue.status());
  StatusOr<bool> dropped = (*queue)->DropSweep(*id);
  if (!dropped.ok()) return Fail("drop", dropped.status());
  if (!*dropped) {
    std::fprintf(stderr, "convguard queue drop: there is no sweep %lld (convguard queue status)\n",
                 static_cast<long long>(*id));
    return kExitBadInput;
  }
  std::printf("dropped sweep %lld (its verdicts stay in the store)\n", static_cast<long long>(*id));
  return kExitOk;
}

}  // namespace

int QueueMain(const Args& args) {
  FlagParser flags("queue", QueueFlagSpecs());
  if (Status s = flags.Parse(args); !s.ok()) {
    std::fprintf(stderr, "convguard queue: %s\n", s.message().c_str());
    return kExitBadInput;
  }
  if (flags.Has("--help") || flags.positionals().empty()) {
    const std::string usage = std::string(kUsage) + flags.OptionsHelp();
    std::fputs(usage.c_str(), flags.Has("--help") ? stdout : stderr);
    return flags.Has("--help") ? kExitOk : kExitBadInput;
  }
  const std::string action = flags.positionals().front();
  const size_t operands = flags.positionals().size() - 1;
  if (action != "add" && action != "status" && action != "drop") {
    std::fprintf(stderr, "convguard queue: unknown action '%s' (allowed: add, status, drop)\n",
                 action.c_str());
    return kExitBadInput;
  }
  if ((action == "drop" && operands != 1) || (action != "drop" && operands != 0)) {
    std::fprintf(stderr, "convguard queue %s: %s\n", action.c_str(),
                 action == "drop" ? "give the sweep ID to drop (convguard queue status)"
                                  : "unexpected argument (problems come from --grid, --list, "
                                    "--log)");
    return kExitBadInput;
  }
  if (action != "add") {
    for (const char* add_only : {"--grid", "--list", "--log", "--algo", "--stack", "--label"}) {
      if (flags.Has(add_only)) {
        std::fprintf(stderr, "convguard queue %s: %s is for `queue add`\n", action.c_str(),
                     add_only);
        return kExitBadInput;
      }
    }
  }
  const std::string target = flags.Has("--db") ? flags.Get("--db") : StorePathFromFlags(flags);
  if (!IsPostgresStoreTarget(target)) {
    std::fprintf(stderr,
                 "convguard queue: the work queue lives in a PostgreSQL store: give --db "
                 "postgresql://HOST/DB or service=NAME (or set $CONVGUARD_DB); '%s' is an "
                 "SQLite file\n",
                 StoreTargetLabel(target).c_str());
    return kExitBadInput;
  }
  StatusOr<PostgresStoreOptions> options = PostgresOptionsFromFlags(flags);
  if (!options.ok()) {
    std::fprintf(stderr, "convguard queue: %s\n", options.status().message().c_str());
    return kExitBadInput;
  }
  if (action == "add") return Add(flags, target, *options);
  if (action == "status") return ShowStatus(target, *options);
  return Drop(target, flags.positionals()[1], *options);
}

}  // namespace convguard::cli
