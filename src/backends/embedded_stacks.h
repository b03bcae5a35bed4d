// backends/embedded_stacks.h — fault-rules files shipped inside the binary.
//
// The text of stacks/*.rules is compiled in (CMake generates embedded_stacks.cc) so
// that emulated stacks need no files at run time.
#pragma once

#include <string_view>

namespace convguard {

// stacks/emulated-rdna1.rules: the seed report's RDNA1 + ROCm 5.7 MIOpen hangs.
std::string_view EmulatedRdna1Rules();

}  // namespace convguard
