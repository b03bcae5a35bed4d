// backends/cudnn/spin_kernel.cuh — a GPU kernel that never finishes, for fault
// injection's `spin` on the cuDNN backend (docs/gpu.md, "A real GPU hang").
//
// Compiled by nvcc (spin_kernel.cu); declared here for cudnn_backend.cc, which the host
// compiler builds. Only code inside src/backends/cudnn/ includes this header.
#pragma once

#include <cuda_runtime_api.h>

namespace convguard::cudnn_detail {

// Launches, on `stream`, one thread that loops until a device flag nobody ever sets
// becomes non-zero: the kernel never ends, like a hung GPU kernel. Returns the launch's
// error (cudaSuccess when the kernel was queued; cudaErrorNoKernelImageForDevice on a
// GPU this build has neither machine code nor PTX for). Does not wait for the kernel.
cudaError_t LaunchSpinForever(cudaStream_t stream);

}  // namespace convguard::cudnn_detail
