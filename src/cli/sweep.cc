// convguard sweep: probes a grid or problem lists, remembering every verdict.
#include <algorithm>
#include <climits>
#include <cstdio>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/probe_common.h"
#include "cli/problem_flags.h"
#include "cli/progress.h"
#include "cli/sweep_queue.h"
#include "convguard/exit_status.h"
#include "convguard/pattern.h"
#include "convguard/probe.h"
#include "convguard/problem_source.h"
#include "convguard/text_forms.h"
#include "os/system.h"

namespace convguard::cli {
namespace {

std::vector<FlagSpec> SweepFlagSpecs() {
  std::vector<FlagSpec> specs = {
      {"--help", "", "show this help", false, "-h"},
      {"--grid", "SPEC", "a grid, e.g. 'c=3,16,32 k=16,32,64 hw=32..64:16 r=3 p=same'", true},
      {"--list", "FILE", "a problem list: one problem per line, any text form, # comments", true},
      {"--log", "FILE",
       "an MIOpen log (output of a run with MIOPEN_ENABLE_LOGGING_CMD=1): its distinct "
       "convolutions",
       true},
      {"--quiet", "", "no progress output"},
      {"--verbose", "", "print worker and calibration events"},
      {"--table", "FORMAT", "final table: markdown (default), csv, or none"},
      {"--order", "ORDER",
       "given (default: as listed) or informative (least certain prediction of the learned "
       "pattern first)"},
      {"--budget", "N", "probe at most N problems; the rest are reported as predicted"},
  };
  for (FlagSpec& s : QueueSweepFlagSpecs()) specs.push_back(std::move(s));
  for (FlagSpec& s : EngineFlagSpecs()) specs.push_back(std::move(s));
  return specs;
}

std::string Usage(const FlagParser& flags) {
  return "usage: convguard sweep (--grid SPEC | --list FILE | --log FILE)... [options]\n"
         "       convguard sweep --from-queue --db CONNINFO [--follow] [options]\n"
         "\n"
         "Probes every problem of the grids, lists and MIOpen logs (see\n"
         "docs/problem-sources.md) on a backend, in parallel warm workers under a watchdog.\n"
         "A log's distinct convolutions are probed once each; a list given to --list that\n"
         "turns out to be an MIOpen log is read as one. Each verdict is written to the\n"
         "store as it arrives; problems the store already knows for this stack are skipped\n"
         "(--redo probes them again). Killing the sweep loses at most the probes in flight:\n"
         "run it again to resume. Several sweeps may share one store; none probes what\n"
         "another is probing. Ctrl-C stops cleanly (a second Ctrl-C stops at once). When\n"
         "a PostgreSQL store's server goes away mid-sweep, the sweep waits for it\n"
         "(--db-wait, default 60 s) and goes on; if it does not come back in time, the\n"
         "sweep stops (exit 1) and every verdict stored before stays.\n"
         "\n"
         "grid keys: n c h w hw k r s rs p ph pw pt pl pb pr u uh uw d dh dw g bias dtype\n"
         "layout dir; values: 1,2,3  a..b  a..b:step  a..b:*2; p=same pads (r-1)/2.\n"
         "\n"
         "options:\n" +
         flags.OptionsHelp() + "\n" + EngineFlagsHelp() +
         "\n"
         "--order informative probes a spread sample first, then in rounds the problems\n"
         "whose verdict the pattern learned so far (convguard pattern) predicts least surely,\n"
         "so a grid's failure region is mapped with few probes. --budget N stops after N\n"
         "probes; the problems not probed are listed with their PREDICTED verdicts, which\n"
         "are not verdicts and are never stored.\n"
         "\n"
         "exit status: 0 when the sweep completed (whatever the verdicts), 1 failure,\n"
         "2 bad input, 130 interrupted.\n"
         "\n"
         "--from-queue takes the problems from the work queue of a shared PostgreSQL store\n"
         "(`convguard queue add` puts them there) instead: any number of hosts run it at\n"
         "once, each leasing problems for its own stack, renewing its leases while it\n"
         "probes; a host that dies or loses the server gives its problems back when its\n"
         "lease lapses. It ends when every problem of this host's stack is done (waiting\n"
         "while other hosts hold some), or, with --follow, keeps waiting for new sweeps.\n"
         "See docs/work-queue.md.\n";
}

// Which devices each stack of the run is on, e.g. "GPU 1" or "GPU 0,2": the name a row
// of the table gives its stack when the devices differ.
std::map<std::string, std::string> DevicesByStack(const std::vector<DeviceStack>& stacks) {
  std::map<std::string, std::string> out;
  for (const DeviceStack& ds : stacks) {
    std::string& label = out[ds.stack.Id()];
    if (ds.device < 0) {
      label = "CPU";
    } else {
      label += (label.empty() ? "GPU " : ",") + std::to_string(ds.device);
    }
  }
  return out;
}

// The seed report's table: in, out, size, status, time; plus the fields the sweep varied
// beyond those, so that rows stay distinguishable, and the devices of each row's stack
// when the run's devices are different stacks.
void PrintTable(const std::vector<Verdict>& verdicts, const std::string& format,
                const std::map<std::string, std::string>& devices_by_stack) {
  if (format == "none" || verdicts.empty()) return;
  struct Row {
    Problem p;
    const Verdict* v;
  };
  std::vector<Row> rows;
  std::set<std::string> algorithms;
  std::set<std::string> stack_ids;
  for (const Verdict& v : verdicts) {
    StatusOr<Problem> p = ParseProblem(v.problem, TextForm::kCanonical);
    if (p.ok()) rows.push_back({*p, &v});
    algorithms.insert(v.algorithm);
    stack_ids.insert(v.stack_id);
  }
  auto devices_of = [&](const Verdict& v) {
    auto it = devices_by_stack.find(v.stack_id);
    return it == devices_by_stack.end() ? v.stack_id : it->second;
  };
  std::sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    return std::make_tuple(a.p.c, a.p.k, a.p.h, a.p.w, a.v->problem, a.v->algorithm,
                           devices_of(*a.v)) < std::make_tuple(b.p.c, b.p.k, b.p.h, b.p.w,
                                                               b.v->problem, b.v->algorithm,
                                                               devices_of(*b.v));
  });
  // Show the full problem when anything beyond c, k, h, w differs between rows.
  bool other_fields_vary = false;
  for (const Row& r : rows) {
    Problem a = r.p, b = rows.front().p;
    a.c = b.c;
    a.k = b.k;
    a.h = b.h;
    a.w = b.w;
    other_fields_vary |= !(a == b);
  }
  const bool show_algo = algorithms.size() > 1;
  const bool csv = format == "csv";
  auto emit = [&](std::vector<std::string> cells) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      line += csv ? (i ? "," : "") + cells[i] : "| " + cells[i] + " ";
    }
    std::printf("%s%s\n", line.c_str(), csv ? "" : "|");
  };
  std::vector<std::string> header = {"Input Channels", "Output Channels", "Input Size", "Status",
                                     "Time"};
  if (show_algo) header.push_back("Algorithm");
  if (other_fields_vary) header.push_back("Problem");
  const bool show_devices = stack_ids.size() > 1;
  if (show_devices) header.push_back("Devices");
  emit(header);
  if (!csv) {
    std::vector<std::string> rule(header.size(), "---");
    emit(rule);
  }
  for (const Row& r : rows) {
    char time[48] = "-";
    if (r.v->time_ms_median > 0) std::snprintf(time, sizeof time, "%.3g ms", r.v->time_ms_median);
    if (r.v->kind == VerdictKind::kHang)
      std::snprintf(time, sizeof time, "killed after %.0f ms", r.v->elapsed_ms);
    std::vector<std::string> cells = {std::to_string(r.p.c), std::to_string(r.p.k),
                                      std::to_string(r.p.h) + "x" + std::to_string(r.p.w),
                                      std::string(VerdictName(r.v->kind)), time};
    if (show_algo) cells.push_back(r.v->algorithm);
    if (other_fields_vary) cells.push_back(r.v->problem);
    if (show_devices) cells.push_back(devices_of(*r.v));
    emit(cells);
  }
}

