// convguard probe: probes one problem (with one or every algorithm) and prints verdicts.
#include "convguard/probe.h"

#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/probe_common.h"
#include "convguard/exit_status.h"
#include "convguard/text_forms.h"
#include "os/system.h"

namespace convguard::cli {
namespace {

std::vector<FlagSpec> ProbeFlagSpecs() {
  std::vector<FlagSpec> specs = {
      {"--help", "", "show this help", false, "-h"},
      {"--in", "C", "seed vocabulary: input channels (with --out and --size)"},
      {"--out", "K", "seed vocabulary: output channels"},
      {"--size", "HxW", "seed vocabulary: input size, e.g. 64x64 or 64"},
      {"--kernel", "R", "seed vocabulary: square kernel size (default 3)"},
      {"--padding", "P", "seed vocabulary: padding on every side (default 1)"},
      {"--batch", "N", "seed vocabulary: batch size (default 1)"},
      {"--verbose", "", "print worker and calibration events"},
  };
  for (FlagSpec& s : EngineFlagSpecs()) specs.push_back(std::move(s));
  return specs;
}

std::string Usage(const FlagParser& flags) {
  return "usage: convguard probe PROBLEM [options]\n"
         "       convguard probe --in C --out K --size HxW [--kernel R] [--padding P] [options]\n"
         "\n"
         "Runs PROBLEM in a worker process under a watchdog, checks the result against a\n"
         "float64 reference and prints the verdict with its evidence and a repro line.\n"
         "PROBLEM is any text form (see 'convguard describe --help'). The second form takes\n"
         "the seed report's words: nn.Conv2d(C, K, R, padding=P) on an N x C x H x W input.\n"
         "A verdict the store already has is shown without probing again (--redo probes).\n"
         "\n"
         "options:\n" +
         flags.OptionsHelp() + "\n" + EngineFlagsHelp() +
         "\n"
         "exit status: 0 OK, 10 SLOW, 11 HANG, 12 CRASH, 13 WRONG, 14 MISTRUSTED, 15 ERROR,\n"
         "16 UNSUPPORTED, 17 OOM (with several algorithms: the most severe), 1 failure to\n"
         "carry out the probe, 2 bad input, 130 interrupted.\n";
}

StatusOr<Problem> ProblemFromSeedWords(const FlagParser& f) {
  for (const char* required : {"--in", "--out", "--size"}) {
    if (!f.Has(required)) {
      return Status::InvalidArgument(
          std::string("seed vocabulary needs --in, --out and --size (missing ") + required + ")");
    }
  }
  Problem p;
  CG_ASSIGN_OR_RETURN(p.c, ParseIntFlag("--in", f.Get("--in"), 1, int64_t{1} << 31));
  CG_ASSIGN_OR_RETURN(p.k, ParseIntFlag("--out", f.Get("--out"), 1, int64_t{1} << 31));
  const std::string size = f.Get("--size");
  const size_t x = size.find('x');
  CG_ASSIGN_OR_RETURN(p.h, ParseIntFlag("--size", size.substr(0, x), 1, int64_t{1} << 31));
  p.w = p.h;
  if (x != std::string::npos) {
    CG_ASSIGN_OR_RETURN(p.w, ParseIntFlag("--size", size.substr(x + 1), 1, int64_t{1} << 31));
  }
  CG_ASSIGN_OR_RETURN(p.r, ParseIntFlag("--kernel", f.Get("--kernel", "3"), 1, int64_t{1} << 31));
  p.s = p.r;
  CG_ASSIGN_OR_RETURN(int64_t pad,
                      ParseIntFlag("--padding", f.Get("--padding", "1"), 0, int64_t{1} << 31));
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = pad;
  CG_ASSIGN_OR_RETURN(p.n, ParseIntFlag("--batch", f.Get("--batch", "1"), 1, int64_t{1} << 31));
  CG_RETURN_IF_ERROR(Validate(p));
  return p;
}

}  // namespace

int ProbeMain(const Args& args) {
  FlagParser flags("probe", ProbeFlagSpecs());
  if (Status s = flags.Parse(args); !s.ok()) {
    std::fprintf(stderr, "convguard probe: %s\n", s.message().c_str());
    return kExitBadInput;
  }
  if (flags.Has("--help")) {
    std::fputs(Usage(flags).c_str(), stdout);
    return kExitOk;
  }
  const bool seed_words = flags.Has("--in") || flags.Has("--out") || flags.Has("--size");
  StatusOr<Problem> problem =
      Status::InvalidArgument("no PROBLEM given; see 'convguard probe --help'");
  if (seed_words) {
    if (!flags.positionals().empty()) {
      std::fprintf(stderr, "convguard probe: give either PROBLEM or --in/--out/--size, not both\n");
      return kExitBadInput;
    }
    problem = ProblemFromSeedWords(flags);
  } else if (flags.positionals().size() == 1) {
    problem = ParseProblem(flags.positionals().front());
  } else if (flags.positionals().size() > 1) {
    problem = Status::InvalidArgument(
        "one PROBLEM at a time (quote MIOpenDriver arguments as one "
        "argument; use 'convguard sweep' for many)");
  }
  if (!problem.ok()) {
    std::fprintf(stderr, "convguard probe: %s\n", problem.status().message().c_str());
    return kExitBadInput;
  }
  StatusOr<ProbeOptions> options = ProbeOptionsFromFlags(flags);
  if (!options.ok()) {
    std::fprintf(stderr, "convguard probe: %s\n", options.status().message().c_str());
    return kExitBadInput;
  }
  StatusOr<std::unique_ptr<Store>> store = OpenStoreFromFlags(flags);
  if (!store.ok()) {
    std::fprintf(stderr, "convguard probe: store: %s\n", store.status().message().c_str());
    return store.status().code() == StatusCode::kInvalidArgument ? kExitBadInput : kExitFailure;
  }

  os::InstallInterruptHandlers();
  ProbeCallbacks callbacks;
  if (flags.Has("--verbose")) {
    callbacks.on_event = [](const std::string& e) {
      std::fprintf(stderr, "convguard: %s\n", e.c_str());
    };
  }
  StatusOr<std::unique_ptr<ProbeEngine>> engine =
      ProbeEngine::Start(*options, store->get(), callbacks);
  if (!engine.ok()) {
    std::fprintf(stderr, "convguard probe: %s\n", engine.status().message().c_str());
    return kExitFailure;
  }
  // Devices whose stacks differ each probe the problem; each verdict is shown with its own.
  const std::vector<DeviceStack> device_stacks = (*engine)->stacks();
  auto stack_of = [&](const Verdict& v) -> const StackFingerprint* {
    for (const DeviceStack& ds : device_stacks) {
      if (ds.stack.Id() == v.stack_id) return &ds.stack;
    }
    return &device_stacks.front().stack;
  };
  StatusOr<ProbeRunResult> result = (*engine)->Run({ProbeJob{*problem, flags.Get("--algo")}});
  if (!result.ok()) {
    std::fprintf(stderr, "convguard probe: %s\n", result.status().message().c_str());
    return kExitFailure;
  }
  if (result->interrupted) {
    std::fprintf(stderr,
                 "convguard probe: interrupted; nothing recorded for the probe in flight\n");
    return kExitInterrupted;
  }
  std::vector<Verdict> all = result->known;
  for (const Verdict& v : result->known) {
    std::printf("(from the store; --redo probes again)\n%s", FormatVerdict(v, stack_of(v)).c_str());
  }
  for (const Verdict& v : result->verdicts) {
    std::printf("%s", FormatVerdict(v, stack_of(v)).c_str());
    all.push_back(v);
  }
  return ExitStatusForVerdicts(all);
}

}  // namespace convguard::cli
