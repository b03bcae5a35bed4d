// convguard/stack.h — what executes a problem, and its fingerprint.
//
// A stack is a device, its driver and runtime, a vendor library and their versions, plus
// the environment knobs that steer solver choice and any fault rules in force. Its
// fingerprint's Id() keys every stored verdict (store.h); a worker reports it in its
// hello, and the stack-identity service (probe.h, IdentifyStacks) hands it to everything
// that reads verdicts. Implemented in src/core/fingerprint.cc, whose serialisation is
// frozen.
//
// Thread-safety: a value type.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace convguard {

// What executes a problem. Every stored verdict is keyed by Id().
struct StackFingerprint {
  std::string backend;        // registry name: "reference", "onednn", "torch", "cudnn", ...
  std::string device;         // e.g. "NVIDIA H100 80GB HBM3", "CPU Intel(R) Xeon(R) ..."
  std::string architecture;   // e.g. "sm_90", "gfx1010", "x86_64 avx512_core"
  int64_t compute_units = 0;  // SMs, CUs or CPU cores
  std::string driver;         // driver version, "" when not applicable
  std::string runtime;        // CUDA / HIP / OS runtime version
  std::string library;        // vendor library and version, e.g. "oneDNN 2.6.3"
  // Environment knobs that steer solver choice (MIOPEN_DEBUG_*, MIOPEN_FIND_MODE,
  // HSA_OVERRIDE_GFX_VERSION, ...): a stack variant is the stack plus its knobs.
  std::map<std::string, std::string> knobs;
  // Non-empty when this stack is an emulation: what it emulates and how. Every output
  // that shows a verdict of such a stack says so.
  std::string emulation;
  // Digest of the fault-injection rules in force ("" when none): injected faults change
  // verdicts, so they are part of the stack's identity.
  std::string fault_rules_digest;
  // convguard's version. Recorded as evidence but NOT part of Id(): a verdict describes
  // the stack, and upgrading convguard must not forget what the stack did.
  std::string tool_version;

  // 16 lower-case hex digits: a 64-bit FNV-1a hash of every field but tool_version.
  std::string Id() const;
  // One line for people, e.g. "reference on CPU x86_64 (2 cores) [EMULATION: ...]".
  std::string Summary() const;
  bool is_emulated() const { return !emulation.empty(); }

  friend bool operator==(const StackFingerprint&, const StackFingerprint&) = default;
};

}  // namespace convguard