// A problem a budgeted sweep did not probe, with what the learned pattern predicts.
struct PredictedRow {
  Problem problem;
  std::string verdict;  // "" when no pattern could be learned
  double confidence = 0.0;
};

// Up to `n` of `pending`, spread evenly over it (every k-th): a first sample that covers
// the grid rather than its first corner.
std::vector<size_t> Spread(size_t pending, size_t n) {
  std::vector<size_t> out;
  if (pending == 0 || n == 0) return out;
  n = std::min(n, pending);
  for (size_t i = 0; i < n; ++i) out.push_back(i * pending / n);
  return out;
}

// Probes `jobs` in rounds: with `informative`, a spread sample first, then each round the
// problems the pattern learned so far predicts least surely; else in the given order. At
// most `budget` probes (< 0: no limit; known verdicts are free). The problems not probed
// go to `predicted` with the last pattern's prediction.
StatusOr<ProbeRunResult> RunInRounds(ProbeEngine& engine, Store* store, const std::string& stack,
                                     const std::vector<ProbeJob>& jobs, bool informative,
                                     int64_t budget, std::vector<PredictedRow>& predicted) {
  constexpr size_t kFirstSample = 8;  // LearnPattern's minimum
  constexpr size_t kRound = 4;
  ProbeRunResult total;
  std::vector<ProbeJob> pending = jobs;
  std::optional<Pattern> pattern;
  const auto learn = [&]() -> Status {
    if (store == nullptr) return Status::Ok();
    VerdictFilter filter;
    filter.stack_id = stack;
    CG_ASSIGN_OR_RETURN(std::vector<Verdict> all, store->ListVerdicts(filter));
    PatternOptions options;
    options.held_out_percent = 0;  // every verdict teaches while the budget is spent
    StatusOr<Pattern> learned = LearnProblemPattern(all, options);
    if (learned.ok()) pattern = std::move(*learned);
    return Status::Ok();
  };
  int64_t probes = 0;
  bool first = true;
  while (!pending.empty() && (budget < 0 || probes < budget)) {
    const auto left = static_cast<size_t>(budget < 0 ? INT64_MAX : budget - probes);
    std::vector<size_t> pick;
    if (!informative) {
      for (size_t i = 0; i < std::min(left, pending.size()); ++i) pick.push_back(i);
    } else if (first || !pattern) {
      pick = Spread(pending.size(), std::min(first ? kFirstSample : kRound, left));
    } else {
      std::vector<Problem> problems;
      for (const ProbeJob& j : pending) problems.push_back(j.problem);
      CG_ASSIGN_OR_RETURN(std::vector<size_t> ranked, LeastCertainFirst(*pattern, problems));
      const size_t n = std::min({ranked.size(), kRound, left});
      // Ties at the last place taken (while the pattern has no rule, every prediction
      // ties) are broken by spreading over the tied problems, so that the rounds explore
      // the grid instead of walking through one corner of it.
      std::vector<double> confidence(problems.size());
      for (size_t i : ranked) {
        CG_ASSIGN_OR_RETURN(Prediction pr, Predict(*pattern, problems[i]));
        confidence[i] = pr.confidence;
      }
      const double edge = confidence[ranked[n - 1]];
      std::vector<size_t> tied;
      for (size_t i : ranked) {
        if (confidence[i] < edge) {
          pick.push_back(i);
        } else if (confidence[i] == edge) {
          tied.push_back(i);
        }
      }
      std::sort(tied.begin(), tied.end());  // the given order, to spread over
      for (size_t j : Spread(tied.size(), n - pick.size())) pick.push_back(tied[j]);
    }
    first = false;
    std::vector<ProbeJob> batch;
    std::set<size_t> taken(pick.begin(), pick.end());
    for (size_t i : taken) batch.push_back(pending[i]);
    std::vector<ProbeJob> rest;
    for (size_t i = 0; i < pending.size(); ++i)
      if (taken.count(i) == 0) rest.push_back(std::move(pending[i]));
    pending = std::move(rest);
    CG_ASSIGN_OR_RETURN(ProbeRunResult ran, engine.Run(batch));
    probes += static_cast<int64_t>(ran.verdicts.size());
    total.verdicts.insert(total.verdicts.end(), ran.verdicts.begin(), ran.verdicts.end());
    total.known.insert(total.known.end(), ran.known.begin(), ran.known.end());
    total.progress.done += ran.progress.done;
    total.progress.total += ran.progress.total;
    total.progress.elapsed_s += ran.progress.elapsed_s;
    total.progress.skipped_known += ran.progress.skipped_known;
    for (size_t k = 0; k < std::size(total.progress.by_kind); ++k)
      total.progress.by_kind[k] += ran.progress.by_kind[k];
    if (ran.interrupted) {
      total.interrupted = true;
      return total;
    }
    if (informative) CG_RETURN_IF_ERROR(learn());
  }
  if (!pending.empty()) {
    CG_RETURN_IF_ERROR(learn());
    for (const ProbeJob& j : pending) {
      PredictedRow row{j.problem, "", 0.0};
      if (pattern) {
        CG_ASSIGN_OR_RETURN(Prediction p, Predict(*pattern, j.problem));
        row.verdict = std::string(VerdictName(p.kind));
        row.confidence = p.confidence;
      }
      predicted.push_back(std::move(row));
    }
  }
  return total;
}

