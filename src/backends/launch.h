// backends/launch.h — how the probe engine starts a worker for a backend.
//
// Native backends (reference, oneDNN, cuDNN, emulations) run inside `convguard worker`.
// The PyTorch backend runs in a Python interpreter that can import torch
// (python/convguard_torch_worker.py), speaking the same protocol.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "convguard/status.h"

namespace convguard {

// The argv that starts a worker for `backend`, before "--backend NAME": {convguard_exe,
// "worker"} for native backends. `python_override` picks the interpreter for "torch"
// (empty: auto-detect). Errors: kNotFound when the backend's runtime is missing.
StatusOr<std::vector<std::string>> WorkerCommandFor(std::string_view backend,
                                                    const std::string& convguard_exe,
                                                    const std::string& python_override);

}  // namespace convguard
