// cli/model_common.h — what `scan` and `fix` share: reading the model, the scan options,
// and running the scan with progress on stderr.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/flags.h"
#include "convguard/scan.h"
#include "convguard/store.h"

namespace convguard::cli {

// --input, --format, --probe, --quiet, --verbose, plus the engine's flags.
std::vector<FlagSpec> ModelFlagSpecs();
// What those flags mean, for --help.
std::string ModelFlagsHelp();

struct ModelSetup {
  std::vector<std::string> paths;
  std::vector<ModelConvs> models;  // one per path, read before anything starts
  ScanOptions scan;
  std::unique_ptr<Store> store;
};

// Checks the flags, reads every model (before anything is started) and opens the store
// (in memory with --no-store). `fix` takes exactly one ONNX model. kInvalidArgument or
// kNotFound for bad input.
StatusOr<ModelSetup> ModelSetupFromFlags(const FlagParser& flags, const std::string& command);

// Scans model `index` with a progress view on stderr while probing.
StatusOr<ScanReport> RunScan(ModelSetup& setup, size_t index, const FlagParser& flags);

// The exit status of a model's answer.
int ExitStatusForOutcome(ModelOutcome outcome);

// Exit status for an error: 2 for bad input (kInvalidArgument, kNotFound, kOutOfRange,
// kUnsupported), else 1.
int ExitStatusForError(const Status& s);

}  // namespace convguard::cli
