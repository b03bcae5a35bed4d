// probe/stack_identity.h — the probe layer's side of the stack-identity service
// (IdentifyStacks in convguard/probe.h).
//
// Thread-safety: safe from any thread (the cache is guarded by a mutex).
#pragma once

#include <vector>

#include "convguard/probe.h"

namespace convguard::probe {

// Records what a probe engine's own workers said in their hellos for `options`, so that
// IdentifyStacks in the same process answers from it instead of starting a worker.
void RememberStacks(const ProbeOptions& options, const std::vector<DeviceStack>& stacks);

}  // namespace convguard::probe
