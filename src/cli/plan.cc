// convguard plan: explains how a problem runs exactly on a stack (or why it cannot).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/plan_common.h"
#include "cli/probe_common.h"
#include "convguard/exit_status.h"
#include "convguard/text_forms.h"
#include "os/system.h"

namespace convguard::cli {

std::vector<FlagSpec> PlanFlagSpecs(bool for_run) {
  std::vector<FlagSpec> specs = {
      {"--help", "", "show this help", false, "-h"},
      {"--fallback", "NAME", "another backend of this machine for backend fallback (repeatable)",
       true, ""},
      {"--probe-missing", "", "probe sub-problems the store has no verdict for (in workers)", false,
       ""},
      {"--probe-budget", "N", "at most N probes for one plan (default 64)", false, ""},
      {"--max-depth", "N", "rewrites composed at most N deep, 0..4 (default 2)", false, ""},
      {"--exact-leaves", "",
       "use only algorithms whose verdict was bit-exact (no Winograd/FFT rounding)", false, ""},
      {"--alternatives", "N", "alternatives to show (default 4)", false, ""},
      {"--json", "", "print the plan report as JSON", false, ""},
      {"--verbose", "",
       "say where each stack's identity came from; print worker and calibration events while "
       "probing",
       false, ""},
  };
  if (for_run) {
    specs.push_back({"--runs", "N", "timed executions of the plan (default 5)", false, ""});
    specs.push_back({"--device-tensors", "",
                     "keep the tensors in the backend's device memory and run the plan there "
                     "(device backends: cudnn)",
                     false, ""});
  }
  // The engine's flags configure --probe-missing; these three make no sense here.
  for (FlagSpec& s : EngineFlagSpecs()) {
    if (s.name == "--algo" || s.name == "--no-store" || s.name == "--redo") continue;
    if (for_run && (s.name == "--check" || s.name == "--seed")) {
      s.help += " (also the check and data of 'run')";
    }
    specs.push_back(std::move(s));
  }
  return specs;
}

std::string PlanFlagsHelp() {
  return "Plans are made of what the store has observed: every leaf of a plan is a problem\n"
         "with an OK verdict on the stack. Without --probe-missing nothing is probed; probe\n"
         "first ('convguard sweep') or let the planner probe what it needs. Backend fallback\n"
         "(--fallback) is considered only when no plan on the primary backend exists.\n"
         "Rewrites are exact; a leaf is as exact as its verdict: an algorithm that rounds\n"
         "(Winograd, FFT) passed within its rounding bound, and a plan using one is exact up\n"
         "to that rounding (said with the plan). --exact-leaves keeps only bit-exact leaves.\n";
}

StatusOr<PlanSetup> PlanSetupFromFlags(const FlagParser& flags) {
  PlanSetup setup;
  if (flags.positionals().empty()) {
    return Status::InvalidArgument(
        "no PROBLEM given (any text form; see 'convguard describe --help')");
  }
  if (flags.positionals().size() > 1) {
    return Status::InvalidArgument(
        "one PROBLEM at a time (quote MIOpenDriver arguments as one argument)");
  }
  CG_ASSIGN_OR_RETURN(setup.problem, ParseProblem(flags.positionals().front()));
  CG_RETURN_IF_ERROR(Validate(setup.problem));
  CG_ASSIGN_OR_RETURN(ProbeOptions probe, ProbeOptionsFromFlags(flags));
  GuardOptions& g = setup.guard;
  g.backend = probe.backend;
  const std::vector<std::string> known = RegisteredBackends();
  for (const std::string& f : flags.GetAll("--fallback")) {
    if (std::find(known.begin(), known.end(), f) == known.end()) {
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      return Status::InvalidArgument("--fallback '" + f +
                                     "' is not available in this build (allowed: " + list + ")");
    }
    if (f == g.backend)
      return Status::InvalidArgument("--fallback '" + f + "' is the primary backend");
    g.fallbacks.push_back(f);
  }
  if (!probe.fault_rules_path.empty()) {
    std::ifstream in(probe.fault_rules_path);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in.good() && !in.eof()) {
      return Status::InvalidArgument("--inject '" + probe.fault_rules_path + "' could not be read");
    }
    g.backend_options.fault_rules = text.str();
    g.backend_options.fault_rules_origin = probe.fault_rules_path;
  }
  PlannerOptions& p = g.planner;
  p.probe_missing = flags.Has("--probe-missing");
  p.exact_leaves = flags.Has("--exact-leaves");
  if (flags.Has("--probe-budget")) {
    CG_ASSIGN_OR_RETURN(int64_t v,
                        ParseIntFlag("--probe-budget", flags.Get("--probe-budget"), 1, 100000));
    p.probe_budget = static_cast<int>(v);
  }
  if (flags.Has("--max-depth")) {
    CG_ASSIGN_OR_RETURN(int64_t v, ParseIntFlag("--max-depth", flags.Get("--max-depth"), 0, 4));
    p.max_depth = static_cast<int>(v);
  }
  if (flags.Has("--alternatives")) {
    CG_ASSIGN_OR_RETURN(int64_t v,
                        ParseIntFlag("--alternatives", flags.Get("--alternatives"), 0, 100));
    p.max_alternatives = static_cast<int>(v);
  }
  probe.redo = false;
  g.probe = probe;
  CG_ASSIGN_OR_RETURN(setup.store, OpenStoreFromFlags(flags));
  return setup;
}

