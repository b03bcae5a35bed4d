// The never-ending kernel behind HangOnDevice() (see spin_kernel.cuh).
#include "backends/cudnn/spin_kernel.cuh"

namespace convguard::cudnn_detail {
namespace {

// The flag the kernel waits for. Nothing, on the host or the device, ever writes it.
// It is `volatile`, so every iteration really loads it from memory: the compiler may
// not hoist the load out of the loop or prove the loop infinite (and so remove it, as
// it may remove a side-effect-free infinite loop). The counter is stored once the loop
// ends — it never does — which keeps the loop body observable as well.
__device__ volatile int g_release = 0;
__device__ unsigned long long g_turns = 0;

__global__ void SpinForeverKernel() {
  unsigned long long turns = 0;
  while (g_release == 0) ++turns;
  g_turns = turns;
}

}  // namespace

cudaError_t LaunchSpinForever(cudaStream_t stream) {
  SpinForeverKernel<<<1, 1, 0, stream>>>();
  return cudaGetLastError();
}

}  // namespace convguard::cudnn_detail
