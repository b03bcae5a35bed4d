// backends/reference/reference_backend.h — the float64 reference as a backend.
//
// Runs every problem with convguard's own float64 reference convolution and rounds the
// result to float32. It exists so that the probe engine, the store and the planner can
// be exercised end to end on any machine, and as the substrate of emulated stacks (the
// reference under fault-injection rules). It is deliberately simple, not fast.
//
// Thread-safety: none needed; one per worker.
#pragma once

#include <memory>

#include "convguard/backend.h"

namespace convguard {

std::unique_ptr<Backend> MakeReferenceBackend();

}  // namespace convguard
