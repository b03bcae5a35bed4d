// The backend registry: names -> backends, best real backend first.
#include <filesystem>
#include <string>
#include <vector>

#include "backends/embedded_stacks.h"
#include "backends/launch.h"
#include "backends/inject/injecting_backend.h"
#include "backends/reference/reference_backend.h"
#include "backends/torch/torch_launcher.h"
#include "convguard/backend.h"

#ifdef CONVGUARD_HAVE_ONEDNN
#include "backends/onednn/onednn_backend.h"  // MakeOneDnnBackend()
#endif
#ifdef CONVGUARD_HAVE_CUDNN
#include "backends/cudnn/cudnn_backend.h"  // MakeCudnnBackend(), CudnnDevicePresent()
#endif

namespace convguard {

std::vector<std::string> RegisteredBackends() {
  // Vendor backends (oneDNN, PyTorch, cuDNN) are listed ahead of the reference when this
  // build has them. Emulations come last: they are never a default.
  std::vector<std::string> names;
#ifdef CONVGUARD_HAVE_CUDNN
  // Only where a GPU is present: the check reads /dev and /proc, never the driver.
  if (CudnnDevicePresent()) names.push_back("cudnn");
#endif
  // Runs in a Python worker; whether an interpreter can import torch is checked when a
  // worker starts (the check costs seconds, so listing does not do it).
  names.push_back("torch");
#ifdef CONVGUARD_HAVE_ONEDNN
  names.push_back("onednn");
#endif
  names.push_back("reference");
  names.push_back("emulated-rdna1");
  return names;
}

StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view name, const BackendOptions& options) {
  std::unique_ptr<Backend> backend;
  if (name == "reference") {
    backend = MakeReferenceBackend();
#ifdef CONVGUARD_HAVE_ONEDNN
  } else if (name == "onednn") {
    backend = MakeOneDnnBackend();
#endif
#ifdef CONVGUARD_HAVE_CUDNN
  } else if (name == "cudnn") {
    backend = MakeCudnnBackend();
#endif
  } else if (name == "emulated-rdna1") {
    CG_ASSIGN_OR_RETURN(backend, inject::WrapWithFaultRules(MakeReferenceBackend(), EmulatedRdna1Rules(),
                                                            "builtin:emulated-rdna1.rules",
                                                            "emulated-rdna1"));
  } else {
    std::string known;
    for (const std::string& n : RegisteredBackends()) known += (known.empty() ? "" : ", ") + n;
    return Status::NotFound("backend '" + std::string(name) + "' is not in this build (known: " + known + ")");
  }
  if (!options.fault_rules.empty()) {
    const std::string registry_name(backend->name());
    CG_ASSIGN_OR_RETURN(backend, inject::WrapWithFaultRules(std::move(backend), options.fault_rules,
                                                            options.fault_rules_origin, registry_name,
                                                            options.device_index));
  }
  return backend;
}

StatusOr<std::vector<std::string>> WorkerCommandFor(std::string_view backend,
                                                    const std::string& convguard_exe,
                                                    const std::string& python_override) {
  if (backend == "torch") return TorchWorkerCommand(python_override);
  (void)python_override;
  return std::vector<std::string>{convguard_exe, "worker"};
}

std::string DefaultBackend() {
  // A GPU's own stack is what a user of that machine means. The checks read /dev only;
  // torch is asked (seconds) only where a GPU exists for it to reach.
#ifdef CONVGUARD_HAVE_CUDNN
  if (CudnnDevicePresent()) return "cudnn";
#endif
  std::error_code ec;
  const bool gpu = std::filesystem::exists("/dev/kfd", ec) || std::filesystem::exists("/dev/nvidia0", ec);
  if (gpu && TorchAvailable("")) return "torch";
#ifdef CONVGUARD_HAVE_ONEDNN
  return "onednn";
#else
  return "reference";
#endif
}

}  // namespace convguard
