#include "convguard/verdict.h"

#include <array>
#include <string>

#include "convguard/exit_status.h"

namespace convguard {
namespace {

// Every kind, in declaration order: the one list ParseVerdictName and its error message
// are built from, so a new kind cannot be forgotten by one of them.
constexpr std::array kAllKinds = {
    VerdictKind::kOk,    VerdictKind::kSlow,        VerdictKind::kHang,
    VerdictKind::kCrash, VerdictKind::kWrong,       VerdictKind::kMistrusted,
    VerdictKind::kError, VerdictKind::kUnsupported, VerdictKind::kOom,
};

bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 'a' + 'A');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

std::string_view VerdictName(VerdictKind kind) {
  switch (kind) {
    case VerdictKind::kOk: return "OK";
    case VerdictKind::kSlow: return "SLOW";
    case VerdictKind::kHang: return "HANG";
    case VerdictKind::kCrash: return "CRASH";
    case VerdictKind::kWrong: return "WRONG";
    case VerdictKind::kMistrusted: return "MISTRUSTED";
    case VerdictKind::kError: return "ERROR";
    case VerdictKind::kUnsupported: return "UNSUPPORTED";
    case VerdictKind::kOom: return "OOM";
  }
  return "?";
}

int VerdictSeverity(VerdictKind kind) {
  static constexpr VerdictKind kMostSevereFirst[] = {
      VerdictKind::kHang, VerdictKind::kCrash,       VerdictKind::kWrong,
      VerdictKind::kOom,  VerdictKind::kError,       VerdictKind::kMistrusted,
      VerdictKind::kSlow, VerdictKind::kUnsupported, VerdictKind::kOk};
  for (int i = 0; i < static_cast<int>(std::size(kMostSevereFirst)); ++i)
    if (kMostSevereFirst[i] == kind) return i;
  return static_cast<int>(std::size(kMostSevereFirst));
}

StatusOr<VerdictKind> ParseVerdictName(std::string_view name) {
  for (VerdictKind kind : kAllKinds) {
    if (EqualsIgnoringAsciiCase(name, VerdictName(kind))) return kind;
  }
  std::string allowed;
  for (VerdictKind kind : kAllKinds) {
    if (!allowed.empty()) allowed += ", ";
    allowed += VerdictName(kind);
  }
  return Status::InvalidArgument("unknown verdict '" + std::string(name) +
                                 "'; allowed: " + allowed);
}

int ExitStatusForVerdict(VerdictKind kind) {
  switch (kind) {
    case VerdictKind::kOk: return 0;
    case VerdictKind::kSlow: return 10;
    case VerdictKind::kHang: return 11;
    case VerdictKind::kCrash: return 12;
    case VerdictKind::kWrong: return 13;
    case VerdictKind::kMistrusted: return 14;
    case VerdictKind::kError: return 15;
    case VerdictKind::kUnsupported: return 16;
    case VerdictKind::kOom: return 17;
  }
  return 15;
}

}  // namespace convguard
