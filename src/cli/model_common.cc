#include "cli/model_common.h"

#include "cli/probe_common.h"
#include "cli/progress.h"
#include "convguard/exit_status.h"
#include "os/system.h"

namespace convguard::cli {

std::vector<FlagSpec> ModelFlagSpecs() {
  std::vector<FlagSpec> specs = {
      {"--help", "", "show this help", false, "-h"},
      {"--input", "NAME=DIMS",
       "shape of an ONNX input with dynamic dimensions, e.g. input=1x3x224x224", true},
      {"--format", "FORMAT",
       "auto (default: ONNX or a layers file by its first bytes, else a MIOpen log), onnx, "
       "log or layers (JSON from a framework, as convguard.torch writes)"},
      {"--probe", "", "probe what the store does not know now, in workers under the watchdog"},
      {"--quiet", "", "no progress output while probing"},
      {"--verbose", "",
       "say where the stack's identity came from; print worker and calibration events while "
       "probing"},
  };
  for (FlagSpec& s : EngineFlagSpecs()) {
    if (s.name == "--algo" || s.name == "--redo")
      continue;  // a model's own algorithm choice is what counts
    specs.push_back(std::move(s));
  }
  return specs;
}

std::string ModelFlagsHelp() {
  return "A layer is OK when every verdict the store has for its problem on the stack is\n"
         "OK; BAD when some verdict is not (a framework picking its own algorithm may hit\n"
         "it), and then it needs an exact plan whose every leaf is OK with no bad verdict;\n"
         "UNKNOWN without a verdict (--probe probes it); UNSUPPORTED when convguard cannot\n"
         "express it yet (ConvTranspose, 1-D, 3-D). Identical layers are probed once.\n";
}

StatusOr<ModelSetup> ModelSetupFromFlags(const FlagParser& flags, const std::string& command) {
  ModelSetup setup;
  if (flags.positionals().empty())
    return Status::InvalidArgument("no MODEL given (an ONNX file, a MIOpen log or a layers file)");
  if (command == "fix" && flags.positionals().size() > 1)
    return Status::InvalidArgument("fix takes one MODEL");
  setup.paths = flags.positionals();
  ModelReadOptions read;
  const std::string format = flags.Has("--format") ? flags.Get("--format") : "auto";
  if (format == "onnx") {
    read.format = ModelFormat::kOnnx;
  } else if (format == "log") {
    read.format = ModelFormat::kMiopenLog;
  } else if (format == "layers") {
    read.format = ModelFormat::kLayers;
  } else if (format != "auto") {
    return Status::InvalidArgument("--format '" + format +
                                   "' is unknown (allowed: auto, onnx, log, layers)");
  }
  for (const std::string& text : flags.GetAll("--input")) {
    CG_ASSIGN_OR_RETURN(OnnxInputShape shape, ParseOnnxInputShape(text));
    read.onnx.inputs.push_back(std::move(shape));
  }
  CG_ASSIGN_OR_RETURN(setup.scan.probe_options, ProbeOptionsFromFlags(flags));
  setup.scan.probe_options.repro_command = "convguard";
  setup.scan.probe = flags.Has("--probe");
  for (const std::string& path : setup.paths) {
    CG_ASSIGN_OR_RETURN(ModelConvs model, ReadModel(path, read));
    if (command == "fix" && model.format != "onnx") {
      return Status::InvalidArgument("fix writes ONNX models; '" + path + "' is a " + model.format +
                                     " (scan it instead)");
    }
    setup.models.push_back(std::move(model));
  }
  if (flags.Has("--no-store")) {
    CG_ASSIGN_OR_RETURN(setup.store, OpenSqliteStore(":memory:"));
  } else {
    CG_ASSIGN_OR_RETURN(setup.store, OpenStoreFromFlags(flags));
  }
  return setup;
}

StatusOr<ScanReport> RunScan(ModelSetup& setup, size_t index, const FlagParser& flags) {
  os::InstallInterruptHandlers();
  ProgressView view(flags.Has("--quiet"));
  StatusOr<ScanReport> report = ScanModel(setup.models[index], setup.scan, *setup.store,
                                          view.Callbacks(flags.Has("--verbose")));
  view.Finish();
  return report;
}

int ExitStatusForOutcome(ModelOutcome outcome) {
  switch (outcome) {
    case ModelOutcome::kWorks: return kExitOk;
    case ModelOutcome::kWorksWithRewrites: return kExitModelNeedsRewrites;
    case ModelOutcome::kBlocked: return kExitModelBlocked;
    case ModelOutcome::kUnknown: return kExitModelUnknown;
  }
  return kExitFailure;
}

int ExitStatusForError(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kOutOfRange:
    case StatusCode::kUnsupported: return kExitBadInput;
    default: return kExitFailure;
  }
}

}  // namespace convguard::cli