// The problems a budget left unprobed, after the table: PREDICTED, never stored.
void PrintPredicted(const std::vector<PredictedRow>& rows, const std::string& format) {
  if (rows.empty() || format == "none") return;
  std::printf(
      "\nNot probed (budget reached): %zu problem(s), with the learned pattern's "
      "prediction (not verdicts, not stored):\n\n",
      rows.size());
  const bool csv = format == "csv";
  std::printf(csv ? "Input Channels,Output Channels,Input Size,Predicted,Confidence,Problem\n"
                  : "| Input Channels | Output Channels | Input Size | Predicted | Confidence | "
                    "Problem |\n| --- | --- | --- | --- | --- | --- |\n");
  for (const PredictedRow& r : rows) {
    char confidence[16] = "-";
    if (!r.verdict.empty()) std::snprintf(confidence, sizeof confidence, "%.2f", r.confidence);
    const std::string verdict = r.verdict.empty() ? "no pattern yet" : "PREDICTED " + r.verdict;
    std::printf(
        csv ? "%lld,%lld,%lldx%lld,%s,%s,%s\n" : "| %lld | %lld | %lldx%lld | %s | %s | %s |\n",
        static_cast<long long>(r.problem.c), static_cast<long long>(r.problem.k),
        static_cast<long long>(r.problem.h), static_cast<long long>(r.problem.w), verdict.c_str(),
        confidence, ToCanonical(r.problem).c_str());
  }
}

}  // namespace

