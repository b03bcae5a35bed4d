// convguard/verdict.h — what a probe showed, with its evidence.
//
// A verdict is an observation, never a prediction: it says what ran, where (stack
// fingerprint), with which tool version, when, how long, how it was checked, how many
// attempts it took and the deadline used, and gives a one-line repro command.
//
// Thread-safety: value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "convguard/status.h"

namespace convguard {

enum class VerdictKind {
  kOk,           // finished in time and the result checked out
  kSlow,         // missed its deadline, then finished under the generous confirmation deadline
  kHang,         // missed its deadline twice, the second time in a fresh worker; killed
  kCrash,        // the worker died from a signal (or exited) while running the problem
  kWrong,        // finished, but the result differs from the float64 reference
  kMistrusted,   // finished, but the reference has too many zeros to prove anything
  kError,        // the backend reported an error
  kUnsupported,  // the backend does not support this problem/algorithm (with a reason)
  kOom,          // memory could not be allocated
};

// "OK", "SLOW", "HANG", "CRASH", "WRONG", "MISTRUSTED", "ERROR", "UNSUPPORTED", "OOM".
std::string_view VerdictName(VerdictKind kind);
StatusOr<VerdictKind> ParseVerdictName(std::string_view name);  // case-insensitive

// How bad a verdict is: 0 for the worst (HANG), then CRASH, WRONG, OOM, ERROR,
// MISTRUSTED, SLOW, UNSUPPORTED, and 8 for OK. A problem probed with several algorithms
// is as bad as its worst verdict: a framework that picks its own algorithm may meet it.
int VerdictSeverity(VerdictKind kind);

// Whether a problem with this verdict may be run as is by a plan.
inline bool IsUsable(VerdictKind k) { return k == VerdictKind::kOk; }

struct Verdict {
  VerdictKind kind = VerdictKind::kError;
  std::string stack_id;   // StackFingerprint::Id()
  std::string problem;    // canonical problem text
  std::string algorithm;  // backend algorithm name

  // Timings of the timed repeats (OK, SLOW, WRONG, MISTRUSTED); 0 when none.
  double time_ms_min = 0.0;
  double time_ms_median = 0.0;
  int crash_signal = 0;  // CRASH: the signal number; 0 when the worker exited instead
  int exit_code = 0;     // CRASH without signal: the worker's exit code
  std::string message;   // reason / error text / where the values went wrong
  std::string check;     // how the result was checked: "none", "sampled:N", "full"
  // The tolerance the check held the result to (compare.h's units). 0: the result equalled
  // the float64 reference bit for bit on exactly filled data, so this algorithm does not
  // round on this problem; > 0: the algorithm rounds (Winograd, FFT) and passed within
  // its rounding bound; negative: not recorded (no check ran, or an older verdict).
  double tolerance = -1.0;
  double max_abs_error = 0.0;  // WRONG: error measures
  double max_rel_error = 0.0;
  int64_t mismatches = 0;
  int64_t non_finite = 0;
  std::string implementation;  // what the library dispatched to, when it says

  int attempts = 0;          // probe attempts it took (2 for SLOW and HANG)
  double deadline_ms = 0.0;  // the deadline of the attempt that decided the verdict
  double elapsed_ms = 0.0;   // wall time of that attempt as seen by the watchdog
  std::string tool_version;  // convguard's version that recorded it
  std::string recorded_at;   // UTC, ISO 8601 (e.g. 2026-11-25T15:10:57Z)
  std::string repro;         // one command line that re-runs this probe
  bool emulated = false;     // the stack is an emulation
};

}  // namespace convguard
