// convguard/device.h — device-resident execution: what a device backend offers so that
// guarded execution keeps every tensor in device memory.
//
// A device backend (cuDNN) hands out its DeviceMemory (allocation, copies, its one queue
// of work) and DeviceCalls (a problem with one algorithm prepared once: descriptors,
// workspace). Plans are built from these (rewrite nodes allocate their padded buffers
// here) and run on the caller's tensors where they lie (Guard::RunOnDevice). Nothing
// here names a vendor: addresses are void*, a queue is the vendor's stream as void*.
//
// Ownership: a backend owns its DeviceMemory and must outlive its DeviceCalls and every
// block allocated from it. Thread-safety: none; the backend's thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "convguard/problem.h"
#include "convguard/status.h"
#include "convguard/tensor.h"

namespace convguard {

// Device addresses of a problem's tensors in p.dtype and p.layout (tensor.h's element
// order), each holding the problem's element count of its dtype. `bias` is null when the
// problem has none. The memory belongs to the caller.
struct DeviceTensors {
  void* input = nullptr;   // x, or dx for backward-data
  void* weight = nullptr;  // w, or dw for backward-weights
  void* output = nullptr;  // y, or dy for the backward directions
  void* bias = nullptr;
};

// A problem and one algorithm prepared once (descriptors, workspace) to run on device
// tensors. Ownership: made by its backend, which must outlive it. Thread-safety: none.
class DeviceCall {
 public:
  virtual ~DeviceCall() = default;
  // Queues one call of the problem's direction on the backend's device queue; the
  // result is in place once DeviceMemory::Finish has returned OK.
  [[nodiscard]] virtual Status Enqueue(const DeviceTensors& io) = 0;
  // False when the algorithm rounds even on exactly filled data (Winograd, FFT).
  virtual bool exact() const = 0;
};

// A device backend's memory and its one queue of work. Every operation is queued in
// order on that queue; nothing waits unless it says so. Sizes and pitches are in bytes.
// Thread-safety: none (the backend's thread).
class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  // Allocates `bytes` of device memory (zero bytes give a null block).
  // kResourceExhausted when the device is out of memory.
  [[nodiscard]] virtual StatusOr<void*> Allocate(size_t bytes, std::string_view what) = 0;
  virtual void Free(void* block) = 0;
  [[nodiscard]] virtual Status Zero(void* device, size_t bytes) = 0;
  // rows x width bytes from src (rows src_pitch apart) to dst (rows dst_pitch apart).
  [[nodiscard]] virtual Status CopyRows(void* dst, size_t dst_pitch, const void* src,
                                        size_t src_pitch, size_t width, size_t rows) = 0;
  // float32 host values to / from device elements of `dtype` (converted on the host);
  // both wait until the copy is done.
  [[nodiscard]] virtual Status Upload(const std::vector<float>& host, DataType dtype,
                                      void* device) = 0;
  [[nodiscard]] virtual Status Download(const void* device, DataType dtype,
                                        std::vector<float>& host) = 0;
  // Orders the queue after the work the caller queued on `stream` (a cudaStream_t for
  // CUDA; null: the device's default stream) before this call.
  [[nodiscard]] virtual Status Begin(void* stream) = 0;
  // Waits until everything queued has finished; the first error of the queued work.
  [[nodiscard]] virtual Status Finish() = 0;
  // OK when `device` is memory of this backend's device that the queue can read and
  // write; kInvalidArgument naming `what` and what it is instead.
  [[nodiscard]] virtual Status CheckAddress(const void* device, std::string_view what) = 0;
};

// A problem's four tensors copied into a DeviceMemory from host float32 tensors (in the
// problem's dtype), for a caller that then runs on them (Guard::RunOnDevice): the CLI's
// `run --device-tensors`, tests, benchmarks. Frees its blocks when destroyed.
// Ownership: `memory` must outlive the object. Thread-safety: none.
class DeviceTensorCopy {
 public:
  // Allocates and uploads every tensor of `host` (sized by ConvTensors<float>::Allocate(p));
  // no bias block when p has none. Errors as DeviceMemory::Allocate / Upload.
  static StatusOr<std::unique_ptr<DeviceTensorCopy>> Upload(DeviceMemory& memory, const Problem& p,
                                                            const ConvTensors<float>& host);
  DeviceTensorCopy(const DeviceTensorCopy&) = delete;
  DeviceTensorCopy& operator=(const DeviceTensorCopy&) = delete;
  ~DeviceTensorCopy();

  const DeviceTensors& tensors() const { return tensors_; }
  // The device tensor p's direction produces (y, dx or dw).
  void* result() const;
  // Overwrites one of tensors()' blocks from host values.
  [[nodiscard]] Status Replace(void* device, const std::vector<float>& host);
  // The produced tensor, read back into `host` (sized for it).
  [[nodiscard]] Status DownloadResult(std::vector<float>& host) const;

 private:
  DeviceTensorCopy(DeviceMemory& memory, const Problem& p) : memory_(memory), problem_(p) {}
  StatusOr<void*> Put(const std::vector<float>& host, const char* what);

  DeviceMemory& memory_;
  Problem problem_;
  DeviceTensors tensors_;
  std::vector<void*> blocks_;
};

}  // namespace convguard
