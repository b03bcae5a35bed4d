// Claim owners: who holds a claim in a shared store, and whether that owner still lives.
//
// An owner is "HOST:PID:START": the host name, the process id and the process's start
// time in clock ticks since boot (so that a recycled pid is not mistaken for the owner).
// Both halves live here so that the format is written and read in one place.
#include <cstdlib>
#include <string>

#include "convguard/probe.h"
#include "os/system.h"

namespace convguard {

StatusOr<std::string> ThisProcessClaimOwner() {
  CG_ASSIGN_OR_RETURN(uint64_t start_ticks, os::ProcessStartTicks(os::CurrentPid()));
  return os::Hostname() + ":" + std::to_string(os::CurrentPid()) + ":" +
         std::to_string(start_ticks);
}

OwnerLiveness LocalClaimOwnerLiveness() {
  return [](const std::string& owner) {
    const size_t a = owner.find(':');
    const size_t b = owner.rfind(':');
    // Another host's process (or a string that is not an owner) cannot be checked from
    // here: alive, until its claim is stale by age.
    if (a == std::string::npos || b == a || owner.substr(0, a) != os::Hostname()) return true;
    return os::IsProcessAlive(std::atoi(owner.substr(a + 1, b - a - 1).c_str()),
                              std::strtoull(owner.substr(b + 1).c_str(), nullptr, 10));
  };
}

}  // namespace convguard