int SweepMain(const Args& args) {
  FlagParser flags("sweep", SweepFlagSpecs());
  if (Status s = flags.Parse(args); !s.ok()) {
    std::fprintf(stderr, "convguard sweep: %s\n", s.message().c_str());
    return kExitBadInput;
  }
  if (flags.Has("--help")) {
    std::fputs(Usage(flags).c_str(), stdout);
    return kExitOk;
  }
  if (!flags.positionals().empty()) {
    std::fprintf(
        stderr,
        "convguard sweep: unexpected argument '%s' (problems come from --grid, --list or --log)\n",
        flags.positionals().front().c_str());
    return kExitBadInput;
  }
  const std::string table = flags.Get("--table", "markdown");
  if (table != "markdown" && table != "csv" && table != "none") {
    std::fprintf(stderr,
                 "convguard sweep: --table '%s' is unknown (allowed: markdown, csv, none)\n",
                 table.c_str());
    return kExitBadInput;
  }
  if (flags.Has("--from-queue")) {
    return SweepFromQueue(flags, table,
                          [](const std::vector<Verdict>& verdicts, const std::string& format,
                             const std::vector<DeviceStack>& stacks) {
                            PrintTable(verdicts, format, DevicesByStack(stacks));
                          });
  }
  for (const char* queue_only : {"--follow", "--lease", "--claim", "--host-label"}) {
    if (flags.Has(queue_only)) {
      std::fprintf(stderr, "convguard sweep: %s is for a sweep --from-queue\n", queue_only);
      return kExitBadInput;
    }
  }
  // Every problem is read and validated before anything starts.
  const std::string order = flags.Get("--order", "given");
  if (order != "given" && order != "informative") {
    std::fprintf(stderr, "convguard sweep: --order '%s' is unknown (allowed: given, informative)\n",
                 order.c_str());
    return kExitBadInput;
  }
  int64_t budget = -1;
  if (flags.Has("--budget")) {
    StatusOr<int64_t> b = ParseIntFlag("--budget", flags.Get("--budget"), 1, INT64_MAX);
    if (!b.ok()) {
      std::fprintf(stderr, "convguard sweep: %s\n", b.status().message().c_str());
      return kExitBadInput;
    }
    budget = *b;
  }
  std::vector<PredictedRow> predicted;
  std::vector<ProbeJob> jobs;
  if (!ReadProblemSourceFlags(flags, "convguard sweep", jobs)) return kExitBadInput;
  if (jobs.empty()) {
    std::fprintf(stderr,
                 "convguard sweep: no problems: give --grid SPEC, --list FILE or --log FILE (see "
                 "--help)\n");
    return kExitBadInput;
  }
  StatusOr<ProbeOptions> options = ProbeOptionsFromFlags(flags);
  if (!options.ok()) {
    std::fprintf(stderr, "convguard sweep: %s\n", options.status().message().c_str());
    return kExitBadInput;
  }
  StatusOr<std::unique_ptr<Store>> store = OpenStoreFromFlags(flags);
  if (!store.ok()) {
    std::fprintf(stderr, "convguard sweep: store: %s\n", store.status().message().c_str());
    return store.status().code() == StatusCode::kInvalidArgument ? kExitBadInput : kExitFailure;
  }

  os::InstallInterruptHandlers();
  ProgressView view(flags.Has("--quiet"));
  const ProbeCallbacks callbacks = view.Callbacks(flags.Has("--verbose"));
  StatusOr<std::unique_ptr<ProbeEngine>> engine =
      ProbeEngine::Start(*options, store->get(), callbacks);
  if (!engine.ok()) {
    std::fprintf(stderr, "convguard sweep: %s\n", engine.status().message().c_str());
    return kExitFailure;
  }
  const StackFingerprint stack = (*engine)->stack();
  const std::vector<DeviceStack> device_stacks = (*engine)->stacks();
  const std::map<std::string, std::string> devices_by_stack = DevicesByStack(device_stacks);
  if (devices_by_stack.size() == 1) {
    std::fprintf(
        stderr, "convguard sweep: %zu problems on stack %s%s: %s\n", jobs.size(),
        stack.Id().c_str(),
        device_stacks.size() > 1 ? (" (" + devices_by_stack.begin()->second + ")").c_str() : "",
        stack.Summary().c_str());
  } else {
    // Different stacks each probe every problem: their verdicts may differ.
    std::fprintf(stderr, "convguard sweep: %zu problems on each of %zu stacks:\n", jobs.size(),
                 devices_by_stack.size());
    std::set<std::string> printed;
    for (const DeviceStack& ds : device_stacks) {
      if (!printed.insert(ds.stack.Id()).second) continue;
      std::fprintf(stderr, "convguard sweep:   %s: stack %s: %s\n",
                   devices_by_stack.at(ds.stack.Id()).c_str(), ds.stack.Id().c_str(),
                   ds.stack.Summary().c_str());
    }
  }
  if (stack.is_emulated()) {
    std::fprintf(stderr, "convguard sweep: EMULATED STACK: %s\n", stack.emulation.c_str());
  }
  StatusOr<ProbeRunResult> result = order == "given" && budget < 0
                                        ? (*engine)->Run(jobs)
                                        : RunInRounds(**engine, store->get(), stack.Id(), jobs,
                                                      order == "informative", budget, predicted);
  view.Finish();
  if (!result.ok()) {
    std::fprintf(stderr, "convguard sweep: %s\n", result.status().message().c_str());
    return kExitFailure;
  }
  std::vector<Verdict> all = result->known;
  all.insert(all.end(), result->verdicts.begin(), result->verdicts.end());
  if (stack.is_emulated() && table != "none") {
    std::printf("EMULATED STACK (not real hardware): %s\n\n", stack.emulation.c_str());
  }
  PrintTable(all, table, devices_by_stack);
  PrintPredicted(predicted, table);
  const ProbeProgress& p = result->progress;
  std::fprintf(stderr, "convguard sweep: %s %lld/%lld in %.1f s:%s\n",
               result->interrupted ? "interrupted after" : "done,", static_cast<long long>(p.done),
               static_cast<long long>(p.total), p.elapsed_s, CountsByKind(p).c_str());
  if (!predicted.empty()) {
    std::fprintf(stderr,
                 "convguard sweep: budget of %lld probes reached: %zu problem(s) not probed, "
                 "listed with their predicted verdicts (not stored)\n",
                 static_cast<long long>(budget), predicted.size());
  }
  if (store->get() != nullptr) {
    std::fprintf(stderr, "convguard sweep: verdicts are in %s\n",
                 StoreLabelFromFlags(flags).c_str());
  }
  return result->interrupted ? kExitInterrupted : kExitOk;
}

}  // namespace convguard::cli
