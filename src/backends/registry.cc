// The backend registry: one descriptor per backend of this build, and the factories.
//
// Every fact about a backend that other layers need (how its worker is launched,
// whether it may run in-process, its knobs) is in its descriptor here; nothing else
// special-cases a backend by name.
#include <functional>
#include <string>
#include <vector>

#include "backends/embedded_stacks.h"
#include "backends/inject/injecting_backend.h"
#include "backends/reference/reference_backend.h"
#include "convguard/backend.h"
#include "os/system.h"

#ifdef CONVGUARD_HAVE_ONEDNN
#include "backends/onednn/onednn_backend.h"  // MakeOneDnnBackend(), OneDnnKnobs()
#endif
#ifdef CONVGUARD_HAVE_CUDNN
#include "backends/cudnn/cudnn_backend.h"  // MakeCudnnBackend(), CudnnDevicePresent()
#endif

namespace convguard {
namespace {

constexpr const char* kForbidVariable = "CONVGUARD_FORBID_IN_PROCESS_BACKENDS";

struct Entry {
  BackendDescriptor descriptor;
  // Creates the backend in this process; empty for a backend that runs only in a worker
  // of another language.
  std::function<StatusOr<std::unique_ptr<Backend>>()> create;
  // Whether it is offered on this machine (listing reads /dev and /proc, never a driver).
  std::function<bool()> available;
};

// In order of preference: vendor backends (cuDNN, PyTorch, oneDNN) ahead of the
// reference when this build has them; emulations last, since they are never a default.
const std::vector<Entry>& Entries() {
  static const std::vector<Entry> entries = [] {
    std::vector<Entry> e;
    const auto always = [] { return true; };
#ifdef CONVGUARD_HAVE_CUDNN
    e.push_back({{"cudnn",
                  "cuDNN's forward and backward algorithms on an NVIDIA GPU",
                  WorkerKind::kNative,
                  /*in_process=*/true,
                  {"CUDNN_* (not CUDNN_LOG*)", "NVIDIA_TF32_OVERRIDE", "CUDA_FORCE_PTX_JIT",
                   "CUDA_DISABLE_PTX_JIT", "CUDA_LAUNCH_BLOCKING", "CUDA_MODULE_LOADING"},
                  /*emulation=*/false,
                  /*cpu_only=*/false,
                  /*device_tensors=*/true},
                 [] { return StatusOr<std::unique_ptr<Backend>>(MakeCudnnBackend()); },
                 [] { return CudnnDevicePresent(); }});
#endif
    // Whether an interpreter can import torch is checked when a worker starts (it costs
    // seconds), so the backend is always listed.
    e.push_back(
        {{"torch",
          "PyTorch in a Python worker: cuDNN on NVIDIA, MIOpen on AMD, oneDNN on the CPU",
          WorkerKind::kPython,
          /*in_process=*/false,
          {"MIOPEN_*", "DNNL_*", "ONEDNN_*", "HSA_OVERRIDE_GFX_VERSION", "CONVGUARD_TORCH_THREADS"},
          /*emulation=*/false},
         nullptr,
         always});
#ifdef CONVGUARD_HAVE_ONEDNN
    e.push_back(
        {{"onednn", "oneDNN on the CPU", WorkerKind::kNative, /*in_process=*/true, OneDnnKnobs(),
          /*emulation=*/false, /*cpu_only=*/true},
         [] { return StatusOr<std::unique_ptr<Backend>>(MakeOneDnnBackend()); },
         always});
#endif
    e.push_back({{"reference",
                  "convguard's float64 reference on the CPU",
                  WorkerKind::kNative,
                  /*in_process=*/true,
                  {},
                  /*emulation=*/false,
                  /*cpu_only=*/true},
                 [] { return StatusOr<std::unique_ptr<Backend>>(MakeReferenceBackend()); },
                 always});
    e.push_back(
        {{"emulated-rdna1",
          "EMULATION: the reference under fault rules that make the seed report's problems spin",
          WorkerKind::kNative,
          /*in_process=*/true,
          {},
          /*emulation=*/true,
          /*cpu_only=*/true},
         [] {
           return inject::WrapWithFaultRules(MakeReferenceBackend(), EmulatedRdna1Rules(),
                                             "builtin:emulated-rdna1.rules", "emulated-rdna1");
         },
         always});
    return e;
  }();
  return entries;
}

const Entry* Find(std::string_view name) {
  for (const Entry& e : Entries()) {
    if (e.descriptor.name == name) return &e;
  }
  return nullptr;
}

Status NotFound(std::string_view name) {
  std::string known;
  for (const std::string& n : RegisteredBackends()) known += (known.empty() ? "" : ", ") + n;
  return Status::NotFound("backend '" + std::string(name) +
                          "' is not in this build (known: " + known + ")");
}

}  // namespace

std::vector<BackendDescriptor> AvailableBackends() {
  std::vector<BackendDescriptor> out;
  for (const Entry& e : Entries()) {
    if (e.available()) out.push_back(e.descriptor);
  }
  return out;
}

std::vector<std::string> RegisteredBackends() {
  std::vector<std::string> names;
  for (const BackendDescriptor& d : AvailableBackends()) names.push_back(d.name);
  return names;
}

StatusOr<BackendDescriptor> DescribeBackend(std::string_view name) {
  const Entry* e = Find(name);
  if (e == nullptr) return NotFound(name);
  return e->descriptor;
}

StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view name,
                                                 const BackendOptions& options) {
  const Entry* e = Find(name);
  if (e == nullptr) return NotFound(name);
  if (!e->create) {
    return Status::Unsupported(
        "the " + e->descriptor.name +
        " backend runs only in its Python worker; in-process execution needs a C++ "
        "backend (reference, emulated-rdna1, onednn, cudnn where built)");
  }
  if (!options.in_worker && os::GetEnv(kForbidVariable).value_or("") == "1") {
    return Status::Unsupported("backend '" + e->descriptor.name +
                               "' would run in this process, which " + kForbidVariable +
                               "=1 forbids (vendor code runs only in workers)");
  }
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, e->create());
  if (!options.fault_rules.empty()) {
    const std::string registry_name(backend->name());
    CG_ASSIGN_OR_RETURN(backend, inject::WrapWithFaultRules(std::move(backend), options.fault_rules,
                                                            options.fault_rules_origin,
                                                            registry_name, options.device_index));
  }
  return backend;
}

}  // namespace convguard
