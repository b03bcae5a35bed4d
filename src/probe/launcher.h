// probe/launcher.h — how the deciding process starts a worker for a backend, and on
// which device.
//
// The backend's descriptor says what kind of worker hosts it: C++ backends run in
// `convguard worker`, the torch backend in a Python interpreter that imports torch
// (probe/torch_launcher.h). A worker for device d of a GPU backend is pinned to that
// GPU through CUDA_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES and told its index in
// CONVGUARD_DEVICE_INDEX (what a fault rule's `device` reads).
//
// Thread-safety: functions of their arguments and the environment; the Python search is
// cached (see torch_launcher.h).
#pragma once

#include <string>
#include <vector>

#include "convguard/probe.h"
#include "convguard/status.h"
#include "probe/worker_client.h"

namespace convguard::probe {

// The spec of a worker for options.backend on whatever device it sees first: the
// command its descriptor calls for (this executable, or options.worker_executable, with
// `worker`; or the torch worker under options.python), the backend and the fault rules.
// A backend this build does not describe goes to the worker executable, whose hello or
// fatal message says whether it knows it.
// The worker's caps come from ProbeOptions::worker_memory_limit_bytes (its default of -1:
// the machine's physical memory for a CPU-only backend, none otherwise) and
// worker_cpu_seconds.
// Errors: a missing runtime (no interpreter imports torch), no executable path.
StatusOr<WorkerSpec> BaseWorkerSpec(const ProbeOptions& options);

// `base` pinned to device `d` of those this process sees: index d of the parent's own
// CUDA/HIP_VISIBLE_DEVICES list where it has one (so that CUDA_VISIBLE_DEVICES=2,3 and
// device 0 pin the worker to GPU 2), else d.
WorkerSpec PinnedWorkerSpec(const WorkerSpec& base, int d);

// A device selection must name devices the backend sees, each once: a typo in --devices
// has to stop the run before anything is probed. Empty `devices` means all of them.
Status CheckDeviceSelection(const std::vector<int>& devices, int visible,
                            const std::string& backend);

// The devices to use: `selected`, or every one of `visible` when none is selected.
std::vector<int> DevicesToUse(const std::vector<int>& selected, int visible);

// Whether a worker that saw every device may serve device 0's pool as it is: it runs on
// the first device it sees, which is device 0 unless an inherited CONVGUARD_DEVICE_INDEX
// says the process stands for another (then it must be replaced by a pinned one).
bool UnpinnedWorkerServesDeviceZero();

}  // namespace convguard::probe
