// convguard — the command-line entry point: dispatches to one subcommand per file.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "convguard/exit_status.h"

namespace {

constexpr const char* kUsage =
    "convguard " CONVGUARD_VERSION
    " — find the convolutions that hang, crash or compute wrong results on a GPU stack.\n"
    "\n"
    "usage: convguard COMMAND [ARGS...]\n"
    "\n"
    "commands:\n"
    "  describe PROBLEM...   print a problem in every text form, with its output shape,\n"
    "                        FLOPs and memory. PROBLEM is any of: convguard's canonical\n"
    "                        form (n1_c16_h64_k32_r3_p1), a MIOpen problem key, MIOpenDriver\n"
    "                        arguments (quoted as one argument), or a benchdnn descriptor.\n"
    "\n"
    "  probe PROBLEM         run one problem in a worker under a watchdog and print its\n"
    "                        verdict (OK, SLOW, HANG, CRASH, WRONG, ...) with evidence.\n"
    "                        Also: probe --in 16 --out 32 --size 64x64 (the seed's words).\n"
    "  sweep                 probe a grid (--grid 'c=16 k=32 hw=32..64:16 r=3 p=same') or\n"
    "                        problem lists (--list FILE) in parallel, resumably.\n"
    "  plan PROBLEM          explain how PROBLEM runs exactly on the stack: as is, or\n"
    "                        through exact rewrites whose every sub-problem is OK.\n"
    "  run PROBLEM           execute that plan on generated data and check it against\n"
    "                        the float64 reference.\n"
    "  scan MODEL            every convolution of an ONNX model or a MIOpen log with its\n"
    "                        verdict on the stack and, for a bad one, its exact plan; one\n"
    "                        answer per model: works / works with rewrites / blocked.\n"
    "  fix MODEL -o OUT      write the ONNX model with every bad Conv replaced by its plan.\n"
    "  replay LOG|LIST       run what an application ran, in order, in one worker: finds\n"
    "                        hangs that need the calls before them; --minimise shrinks\n"
    "                        a failing sequence to a minimal repro.\n"
    "  pattern               where a stack's failures live, learned from its verdicts and\n"
    "                        printed as fault rules (with the errors they make).\n"
    "  report                the store for people: a terminal summary, Markdown in the\n"
    "                        seed report's sections, JSON, CSV, or one HTML page with\n"
    "                        heat maps, model strips, the pattern and recommendations.\n"
    "  db                    show, export or import the verdict store; push it into or\n"
    "                        pull another store's (a shared PostgreSQL one) into it.\n"
    "  queue                 a work queue in a shared PostgreSQL store: `queue add` a\n"
    "                        sweep once, run `sweep --from-queue` on any number of hosts,\n"
    "                        `queue status` per stack and host.\n"
    "  worker                (internal) the worker process the probe engine starts.\n"
    "\n"
    "backends: onednn (CPU, when built with oneDNN), reference (float64, any machine) and\n"
    "emulated-rdna1 (the reference under fault rules that reproduce the seed report's\n"
    "RDNA1 hangs; an EMULATION). 'convguard probe --help' lists the ones in this build.\n"
    "\n"
    "  convguard COMMAND --help   shows a command's options.\n"
    "  convguard --version        prints the version.\n"
    "\n"
    "exit status: 0 success, 1 failure while carrying out a valid request, 2 bad input.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace convguard;
  using namespace convguard::cli;
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return kExitBadInput;
  }
  const std::string_view command = argv[1];
  Args rest(argv + 2, argv + argc);
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (command == "--version") {
    std::printf("convguard %s\n", CONVGUARD_VERSION);
    return kExitOk;
  }
  if (command == "describe") return DescribeMain(rest);
  if (command == "probe") return ProbeMain(rest);
  if (command == "sweep") return SweepMain(rest);
  if (command == "db") return DbMain(rest);
  if (command == "worker") return WorkerCommandMain(rest);
  if (command == "plan") return PlanMain(rest);
  if (command == "run") return RunMain(rest);
  if (command == "scan") return ScanMain(rest);
  if (command == "fix") return FixMain(rest);
  if (command == "pattern") return PatternMain(rest);
  if (command == "report") return ReportMain(rest);
  if (command == "replay") return ReplayMain(rest);
  if (command == "queue") return QueueMain(rest);
  std::fprintf(
      stderr,
      "convguard: unknown command '%s' (allowed: describe, probe, sweep, plan, run, scan, fix, "
      "pattern, report, replay, db, "
      "worker); "
      "see 'convguard --help'\n",
      argv[1]);
  return kExitBadInput;
}
