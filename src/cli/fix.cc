// convguard fix: writes an ONNX model whose bad convolutions run through exact plans.
#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/commands.h"
#include "cli/model_common.h"
#include "convguard/exit_status.h"

namespace convguard::cli {
namespace {

std::vector<FlagSpec> FixFlagSpecs() {
  std::vector<FlagSpec> specs = ModelFlagSpecs();
  specs.push_back({"--output", "FILE",
                   "where the fixed model goes (required; never the model itself)", false, "-o"});
  specs.push_back({"--force", "", "replace FILE when it exists"});
  specs.push_back({"--training", "",
                   "fix for training too: every plan's leaves also run backward-data and "
                   "backward-weights"});
  return specs;
}

std::string Usage(const FlagParser& flags) {
  return "usage: convguard fix MODEL.onnx -o FIXED.onnx [options]\n"
         "\n"
         "Scans MODEL like 'convguard scan' and writes FIXED, in which every bad Conv is\n"
         "replaced by its exact plan in standard ONNX operators (Conv, Slice, Pad on\n"
         "channels, Concat), with weights cut and padded inside new initializers. Spatial\n"
         "tiles are Slices with explicit halos, so a runtime's pad fusion cannot undo them.\n"
         "The fixed model computes the same function and passes the ONNX checker; every\n"
         "change is listed. When every layer runs as is, nothing is written. When some\n"
         "layer is blocked or unknown, nothing is written either. With --training, a layer\n"
         "whose backward problems misbehave is fixed too, and every plan's leaves run in all\n"
         "three directions, so the fixed model also trains.\n"
         "\n" +
         ModelFlagsHelp() + "\noptions:\n" + flags.OptionsHelp() +
         "\nexit status: 0 fixed (or nothing to fix), 22 blocked, 23 some layer has no verdict\n"
         "(use --probe), 1 failure, 2 bad input, 130 interrupted.\n";
}

}  // namespace

int FixMain(const Args& args) {
  FlagParser flags("fix", FixFlagSpecs());
  if (Status s = flags.Parse(args); !s.ok()) {
    std::fprintf(stderr, "convguard fix: %s\n", s.message().c_str());
    return kExitBadInput;
  }
  if (flags.Has("--help")) {
    std::fputs(Usage(flags).c_str(), stdout);
    return kExitOk;
  }
  if (!flags.Has("--output")) {
    std::fprintf(stderr, "convguard fix: no --output FILE given (where the fixed model goes)\n");
    return kExitBadInput;
  }
  const std::string out = flags.Get("--output");
  std::error_code ec;
  if (std::filesystem::exists(out, ec) && !flags.Has("--force")) {
    std::fprintf(
        stderr,
        "convguard fix: '%s' exists; choose another --output or add --force to replace it\n",
        out.c_str());
    return kExitBadInput;
  }
  StatusOr<ModelSetup> setup = ModelSetupFromFlags(flags, "fix");
  if (!setup.ok()) {
    std::fprintf(stderr, "convguard fix: %s\n", setup.status().message().c_str());
    return ExitStatusForError(setup.status());
  }
  const std::string& path = setup->paths.front();
  if (std::filesystem::exists(out, ec) && std::filesystem::equivalent(path, out, ec)) {
    std::fprintf(
        stderr,
        "convguard fix: --output names the model itself; the original is never overwritten\n");
    return kExitBadInput;
  }
  setup->scan.training = flags.Has("--training");
  StatusOr<ScanReport> report = RunScan(*setup, 0, flags);
  if (!report.ok()) {
    std::fprintf(stderr, "convguard fix: %s\n", report.status().message().c_str());
    return kExitFailure;
  }
  std::printf("stack %s: %s\n", report->stack.stack_id.c_str(), report->stack.summary.c_str());
  for (const std::string& note : report->notes) std::printf("note: %s\n", note.c_str());
  switch (report->outcome) {
    case ModelOutcome::kWorks:
      std::printf("nothing to fix: %s; no file written\n", report->answer.c_str());
      return kExitOk;
    case ModelOutcome::kBlocked:
    case ModelOutcome::kUnknown:
      std::printf("not fixed: %s; no file written\n", report->answer.c_str());
      return ExitStatusForOutcome(report->outcome);
    case ModelOutcome::kWorksWithRewrites: break;
  }
  std::vector<OnnxConvFix> fixes;
  for (const ScannedLayer& layer : report->layers) {
    // With --training the plan is the forward problem's, whose leaves are OK in all
    // three directions, also where only a backward problem was bad.
    const ScannedProblem* fix = layer.fix();
    if (fix == nullptr || !fix->plan) continue;
    fixes.push_back(OnnxConvFix{layer.conv.node, *fix->plan});
  }
  OnnxReadOptions read;
  for (const std::string& text : flags.GetAll("--input"))
    read.inputs.push_back(*ParseOnnxInputShape(text));
  StatusOr<OnnxFixReport> fixed = WriteFixedOnnxModel(path, read, fixes, out);
  if (!fixed.ok()) {
    std::fprintf(stderr, "convguard fix: %s\n", fixed.status().message().c_str());
    return ExitStatusForError(fixed.status());
  }
  for (const std::string& change : fixed->changes) std::printf("fixed %s\n", change.c_str());
  std::printf("%s\nwrote %s: %lld node(s) replaced by %lld, %lld initializer(s) added\n",
              report->answer.c_str(), out.c_str(), static_cast<long long>(fixed->nodes_removed),
              static_cast<long long>(fixed->nodes_added),
              static_cast<long long>(fixed->initializers_added));
  return kExitOk;
}

}  // namespace convguard::cli
