// backends/cudnn/cudnn_backend.h — NVIDIA cuDNN (legacy convolution API) as a backend.
//
// Runs every problem with cuDNN's cudnnConvolutionForward / BackwardData /
// BackwardFilter on the first CUDA device the process sees (the probe engine pins each
// worker to one GPU with CUDA_VISIBLE_DEVICES), with cuDNN's algorithms under stable
// names ("implicit-precomp-gemm", "winograd", "algo1", ...). Float32 problems run with
// FMA math (no TF32), f16/bf16 with tensor-core math and float accumulation. Design,
// algorithms and exactness: docs/gpu.md.
//
// This header is all that leaves src/backends/cudnn/: no CUDA or cuDNN header is
// included here, so code that registers the backend compiles without the toolkit's
// include paths. The backend exists only in builds with CONVGUARD_HAVE_CUDNN.
//
// Thread-safety: none; one backend per worker process, used from one thread.
#pragma once

#include <memory>

#include "convguard/backend.h"

namespace convguard {

// A new, uninitialised cuDNN backend (registry name "cudnn"). Init() fails with
// kUnsupported "no CUDA device: ..." on a machine without a usable GPU.
std::unique_ptr<Backend> MakeCudnnBackend();

// Whether this machine shows an NVIDIA GPU: a /dev/nvidiaN device node or an entry under
// /proc/driver/nvidia/gpus. Reads the file system only; never loads or calls the CUDA
// driver, so it is safe (and cheap) in the deciding process and on machines without
// one. A true answer does not promise that CUDA works (Init() finds that out).
bool CudnnDevicePresent();

}  // namespace convguard
