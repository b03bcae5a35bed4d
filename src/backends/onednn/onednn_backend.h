// backends/onednn/onednn_backend.h — the oneDNN CPU backend ("onednn").
//
// Runs every direction (forward, backward-data, backward-weights) with oneDNN's
// convolution primitives on the CPU, in f32 and, where the CPU and oneDNN have kernels
// for them, bf16 and f16. Algorithms: "auto" (the default: oneDNN's convolution_auto),
// "direct" (convolution_direct) and "winograd" (convolution_winograd, unsupported
// wherever oneDNN has no Winograd kernel for the problem). See docs/backends.md.
//
// oneDNN picks its preferred internal memory formats; the backend reorders the user's
// NCHW/NHWC tensors in and out and times only the convolution primitive. Each worker
// runs oneDNN on one thread unless OMP_NUM_THREADS is set.
//
// Built only when CMake finds oneDNN (onednn.cmake defines CONVGUARD_HAVE_ONEDNN); this
// header does not include oneDNN's headers.
//
// Thread-safety: none; one backend per worker, used from one thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "convguard/backend.h"

namespace convguard {

std::unique_ptr<Backend> MakeOneDnnBackend();

// The environment variables recorded as the stack's knobs (its descriptor lists them).
std::vector<std::string> OneDnnKnobs();

}  // namespace convguard
