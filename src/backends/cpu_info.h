// backends/cpu_info.h — what CPU backends put in a stack fingerprint.
#pragma once

#include <string>

namespace convguard {

// The "model name" line of /proc/cpuinfo, or "unknown CPU".
std::string CpuModelName();
// The machine architecture this binary was built for: "x86_64", "aarch64" or "unknown".
std::string MachineArchitecture();

}  // namespace convguard