namespace {

std::string Usage(const FlagParser& flags) {
  return "usage: convguard plan PROBLEM [options]\n"
         "\n"
         "Explains how PROBLEM runs exactly on the backend's stack: as is when the store says\n"
         "it is OK, else through exact rewrites (padded channels, spatial tiles with halos,\n"
         "batch and group splits, another algorithm, another backend) whose every\n"
         "sub-problem is OK. Prints the chosen plan with its predicted time against the native\n"
         "time, and the alternatives. When no exact plan exists it says so and lists options\n"
         "that change the model, for a person to weigh (never applied). docs/planner.md.\n"
         "\n" +
         PlanFlagsHelp() + "\noptions:\n" + flags.OptionsHelp() + "\n" + EngineFlagsHelp() +
         "\nexit status: 0 a plan exists, 20 no exact plan, 1 failure, 2 bad input.\n";
}

// The stacks to plan on, primary first, as the backends' workers report them: planning
// runs no backend in this process.
StatusOr<std::vector<StackChoice>> StacksFromWorkers(const PlanSetup& setup,
                                                     const ProbeCallbacks& callbacks) {
  std::vector<StackChoice> stacks;
  std::vector<std::string> names = {setup.guard.backend};
  names.insert(names.end(), setup.guard.fallbacks.begin(), setup.guard.fallbacks.end());
  for (size_t i = 0; i < names.size(); ++i) {
    ProbeOptions o = setup.guard.probe;
    o.backend = names[i];
    if (i > 0) o.fault_rules_path.clear();
    std::string how;
    CG_ASSIGN_OR_RETURN(std::vector<DeviceStack> seen, IdentifyStacks(o, setup.store.get(), &how));
    if (callbacks.on_event) callbacks.on_event("stack identity of " + names[i] + ": " + how);
    const StackFingerprint& fp = seen.front().stack;
    stacks.push_back(StackChoice{names[i], fp.Id(), fp.Summary(), i > 0});
  }
  return stacks;
}

}  // namespace

int PlanMain(const Args& args) {
  FlagParser flags("plan", PlanFlagSpecs(/*for_run=*/false));
  if (Status s = flags.Parse(args); !s.ok()) {
    std::fprintf(stderr, "convguard plan: %s\n", s.message().c_str());
    return kExitBadInput;
  }
  if (flags.Has("--help")) {
    std::fputs(Usage(flags).c_str(), stdout);
    return kExitOk;
  }
  StatusOr<PlanSetup> setup = PlanSetupFromFlags(flags);
  if (!setup.ok()) {
    std::fprintf(stderr, "convguard plan: %s\n", setup.status().message().c_str());
    return setup.status().code() == StatusCode::kInvalidArgument ||
                   setup.status().code() == StatusCode::kOutOfRange
               ? kExitBadInput
               : kExitFailure;
  }
  os::InstallInterruptHandlers();
  ProbeCallbacks callbacks;
  if (flags.Has("--verbose")) {
    callbacks.on_event = [](const std::string& e) {
      std::fprintf(stderr, "convguard: %s\n", e.c_str());
    };
  }
  StatusOr<std::vector<StackChoice>> identified = StacksFromWorkers(*setup, callbacks);
  // While the planner probes, a line per verdict and per possible hang being confirmed, so
  // that seconds of probing are not silence.
  callbacks.on_verdict = [](const Verdict& v) {
    std::fprintf(stderr, "convguard plan: probed %s %s: %s (%.0f ms)\n", v.problem.c_str(),
                 v.algorithm.c_str(), std::string(VerdictName(v.kind)).c_str(), v.elapsed_ms);
  };
  callbacks.on_notice = [](const std::string& text) {
    std::fprintf(stderr, "convguard plan: %s\n", text.c_str());
  };
  if (!identified.ok()) {
    std::fprintf(stderr, "convguard plan: %s\n", identified.status().message().c_str());
    return kExitFailure;
  }
  const std::vector<StackChoice>& stacks = *identified;
  Prober prober;
  if (setup->guard.planner.probe_missing) {
    prober = MakeEngineProber(setup->guard.probe, setup->store.get(), callbacks);
  }
  // The stack goes with the plan (stdout) so that a plan over an emulated stack always
  // says so; with --json it goes to stderr and the JSON names the stack id in its leaves.
  std::fprintf(flags.Has("--json") ? stderr : stdout, "stack %s: %s\n",
               stacks.front().stack_id.c_str(), stacks.front().summary.c_str());
  StatusOr<PlanReport> report =
      MakePlan(setup->problem, stacks, *setup->store, setup->guard.planner, prober);
  if (!report.ok()) {
    std::fprintf(stderr, "convguard plan: %s\n", report.status().message().c_str());
    return kExitFailure;
  }
  const std::string text =
      flags.Has("--json") ? PlanReportToJson(*report) + "\n" : PlanReportToText(*report);
  std::fputs(text.c_str(), stdout);
  return report->chosen ? kExitOk : kExitNoPlan;
}

}  // namespace convguard::cli
