// StackFingerprint::Id() and Summary().
//
// Id() keys every stored verdict, so its definition is frozen: changing the canonical
// serialisation below orphans every verdict in every existing store. The serialisation
// is versioned ("convguard-stack-v1") so that a deliberate change can be told apart.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "convguard/stack.h"
#include "core/hash.h"

namespace convguard {
namespace {

// Length-prefixed fields make the serialisation unambiguous: no choice of field values
// (separators, newlines, empty strings) can make two different fingerprints serialise
// alike. Field order is fixed here, not taken from the struct.
void AppendField(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += '=';
  out += std::to_string(value.size());
  out += ':';
  out += value;
  out += '\n';
}

// Every field but tool_version: upgrading convguard must not change a stack's identity.
std::string CanonicalIdentity(const StackFingerprint& s) {
  std::string out = "convguard-stack-v1\n";
  AppendField(out, "backend", s.backend);
  AppendField(out, "device", s.device);
  AppendField(out, "architecture", s.architecture);
  AppendField(out, "compute_units", std::to_string(s.compute_units));
  AppendField(out, "driver", s.driver);
  AppendField(out, "runtime", s.runtime);
  AppendField(out, "library", s.library);
  AppendField(out, "knobs", std::to_string(s.knobs.size()));
  for (const auto& [name, value] : s.knobs) {  // std::map: sorted by name
    AppendField(out, "knob", name);
    AppendField(out, "value", value);
  }
  AppendField(out, "emulation", s.emulation);
  AppendField(out, "fault_rules_digest", s.fault_rules_digest);
  return out;
}

// "SMs" on NVIDIA architectures, "cores" on CPUs, "CUs" otherwise (AMD and unknown).
std::string ComputeUnitsText(const StackFingerprint& s) {
  const int64_t n = s.compute_units;
  std::string_view unit = "CU";
  if (s.architecture.rfind("sm_", 0) == 0) {
    unit = "SM";
  } else if (s.device.rfind("CPU", 0) == 0 || s.device.rfind("cpu", 0) == 0) {
    unit = "core";
  }
  std::string text = std::to_string(n) + " " + std::string(unit);
  if (n != 1) text += 's';
  return text;
}

}  // namespace

std::string StackFingerprint::Id() const {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(Fnv1a64(CanonicalIdentity(*this))));
  return hex;
}

std::string StackFingerprint::Summary() const {
  std::string out = backend.empty() ? "?" : backend;
  if (!device.empty()) out += " on " + device;

  std::string hardware = architecture;
  if (compute_units > 0) {
    if (!hardware.empty()) hardware += ", ";
    hardware += ComputeUnitsText(*this);
  }
  if (!hardware.empty()) out += " (" + hardware + ")";

  std::string software = library;
  auto add = [&software](std::string_view label, const std::string& value) {
    if (value.empty()) return;
    if (!software.empty()) software += ", ";
    software += std::string(label) + value;
  };
  add("driver ", driver);
  add("runtime ", runtime);
  if (!software.empty()) out += " " + software;

  if (!knobs.empty()) {
    out += " knobs";
    for (const auto& [name, value] : knobs) out += " " + name + "=" + value;
  }
  if (!fault_rules_digest.empty()) out += " [FAULTS INJECTED: " + fault_rules_digest + "]";
  if (!emulation.empty()) out += " [EMULATION: " + emulation + "]";

  // One line, whatever the fields hold.
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

}  // namespace convguard
