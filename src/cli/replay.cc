// convguard replay: runs what an application ran, in order, in one worker; runs each
// problem alone; minimises a failing sequence; stores a sequence verdict.
#include "convguard/replay.h"

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/probe_common.h"
#include "convguard/exit_status.h"
#include "convguard/sequence.h"
#include "convguard/text_forms.h"
#include "core/json_records.h"
#include "os/system.h"

namespace convguard::cli {
namespace {

// Engine flags that mean nothing to a replay: each call runs once with the algorithm the
// sequence gives it, nothing is skipped for being known, and a call that overruns is
// always waited for in its own worker (a fresh one would not have the sequence's state).
bool AppliesToReplay(const std::string& flag) {
  return flag != "--algo" && flag != "--redo" && flag != "--workers" && flag != "--warmup" &&
         flag != "--repeats" && flag != "--confirm-fresh";
}

std::vector<FlagSpec> ReplayFlagSpecs() {
  std::vector<FlagSpec> specs = {
      {"--help", "", "show this help", false, "-h"},
      {"--minimise", "", "shrink a failing sequence to a minimal one that still fails"},
      {"--budget", "SECONDS", "time the minimisation may take (default 600; > 0)"},
      {"--minimal-out", "PREFIX",
       "write the minimal sequence to PREFIX.list (replayable) and PREFIX.driver.txt "
       "(MIOpenDriver commands); neither may exist"},
      {"--no-alone", "", "do not run each problem of the sequence alone in a fresh worker"},
      {"--skip-unreadable", "",
       "leave out log commands convguard cannot run (3-D, transposed, int8) instead of "
       "refusing the log; the replay then is not exactly the application's sequence"},
      {"--sequence-deadline", "SECONDS",
       "deadline of the whole sequence (default: the sum of its calls' deadlines)"},
      {"--format", "FORMAT", "text (default) or json"},
      {"--quiet", "", "no progress or notices on stderr"},
      {"--verbose", "", "print worker and calibration events"},
  };
  for (FlagSpec& s : EngineFlagSpecs()) {
    if (AppliesToReplay(s.name)) specs.push_back(std::move(s));
  }
  return specs;
}

std::string Usage(const FlagParser& flags) {
  return "usage: convguard replay LOG|LIST [options]\n"
         "\n"
         "Runs the convolution calls of an MIOpen log (MIOPEN_ENABLE_LOGGING_CMD=1 output) or\n"
         "a problem list in order, repeats included, in ONE fresh worker under the watchdog,\n"
         "as the application ran them: each call once, with its own deadline, and the whole\n"
         "sequence with one. A Find in a log runs the problem with every algorithm the\n"
         "backend offers; a list line may name one with a trailing algo=NAME. The first call\n"
         "that fails ends the replay: HANG (it missed its first deadline, then the\n"
         "confirmation deadline waited for in the same worker), CRASH, WRONG, MISTRUSTED,\n"
         "ERROR or OOM. SLOW and UNSUPPORTED calls are counted and the replay goes on.\n"
         "\n"
         "Then each distinct problem of the calls run is run alone in a fresh worker (so a\n"
         "failure that happens alone too is not blamed on the sequence), and with --minimise\n"
         "a failing sequence is shrunk by delta debugging (candidates each in a fresh worker)\n"
         "to a sub-sequence that fails the same way at the same problem. The sequence verdict\n"
         "is kept in the store (every replay; see 'convguard db sequences'). Docs:\n"
         "docs/replay.md.\n"
         "\n"
         "options:\n" +
         flags.OptionsHelp() + "\n" + EngineFlagsHelp() +
         "\n"
         "exit status: the sequence verdict's: 0 OK, 10 SLOW (the sequence missed its own\n"
         "deadline), 11 HANG, 12 CRASH, 13 WRONG, 14 MISTRUSTED, 15 ERROR, 17 OOM; 1 failure to\n"
         "carry out the replay, 2 bad input, 130 interrupted.\n";
}

int Fail(const std::string& message, int status) {
  std::fprintf(stderr, "convguard replay: %s\n", message.c_str());
  return status;
}

int StatusFor(const Status& s) {
  const StatusCode c = s.code();
  return c == StatusCode::kInvalidArgument || c == StatusCode::kNotFound ||
                 c == StatusCode::kOutOfRange || c == StatusCode::kUnsupported
             ? kExitBadInput
             : kExitFailure;
}

// Writes `text` to a new file `path` ("x": refuses one that exists, even one that
// appeared since the up-front check).
Status WriteNewFile(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wx");
  if (f == nullptr)
    return Status::IOError("cannot create '" + path + "' (it exists, or its folder does not)");
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed) return Status::IOError("could not write '" + path + "'");
  return Status::Ok();
}

std::string SecondsText(double ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f s", ms / 1000.0);
  return text;
}

void PrintText(const ReplayResult& r, const CallSequence& sequence, const std::string& store_path,
               const std::vector<std::string>& written) {
  const SequenceVerdict& v = r.verdict;
  std::printf("replay of %s: %lld calls", v.source.c_str(), static_cast<long long>(v.calls));
  if (static_cast<size_t>(v.calls) != sequence.calls.size()) {
    std::printf(" (%zu as logged; each Find runs every algorithm)", sequence.calls.size());
  }
  std::printf(" on %s\n", r.stack.Summary().c_str());
  if (!r.stack.emulation.empty()) std::printf("  EMULATION: %s\n", r.stack.emulation.c_str());
  if (v.kind == VerdictKind::kOk) {
    std::printf("  OK: every call ran and checked out in one worker (%s)\n",
                SecondsText(v.elapsed_ms).c_str());
  } else {
    std::printf("  %s at call %lld of %lld: %s '%s'%s\n", std::string(VerdictName(v.kind)).c_str(),
                static_cast<long long>(v.failed_at + 1), static_cast<long long>(v.calls),
                v.failed_problem.c_str(), v.failed_algorithm.c_str(),
                v.failed_origin.empty() ? "" : (" (" + v.failed_origin + ")").c_str());
    std::printf("  evidence: %s\n", v.message.c_str());
    std::printf("  %lld calls ran in %s\n", static_cast<long long>(v.calls_run),
                SecondsText(v.elapsed_ms).c_str());
  }
  if (v.slow_calls > 0 || v.unsupported_calls > 0) {
    std::printf("  %lld calls were late but finished (SLOW), %lld UNSUPPORTED\n",
                static_cast<long long>(v.slow_calls), static_cast<long long>(v.unsupported_calls));
  }
  if (!v.alone.empty()) {
    int64_t ok = 0;
    for (const ProblemAlone& a : v.alone) ok += a.kind == VerdictKind::kOk ? 1 : 0;
    std::printf("each problem alone, in a fresh worker: %lld of %zu OK%s\n",
                static_cast<long long>(ok), v.alone.size(),
                ok == static_cast<int64_t>(v.alone.size()) && v.failed_at < 0 ? "" : ":");
    for (const ProblemAlone& a : v.alone) {
      const bool failing = a.problem == v.failed_problem && a.algorithm == v.failed_algorithm;
      if (a.kind == VerdictKind::kOk && !failing) continue;
      std::printf("  %-11s %s '%s'%s\n", std::string(VerdictName(a.kind)).c_str(),
                  a.problem.c_str(), a.algorithm.c_str(),
                  !failing ? ""
                  : a.kind == VerdictKind::kOk
                      ? "  <- fails only after the calls before it: a sequence effect"
                      : "  <- fails alone too: not a sequence effect");
    }
  }
  if (!r.minimal.empty()) {
    std::printf("minimal failing sequence: %zu of %lld calls (%s):\n", r.minimal.size(),
                static_cast<long long>(v.calls_run), v.minimal_note.c_str());
    const size_t shown = r.minimal.size() <= 40 ? r.minimal.size() : 20;
    for (size_t i = 0; i < shown; ++i) std::printf("  %s\n", SequenceCallKey(r.minimal[i]).c_str());
    if (shown < r.minimal.size()) {
      std::printf("  ... %zu more (--minimal-out writes them all)\n", r.minimal.size() - shown);
    }
  }
  for (const std::string& w : written) std::printf("wrote %s\n", w.c_str());
  std::printf("repro: %s\n", v.repro.c_str());
  if (v.id > 0) {
    std::printf("stored as sequence verdict #%lld in %s\n", static_cast<long long>(v.id),
                store_path.c_str());
  }
}

}  // namespace

