// backends/inject/fault_rules.cc — the values of the fault-rules language: faults and
// how they are written back, rule matching, and the stack fingerprint rules give.
//
// The language itself lives in files of its own: rules_lexer (tokens), rules_expression
// (the predicate tree and its evaluation), rules_parser (predicates) and
// rules_file_parser.cc (ParseFaultRules).
//
// Thread-safety: as fault_rules.h; everything here reads immutable values.
#include "backends/inject/fault_rules.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "core/hash.h"

namespace convguard::inject {

std::string_view FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kSpin: return "spin";
    case FaultKind::kBlock: return "block";
    case FaultKind::kSegv: return "segv";
    case FaultKind::kAbort: return "abort";
    case FaultKind::kExit: return "exit";
    case FaultKind::kWrong: return "wrong";
    case FaultKind::kError: return "error";
    case FaultKind::kSlow: return "slow";
    case FaultKind::kOom: return "oom";
    case FaultKind::kUnsupported: return "unsupported";
  }
  return "?";
}

VerdictKind VerdictOfFault(FaultKind kind) {
  switch (kind) {
    case FaultKind::kSpin:
    case FaultKind::kBlock: return VerdictKind::kHang;
    case FaultKind::kSegv:
    case FaultKind::kAbort:
    case FaultKind::kExit: return VerdictKind::kCrash;
    case FaultKind::kWrong: return VerdictKind::kWrong;
    case FaultKind::kError: return VerdictKind::kError;
    case FaultKind::kSlow: return VerdictKind::kSlow;
    case FaultKind::kOom: return VerdictKind::kOom;
    case FaultKind::kUnsupported: return VerdictKind::kUnsupported;
  }
  return VerdictKind::kError;
}

bool IsFatal(FaultKind kind) {
  switch (kind) {
    case FaultKind::kSpin:
    case FaultKind::kBlock:
    case FaultKind::kSegv:
    case FaultKind::kAbort:
    case FaultKind::kExit: return true;
    default: return false;
  }
}

namespace {

std::string QuoteString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

}  // namespace

std::string Fault::ToString() const {
  switch (kind) {
    case FaultKind::kExit: return "exit(" + std::to_string(exit_code) + ")";
    case FaultKind::kWrong: {
      // The shortest spelling that reads back as the same double, in fixed notation: the
      // language has no exponents, so %g's "1e-05" would not read back. A fraction in
      // (0, 1] takes at most "0." and 767 significant digits after the leading zeros.
      char buffer[1100];
      const auto [end, ec] =
          std::to_chars(buffer, buffer + sizeof buffer, wrong_fraction, std::chars_format::fixed);
      if (ec != std::errc()) return "wrong(?)";  // unreachable for a fraction in (0, 1]
      return "wrong(" + std::string(buffer, end) + ")";
    }
    case FaultKind::kSlow: return "slow(" + std::to_string(slow_ms) + ")";
    case FaultKind::kError:
    case FaultKind::kUnsupported:
      return std::string(FaultKindName(kind)) + "(" + QuoteString(message) + ")";
    default: return std::string(FaultKindName(kind));
  }
}

std::string FaultRule::ToString() const { return fault.ToString() + " when " + when.text(); }

const FaultRule* FaultRules::Match(const Problem& p, std::string_view algorithm, int device,
                                   const CallHistory& history) const {
  for (const FaultRule& rule : rules) {
    if (rule.when.Matches(p, algorithm, device, history)) return &rule;
  }
  return nullptr;
}

std::string FaultRules::Where(const FaultRule& rule) const {
  return origin + ":" + std::to_string(rule.line);
}

bool FaultRules::UsesDevice() const {
  return std::any_of(rules.begin(), rules.end(),
                     [](const FaultRule& r) { return r.when.uses_device(); });
}

bool FaultRules::UsesHistory() const {
  return std::any_of(rules.begin(), rules.end(),
                     [](const FaultRule& r) { return r.when.uses_history(); });
}

std::string FaultRules::DigestOnDevice(int device) const {
  return UsesDevice() ? Fnv1a64Hex(digest + "@device " + std::to_string(device)) : digest;
}

void FaultRules::ApplyTo(StackFingerprint& fp, int device) const {
  const std::string own = DigestOnDevice(device);
  if (stack.device) fp.device = *stack.device;
  if (stack.architecture) fp.architecture = *stack.architecture;
  if (stack.driver) fp.driver = *stack.driver;
  if (stack.runtime) fp.runtime = *stack.runtime;
  if (stack.library) fp.library = *stack.library;
  if (stack.compute_units) fp.compute_units = *stack.compute_units;
  for (const auto& [name, value] : stack.knobs) fp.knobs[name] = value;
  if (!emulation.empty()) {
    fp.emulation = fp.emulation.empty() ? emulation : fp.emulation + "; " + emulation;
  }
  fp.fault_rules_digest =
      fp.fault_rules_digest.empty() ? own : Fnv1a64Hex(fp.fault_rules_digest + "+" + own);
}

}  // namespace convguard::inject
