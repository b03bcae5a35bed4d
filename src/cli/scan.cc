// convguard scan: will a model run on a stack, layer by layer, and how.
#include <algorithm>
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/model_common.h"
#include "convguard/exit_status.h"

namespace convguard::cli {
namespace {

std::vector<FlagSpec> ScanFlagSpecs() {
  std::vector<FlagSpec> specs = ModelFlagSpecs();
  specs.push_back(
      {"--training", "", "also every layer's backward-data and backward-weights problems"});
  specs.push_back({"--json", "", "print the report as JSON"});
  specs.push_back({"--markdown", "", "print the report as Markdown"});
  return specs;
}

std::string Usage(const FlagParser& flags) {
  return "usage: convguard scan MODEL... [options]\n"
         "\n"
         "Lists every convolution of MODEL (an ONNX file, or the log of an application run\n"
         "with MIOPEN_ENABLE_LOGGING_CMD=1) with its problem (canonical form and MIOpen key)\n"
         "and its verdict on the backend's stack from the store, and for a bad layer the\n"
         "exact plan that runs it anyway. Ends with one answer: works / works with exact\n"
         "rewrites (convguard fix writes that model) / blocked / unknown. With several\n"
         "models, one summary row each (the seed report's \"Models That Work\").\n"
         "\n" +
         ModelFlagsHelp() + "\noptions:\n" + flags.OptionsHelp() +
         "\nexit status: 0 works as is, 21 works with exact rewrites, 22 blocked, 23 some\n"
         "layer has no verdict (use --probe), 1 failure, 2 bad input, 130 interrupted.\n";
}

}  // namespace

int ScanMain(const Args& args) {
  FlagParser flags("scan", ScanFlagSpecs());
  if (Status s = flags.Parse(args); !s.ok()) {
    std::fprintf(stderr, "convguard scan: %s\n", s.message().c_str());
    return kExitBadInput;
  }
  if (flags.Has("--help")) {
    std::fputs(Usage(flags).c_str(), stdout);
    return kExitOk;
  }
  if (flags.Has("--json") && flags.Has("--markdown")) {
    std::fprintf(stderr, "convguard scan: --json and --markdown exclude each other\n");
    return kExitBadInput;
  }
  StatusOr<ModelSetup> setup = ModelSetupFromFlags(flags, "scan");
  if (!setup.ok()) {
    std::fprintf(stderr, "convguard scan: %s\n", setup.status().message().c_str());
    return ExitStatusForError(setup.status());
  }
  setup->scan.training = flags.Has("--training");
  std::vector<ScanReport> reports;
  int status = kExitOk;
  for (size_t i = 0; i < setup->models.size(); ++i) {
    StatusOr<ScanReport> report = RunScan(*setup, i, flags);
    if (!report.ok()) {
      std::fprintf(stderr, "convguard scan: %s: %s\n", setup->paths[i].c_str(),
                   report.status().message().c_str());
      return kExitFailure;
    }
    // Several models: the most severe answer decides (blocked, unknown, rewrites, works).
    status = std::max(status, ExitStatusForOutcome(report->outcome));
    reports.push_back(std::move(*report));
  }
  std::string text;
  if (reports.size() == 1) {
    text = flags.Has("--json")       ? ScanReportToJson(reports.front()) + "\n"
           : flags.Has("--markdown") ? ScanReportToMarkdown(reports.front())
                                     : ScanReportToText(reports.front());
  } else {
    text = flags.Has("--json")       ? ScanSummaryToJson(reports) + "\n"
           : flags.Has("--markdown") ? ScanSummaryToMarkdown(reports)
                                     : ScanSummaryToText(reports);
  }
  std::fputs(text.c_str(), stdout);
  return status;
}

}  // namespace convguard::cli