int ReplayMain(const Args& args) {
  FlagParser flags("replay", ReplayFlagSpecs());
  if (Status s = flags.Parse(args); !s.ok()) return Fail(s.message(), kExitBadInput);
  if (flags.Has("--help")) {
    std::fputs(Usage(flags).c_str(), stdout);
    return kExitOk;
  }
  if (flags.positionals().size() != 1) {
    return Fail(flags.positionals().empty() ? "no LOG or LIST given; see 'convguard replay --help'"
                                            : "one LOG or LIST at a time",
                kExitBadInput);
  }
  const std::string format = flags.Get("--format", "text");
  if (format != "text" && format != "json") {
    return Fail("--format '" + format + "' is unknown (allowed: text, json)", kExitBadInput);
  }
  ReplayOptions options;
  options.minimise = flags.Has("--minimise");
  if (flags.Has("--skip-unreadable")) options.repro_flags.push_back("--skip-unreadable");
  options.alone = !flags.Has("--no-alone");
  if (flags.Has("--budget")) {
    if (!options.minimise) return Fail("--budget needs --minimise", kExitBadInput);
    StatusOr<double> budget = ParseDoubleFlag("--budget", flags.Get("--budget"), 0.0, 7 * 86400.0);
    if (!budget.ok()) return Fail(budget.status().message(), kExitBadInput);
    if (!(*budget > 0.0)) {
      return Fail(
          "--budget must be more than 0 seconds (it bounds how long minimisation runs "
          "candidates); e.g. --budget 600",
          kExitBadInput);
    }
    options.minimise_budget_ms = *budget * 1000.0;
  }
  if (flags.Has("--sequence-deadline")) {
    StatusOr<double> s = ParseDoubleFlag("--sequence-deadline", flags.Get("--sequence-deadline"),
                                         0.001, 7 * 86400.0);
    if (!s.ok()) return Fail(s.status().message(), kExitBadInput);
    options.sequence_deadline_ms = *s * 1000.0;
  }
  const std::string prefix = flags.Get("--minimal-out");
  std::vector<std::string> outputs;
  if (flags.Has("--minimal-out")) {
    if (!options.minimise) return Fail("--minimal-out needs --minimise", kExitBadInput);
    if (prefix.empty()) return Fail("--minimal-out needs a path prefix", kExitBadInput);
    for (const char* suffix : {".list", ".driver.txt"}) {
      const std::string path = prefix + suffix;
      std::error_code ec;
      if (std::filesystem::exists(path, ec)) {
        return Fail("'" + path + "' exists; choose another --minimal-out (nothing is overwritten)",
                    kExitBadInput);
      }
      outputs.push_back(path);
    }
    const std::filesystem::path folder = std::filesystem::path(prefix).parent_path();
    std::error_code ec;
    if (!folder.empty() && !std::filesystem::is_directory(folder, ec)) {
      return Fail("--minimal-out: folder '" + folder.string() + "' does not exist", kExitBadInput);
    }
    options.minimal_list_path = outputs.front();
  }
  StatusOr<CallSequence> sequence =
      ReadCallSequence(flags.positionals().front(), flags.Has("--skip-unreadable"));
  if (!sequence.ok()) return Fail(sequence.status().message(), StatusFor(sequence.status()));
  if (sequence->skipped > 0) {
    std::fprintf(stderr,
                 "convguard replay: left out %lld log command(s) convguard cannot run (first: "
                 "%s)\n",
                 static_cast<long long>(sequence->skipped), sequence->first_skipped.c_str());
  }
  StatusOr<ProbeOptions> probe = ProbeOptionsFromFlags(flags);
  if (!probe.ok()) return Fail(probe.status().message(), kExitBadInput);
  options.probe = *probe;
  StatusOr<std::unique_ptr<Store>> store = OpenStoreFromFlags(flags);
  if (!store.ok()) {
    return Fail(
        "store: " + store.status().message(),
        store.status().code() == StatusCode::kInvalidArgument ? kExitBadInput : kExitFailure);
  }

  os::InstallInterruptHandlers();
  const bool quiet = flags.Has("--quiet");
  // On a terminal, progress is one line redrawn in place; elsewhere (a log) only notices.
  const bool terminal = os::IsTerminal(2);
  bool bar_shown = false;
  ReplayCallbacks callbacks;
  if (!quiet) {
    callbacks.on_notice = [&bar_shown](const std::string& text) {
      std::fprintf(stderr, "%sconvguard replay: %s\n", bar_shown ? "\r\033[K" : "", text.c_str());
      bar_shown = false;
    };
    if (terminal) {
      callbacks.on_progress = [&bar_shown](int64_t done, int64_t total, const std::string& what) {
        std::fprintf(stderr, "\r\033[K%s: %lld of %lld calls", what.c_str(),
                     static_cast<long long>(done), static_cast<long long>(total));
        bar_shown = true;
      };
    }
  }
  if (flags.Has("--verbose")) {
    callbacks.on_event = [](const std::string& e) {
      std::fprintf(stderr, "convguard: %s\n", e.c_str());
    };
  }
  StatusOr<ReplayResult> result = Replay(*sequence, options, store->get(), callbacks);
  if (bar_shown) std::fputs("\r\033[K", stderr);
  if (!result.ok()) return Fail(result.status().message(), StatusFor(result.status()));
  if (result->interrupted) {
    return Fail("interrupted; the sequence verdict is not stored", kExitInterrupted);
  }
  std::vector<std::string> written;
  if (!result->minimal.empty() && !outputs.empty()) {
    const SequenceVerdict& v = result->verdict;
    const std::vector<std::string> header = {
        "minimal failing sequence of " + v.source + ": " + std::string(VerdictName(v.kind)) +
            " at its last call " + v.failed_problem + " '" + v.failed_algorithm + "'",
        "stack " + v.stack_id + ": " + result->stack.Summary(), v.minimal_note,
        "repro: " + v.repro};
    if (Status s = WriteNewFile(outputs[0], FormatSequenceList(result->minimal, header)); !s.ok()) {
      return Fail(s.message(), kExitFailure);
    }
    std::vector<std::string> driver_header = header;
    driver_header.insert(driver_header.begin() + 3,
                         "MIOpenDriver runs each command in a process of its own; state built "
                         "up inside one process needs the convguard repro line");
    if (Status s =
            WriteNewFile(outputs[1], FormatSequenceDriverCommands(result->minimal, driver_header));
        !s.ok()) {
      return Fail(s.message(), kExitFailure);
    }
    written = outputs;
  }
  if (format == "json") {
    nlohmann::json j = ToJson(result->verdict);
    j["stack"] = ToJson(result->stack);
    std::printf("%s\n", DumpJson(j).c_str());
  } else {
    PrintText(*result, *sequence, StoreLabelFromFlags(flags), written);
  }
  return ExitStatusForVerdict(result->verdict.kind);
}

}  // namespace convguard::cli
