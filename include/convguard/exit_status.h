// convguard/exit_status.h — every exit status convguard's programs use, in one table.
//
// The CLI's statuses, a probe's verdict as a status (`convguard probe`, and `run` for a
// wrong output), and the statuses a worker dies with when it cannot serve (the engine
// reads those as a worker that failed to start, never as a verdict). The Python worker
// (python/convguard/worker/main.py) uses the same worker statuses; a test holds the two
// tables together.
//
// Thread-safety: constants and a pure function.
#pragma once

#include "convguard/verdict.h"

namespace convguard {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;   // a valid request could not be carried out
inline constexpr int kExitBadInput = 2;  // bad arguments or input; nothing was done

// A worker that cannot serve: its backend did not start, its protocol stream broke, or
// (GPU workers) its device context became unusable.
inline constexpr int kExitWorkerBackendFailed = 3;
inline constexpr int kExitWorkerProtocolBroken = 4;
inline constexpr int kExitWorkerDeviceBroken = 5;

// Verdicts (ExitStatusForVerdict): OK 0, SLOW 10, HANG 11, CRASH 12, WRONG 13,
// MISTRUSTED 14, ERROR 15, UNSUPPORTED 16, OOM 17.
int ExitStatusForVerdict(VerdictKind kind);

inline constexpr int kExitNoPlan = 20;  // no exact plan exists (plan, run)
// A model's answer (scan, fix): runs only through exact rewrites; blocked (some layer has
// no exact plan); unknown (some layer has no verdict yet).
inline constexpr int kExitModelNeedsRewrites = 21;
inline constexpr int kExitModelBlocked = 22;
inline constexpr int kExitModelUnknown = 23;
inline constexpr int kExitInterrupted = 130;  // SIGINT/SIGTERM stopped the work (128 + SIGINT)

}  // namespace convguard
