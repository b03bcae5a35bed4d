#include "probe/launcher.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>

#include "convguard/backend.h"
#include "os/system.h"
#include "probe/torch_launcher.h"

namespace convguard {
namespace probe {
namespace {

// The name of the d-th device this process can see, as a value for `variable`: the
// d-th entry of the parent's own list when it has one, else d itself.
std::string VisibleDeviceName(const std::string& variable, int d) {
  const std::optional<std::string> list = os::GetEnv(variable);
  if (!list || list->empty()) return std::to_string(d);
  std::vector<std::string> entries;
  size_t start = 0;
  while (start <= list->size()) {
    const size_t comma = std::min(list->find(',', start), list->size());
    entries.push_back(list->substr(start, comma - start));
    start = comma + 1;
  }
  return d < static_cast<int>(entries.size()) ? entries[d] : std::to_string(d);
}

}  // namespace

StatusOr<WorkerSpec> BaseWorkerSpec(const ProbeOptions& options) {
  // A backend this build does not describe is left to the worker executable, which says
  // in its hello (or its fatal message) whether it knows it: another build's worker, or a
  // test's deliberately misbehaving one.
  const StatusOr<BackendDescriptor> described = DescribeBackend(options.backend);
  const WorkerKind kind = described.ok() ? described->worker : WorkerKind::kNative;
  WorkerSpec spec;
  switch (kind) {
    case WorkerKind::kNative: {
      std::string exe = options.worker_executable;
      if (exe.empty()) {
        CG_ASSIGN_OR_RETURN(exe, os::SelfExecutablePath());
      }
      spec.command = {exe, "worker"};
      break;
    }
    case WorkerKind::kPython:
      CG_ASSIGN_OR_RETURN(spec.command,
                          TorchWorkerCommand(options.python, options.identity_cache_dir));
      break;
  }
  spec.backend = options.backend;
  spec.fault_rules_path = options.fault_rules_path;
  if (options.worker_memory_limit_bytes > 0) {
    spec.memory_limit_bytes = static_cast<uint64_t>(options.worker_memory_limit_bytes);
  } else if (options.worker_memory_limit_bytes < 0 && described.ok() && described->cpu_only) {
    spec.memory_limit_bytes = os::PhysicalMemoryBytes();
  }
  if (options.worker_cpu_seconds > 0) {
    spec.cpu_limit_s = static_cast<uint64_t>(options.worker_cpu_seconds);
  }
  return spec;
}

WorkerSpec PinnedWorkerSpec(const WorkerSpec& base, int d) {
  WorkerSpec spec = base;
  spec.env = {{"CUDA_VISIBLE_DEVICES", VisibleDeviceName("CUDA_VISIBLE_DEVICES", d)},
              {"HIP_VISIBLE_DEVICES", VisibleDeviceName("HIP_VISIBLE_DEVICES", d)},
              {"CONVGUARD_DEVICE_INDEX", std::to_string(d)}};
  return spec;
}

Status CheckDeviceSelection(const std::vector<int>& devices, int visible,
                            const std::string& backend) {
  if (devices.empty()) return Status::Ok();
  if (visible <= 0) {
    return Status::InvalidArgument(
        "devices were selected, but backend '" + backend +
        "' sees no GPU (it runs on the CPU; leave the device selection out)");
  }
  std::set<int> seen;
  for (int d : devices) {
    if (d < 0 || d >= visible) {
      return Status::InvalidArgument("device " + std::to_string(d) + " is not visible: backend '" +
                                     backend + "' sees " + std::to_string(visible) + " GPU" +
                                     (visible == 1 ? "" : "s") + " (devices 0.." +
                                     std::to_string(visible - 1) + ")");
    }
    if (!seen.insert(d).second) {
      return Status::InvalidArgument("device " + std::to_string(d) + " is selected twice");
    }
  }
  return Status::Ok();
}

std::vector<int> DevicesToUse(const std::vector<int>& selected, int visible) {
  if (!selected.empty()) return selected;
  std::vector<int> all;
  for (int d = 0; d < visible; ++d) all.push_back(d);
  return all;
}

bool UnpinnedWorkerServesDeviceZero() {
  const std::string inherited = os::GetEnv("CONVGUARD_DEVICE_INDEX").value_or("");
  return inherited.empty() || inherited == "0";
}

}  // namespace probe

std::string DefaultBackend(const std::string& identity_cache_dir) {
  // A GPU's own stack is what a user of that machine means. The registry lists cuDNN only
  // where an NVIDIA GPU is present (it reads /dev); torch is asked (seconds) only where a
  // GPU exists for it to reach.
  const std::vector<std::string> available = RegisteredBackends();
  const auto offered = [&](const char* name) {
    return std::find(available.begin(), available.end(), name) != available.end();
  };
  if (offered("cudnn")) return "cudnn";
  std::error_code ec;
  const bool gpu =
      std::filesystem::exists("/dev/kfd", ec) || std::filesystem::exists("/dev/nvidia0", ec);
  if (gpu && TorchAvailable("", identity_cache_dir)) return "torch";
  return offered("onednn") ? "onednn" : "reference";
}

}  // namespace convguard
