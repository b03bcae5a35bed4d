// convguard/backend.h — code that runs convolution problems on one stack.
//
// A Backend lives inside a worker process (see docs/worker-protocol.md); the deciding
// process never calls vendor code, except guarded execution, which runs plans in the
// caller's process by request. Every backend has a BackendDescriptor (how it is
// launched, where it may run, its knobs): the one place that says so. Backends are
// created by name through the registry (CreateBackend) and may be wrapped (fault
// injection wraps any backend).
//
// Ownership: the worker owns its one Backend. Thread-safety: none; a backend is used
// from one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/device.h"
#include "convguard/problem.h"
#include "convguard/stack.h"
#include "convguard/status.h"
#include "convguard/tensor.h"

namespace convguard {

struct RunOptions {
  int warmup = 1;   // untimed runs first (kernel compilation, caches)
  int repeats = 3;  // timed runs; the result tensor is the last run's
};

struct RunResult {
  std::vector<double> times_ms;  // one per timed repeat
  std::string implementation;    // what the library actually dispatched to, if it says
  // False when the implementation rounds even on exactly filled data (Winograd, FFT): the
  // worker then compares with a tolerance derived from the accumulation length instead
  // of demanding exact equality.
  bool exact = true;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // The registry name.
  virtual std::string_view name() const = 0;

  // One-time set-up (contexts, handles). Called once by the worker before anything else.
  virtual Status Init() = 0;

  // REQUIRES: Init() succeeded.
  virtual StackFingerprint Fingerprint() const = 0;

  // The algorithms this backend offers for `p`; the first is the backend's default
  // choice. Names are stable (they key verdicts) and contain no whitespace.
  virtual std::vector<std::string> Algorithms(const Problem& p) const = 0;

  // OK, or kUnsupported with a reason a person can act on.
  virtual Status Supports(const Problem& p, std::string_view algorithm) const = 0;

  // Runs p.direction with `algorithm`: reads the operands the direction reads from `io`
  // and overwrites the tensor it produces. Values are float32 holding numbers that are
  // exact in p.dtype; a backend computing in f16/bf16 converts internally.
  // Errors: kUnsupported (a verdict UNSUPPORTED), kResourceExhausted (OOM), anything else
  // is a backend ERROR verdict.
  // REQUIRES: Supports(p, algorithm).ok(); `io` sized by ConvTensors<float>::Allocate(p).
  virtual StatusOr<RunResult> Run(const Problem& p, std::string_view algorithm,
                                  ConvTensors<float>& io, const RunOptions& options) = 0;

  // Extra time a first call of a new problem may need (kernel compilation, tuning),
  // in milliseconds. The deadline policy allows for it.
  virtual double first_call_allowance_ms() const { return 0.0; }

  // Whether several workers on this backend's device contend for it (a GPU time-slices
  // between processes, so a hang in one worker slows every other). CPU backends whose
  // workers each get a core do not.
  virtual bool runs_on_shared_device() const { return false; }

  // How many devices of this kind the worker can see (GPUs; 0 for the CPU). The probe
  // engine starts one pool per device, pinning workers with CUDA/HIP_VISIBLE_DEVICES.
  virtual int visible_devices() const { return 0; }

  // Fault injection's "spin" on a device backend: launches a kernel that never finishes
  // on the backend's device and waits for it, like a real GPU hang (the process blocks
  // inside the driver; only SIGKILL from outside ends it). Backends without a device
  // return false at once and the fault spins on the CPU instead.
  virtual bool HangOnDevice() { return false; }

  // The backend without injected faults: the engine's device health checks run on it
  // (they ask whether the device works, not whether a shape does). A wrapper that injects
  // faults returns what it wraps; every other backend is itself.
  virtual Backend& WithoutInjectedFaults() { return *this; }

  // Device-resident execution: the backend's device memory, or null for a backend that
  // computes in host memory (the CPU backends). The backend owns it.
  virtual DeviceMemory* device_memory() { return nullptr; }
  // `p` with `algorithm` prepared to run on device tensors. kUnsupported for a backend
  // without device memory, and as Supports() says for what it cannot run.
  // REQUIRES: Init() succeeded.
  virtual StatusOr<std::unique_ptr<DeviceCall>> PrepareDeviceCall(const Problem& p,
                                                                  std::string_view algorithm) {
    (void)p;
    (void)algorithm;
    return Status::Unsupported("backend '" + std::string(name()) +
                               "' computes in host memory and takes no device tensors");
  }
};

// Options for creating a backend by name.
struct BackendOptions {
  // Fault-injection rules text (see docs/fault-injection.md); empty for none. When set,
  // the named backend is wrapped so that matching problems misbehave for real.
  std::string fault_rules;
  // Name shown for the rules (a path, or "builtin:emulated-rdna1").
  std::string fault_rules_origin;
  // Which of the probe engine's devices the backend's process serves (as `--devices`
  // numbers them; a worker learns it from CONVGUARD_DEVICE_INDEX): what a fault rule's
  // `device` reads. 0 in a process that serves one device or none.
  int device_index = 0;
  // Set by `convguard worker`: the backend is created in a worker process. Everywhere
  // else it is created in the caller's process (guarded execution, benchmarks), which
  // the environment variable CONVGUARD_FORBID_IN_PROCESS_BACKENDS=1 forbids: a check
  // that a deciding process (plan, sweep, scan) runs no vendor code itself.
  bool in_worker = false;
};

// Where a backend's code runs when it is probed.
enum class WorkerKind {
  kNative,  // `convguard worker --backend NAME`: C++ code of this build
  kPython,  // a Python interpreter that can import the framework (the torch worker)
};

// What convguard knows of a backend without starting it.
struct BackendDescriptor {
  std::string name;     // the registry name, as --backend takes it
  std::string summary;  // one line for people
  WorkerKind worker = WorkerKind::kNative;
  // Whether the backend can be created in the caller's process (guarded execution runs
  // plans there). C++ backends can; the torch backend exists only in its Python worker.
  bool in_process = true;
  // Environment variables that steer its solver choice; those set when a worker starts
  // are part of its stack (StackFingerprint::knobs). A trailing '*' means a prefix.
  std::vector<std::string> knobs;
  bool emulation = false;  // an emulation: never a default, always labelled
  // Runs on the CPU only (no device memory, no driver reserving address space): its
  // workers get a default address-space cap (ProbeOptions::worker_memory_limit_bytes).
  bool cpu_only = false;
  // Its tensors may live in its device memory (Backend::device_memory): guarded
  // execution on tensors already there (Guard::RunOnDevice, `run --device-tensors`).
  bool device_tensors = false;
};

// The descriptors of the backends this build offers on this machine, best real backend
// first (cuDNN only where an NVIDIA GPU is present; emulations last).
std::vector<BackendDescriptor> AvailableBackends();
// Their names, in the same order.
std::vector<std::string> RegisteredBackends();

// The descriptor of `name` (any backend of this build, available here or not).
// kNotFound names the available backends.
StatusOr<BackendDescriptor> DescribeBackend(std::string_view name);

// Creates the backend `name` (not yet initialised). Errors: kNotFound names the known
// backends; kUnsupported, outside a worker (!options.in_worker), for a backend that runs
// only in its own worker (torch) and for any backend while
// CONVGUARD_FORBID_IN_PROCESS_BACKENDS is set.
StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view name,
                                                 const BackendOptions& options = {});

}  // namespace convguard
