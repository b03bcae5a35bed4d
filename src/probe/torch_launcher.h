// probe/torch_launcher.h — how the PyTorch worker is started.
//
// The "torch" backend is not C++: it is python/convguard_torch_worker.py running in a
// Python interpreter that can import torch, speaking the worker protocol
// (docs/worker-protocol.md) and filling and checking through libconvguard_check.so
// (src/capi/check_capi.h), so its verdicts are checked exactly like every other
// backend's. See docs/torch-worker.md.
//
// Choosing the interpreter. With an explicit `python_override` (the --python flag), only
// that interpreter is considered: a user who named one must not silently get another
// (and another PyTorch: a different stack). Otherwise the candidates, in order, are
// $CONVGUARD_PYTHON (when set), /usr/bin/python3 (Debian's python3-torch installs there;
// the first python3 on PATH may be another interpreter that cannot see it), and python3
// found on PATH. A bare name is looked up on PATH here, so messages show real paths. The
// first candidate for which `PY -c "import torch"` exits 0 within 60 s wins. The check
// runs through the OS seam (src/os/process.h: a child in its own process group, killed if
// it overruns) and its answer is cached for the life of the process, per (override,
// $CONVGUARD_PYTHON, $PATH).
//
// Paths. The worker script and the check library are found where the build put them
// (CONVGUARD_PYTHON_DIR, CONVGUARD_CHECKLIB_PATH, compile definitions set by
// src/capi/capi.cmake); environment variables of the same names override them (an
// installed tree, a test).
//
// Thread-safety: safe from any thread (the cache is guarded by a mutex); the first call
// may block up to 60 s per candidate interpreter.
#pragma once

#include <string>
#include <vector>

#include "convguard/status.h"

namespace convguard {

// The worker's argv before "--backend torch": {python, "-B", <python dir>/
// convguard_torch_worker.py, "--checklib", <path of libconvguard_check.so>}. ("-B": the
// interpreter writes no .pyc files into the source tree.)
// Errors: kNotFound when no candidate interpreter can import torch (the message names
// every interpreter tried and why it failed), or when the script or the library is
// missing (the message says how to build or point at it).
//
// With `identity_cache_dir` set, a successful search is also remembered there
// (probe/identity_cache.h) and reused by later processes while the interpreter, torch's
// __init__.py and version.py, the boot and the environment ($PATH, $CONVGUARD_PYTHON,
// PYTHON*) are unchanged. Known limit: torch newly installed into an interpreter that
// comes earlier in the search is not noticed until one of those changes (or
// CONVGUARD_CACHE_DIR=off for one run).
StatusOr<std::vector<std::string>> TorchWorkerCommand(const std::string& python_override,
                                                      const std::string& identity_cache_dir = "");

// Whether some candidate interpreter can import torch (TorchWorkerCommand's search).
bool TorchAvailable(const std::string& python_override, const std::string& identity_cache_dir = "");

// The interpreter TorchWorkerCommand would use (absolute path), or kNotFound as above.
StatusOr<std::string> FindTorchPython(const std::string& python_override,
                                      const std::string& identity_cache_dir = "");

// The candidate interpreters in search order, resolved to paths where they exist
// (duplicates removed); names that cannot be resolved are kept as given, so that an
// error can mention them. For tests and messages.
std::vector<std::string> TorchPythonCandidates(const std::string& python_override);

// The paths the worker command uses (after environment overrides).
std::string TorchWorkerScriptPath();
std::string CheckLibraryPath();

}  // namespace convguard
