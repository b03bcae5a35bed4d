// convguard/guard.h — guarded execution: run a convolution on a stack that misbehaves.
//
// A Guard holds in-process backends (the primary and any fallbacks) and a store. Open()
// learns each backend's stack from a worker (IdentifyStacks: GuardOptions::probe names
// the convguard executable that hosts workers; empty means this executable, right for
// the convguard CLI) and creates nothing in this process; the first Run() that needs a
// backend creates it here and checks that it presents the same stack. Run() plans the
// problem once (plans are cached per stack and problem), builds the plan's executable
// tree once (its buffers allocated once), transforms the weights once per set of
// weights, and runs every call through the backends in this process. Only plans
// whose every leaf has an OK verdict are run, so nothing the store knows to hang, crash
// or compute wrong is ever executed here. On a device backend (cuDNN) a plan that can
// runs device-resident: Run uploads the caller's host tensors once per call (weights
// once per set) into buffers kept with the plan, and RunOnDevice takes tensors that
// are already in device memory. A problem without a plan is an error that
// says why (and, with probe_missing, unknown sub-problems are probed first in workers,
// never in this process).
//
// Ownership: the Guard owns its backends and plans; the store must outlive it.
// Thread-safety: none; use one Guard per thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "convguard/backend.h"
#include "convguard/plan.h"
#include "convguard/probe.h"
#include "convguard/status.h"
#include "convguard/store.h"
#include "convguard/tensor.h"

namespace convguard {

struct GuardOptions {
  std::string backend;                 // primary backend (registry name, in-process)
  std::vector<std::string> fallbacks;  // backends for backend-fallback, in order
  BackendOptions backend_options;      // fault rules for the primary (e.g. --inject)
  PlannerOptions planner;
  // Used when planner.probe_missing: how the probe engine is started (its backend is
  // set per stack). The store given to Open receives the verdicts.
  ProbeOptions probe;
};

// Whether the weights in io changed since the last Run of the same problem.
enum class WeightsAre { kNew, kUnchanged };

class Guard {
 public:
  virtual ~Guard() = default;

  // Checks the backends and reads their stacks from workers (nothing vendor runs here).
  // Errors: unknown backend, a backend that cannot run in-process (torch runs only in
  // its Python worker), fault rules given as text without their file, a worker that
  // cannot start. Backend init failures surface at the first Run that needs the backend.
  static StatusOr<std::unique_ptr<Guard>> Open(const GuardOptions& options, Store* store);

  // The primary backend's stack.
  virtual const StackFingerprint& stack() const = 0;
  // Every stack the guard may run on (the primary first).
  virtual const std::vector<StackChoice>& stacks() const = 0;

  // The plan for p, from the cache or planned now. kNotFound when no exact plan exists
  // (the message says what the store knows and suggests what a person could change).
  virtual StatusOr<const Plan*> PlanFor(const Problem& p) = 0;

  // Computes p's direction in io (sized by ConvTensors<float>::Allocate(p)), planning and
  // preparing on first use. With WeightsAre::kUnchanged the weights transformed by the
  // previous Run of p are reused (forward and backward-data); pass kNew whenever io's
  // weights or bias differ from that call's.
  virtual Status Run(const Problem& p, ConvTensors<float>& io, WeightsAre weights) = 0;

  // Computes p's direction on tensors that live in the primary backend's device memory
  // (cuDNN: CUDA device 0 of this process), in p.dtype and p.layout (backend.h,
  // DeviceTensors), so a caller whose tensors are already there pays no copy. `stream`
  // is the caller's queue (a cudaStream_t for cuDNN; null: the device's default
  // stream): the call starts after the work queued there and returns when the result
  // is in place. The plan, its buffers, descriptors, algorithms and workspace are made
  // on first use and kept; weights are copied and padded once per set (WeightsAre as for
  // Run). Plans whose steps all have device nodes (leaves on the primary backend,
  // channel padding) run where the tensors are; any other plan (spatial tiling, a group
  // or batch split, a leaf on a fallback backend) runs on host buffers, the tensors
  // copied through host memory, and last_run_device_resident() says so.
  // Errors: kUnsupported for a primary backend that computes in host memory (pass host
  // tensors to Run); kInvalidArgument for a null address or memory that is not the
  // device's (checked whenever the addresses differ from the last call's).
  virtual Status RunOnDevice(const Problem& p, const DeviceTensors& io, WeightsAre weights,
                             void* stream = nullptr) = 0;
  // The primary backend's device memory (the backend is created in this process on
  // first use), for callers that put their tensors there; the Guard owns it. kUnsupported
  // for a backend that computes in host memory.
  virtual StatusOr<DeviceMemory*> device_memory() = 0;
  // Whether the last RunOnDevice ran every step on the device (no copy through host
  // memory). False before the first.
  virtual bool last_run_device_resident() const = 0;

  // Whether every leaf of the last Run computed without rounding: every leaf's verdict
  // was bit-exact (Plan::exact) and no leaf's backend said it rounded. False when a
  // leaf's algorithm transforms, like Winograd or FFT: the output then matches the
  // reference only within the tolerance its OK verdict was checked with. Set
  // GuardOptions::planner.exact_leaves to demand bit-exact leaves.
  virtual bool last_run_exact() const = 0;
  // The tolerance (compare.h's units) the last Run's output meets on exactly filled data:
  // 0 when last_run_exact(), else DefaultTolerance(p, inexact) for its problem p (the
  // rewrites add no rounding of their own). 0 before the first Run.
  virtual double last_run_tolerance() const = 0;

  // Forgets cached plans and prepared trees (e.g. after the store learned more).
  virtual void ClearCache() = 0;
};

}  // namespace convguard
