// replay/sequence_runner.h — runs a sequence of calls in one fresh worker under the
// watchdog, stopping at the first call that fails (contract: convguard/replay.h).
//
// A runner owns a setup worker (which says what the stack is, lists algorithms for
// Finds and calibrates the deadlines; it never runs a call of a sequence, so that the
// workers that do have made no call before the sequence's first) and one standby worker
// started ahead, so that the many fresh workers of a minimisation cost a swap each, not
// a start.
//
// Ownership: owns its worker processes; destroying the runner kills them.
// Thread-safety: one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "convguard/replay.h"
#include "convguard/sequence.h"
#include "convguard/stack.h"
#include "convguard/status.h"
#include "convguard/store.h"
#include "convguard/verdict.h"

namespace convguard::replay {

// What one run of calls in one worker showed.
struct CallRun {
  // OK: every call ran; else the failing call's kind (SLOW: the run missed its own
  // deadline).
  VerdictKind kind = VerdictKind::kOk;
  int64_t failed_at = -1;  // index into the calls run; -1 when OK
  int64_t calls_run = 0;   // calls that ran to their end, or failed
  int64_t slow_calls = 0;
  int64_t unsupported_calls = 0;
  // The algorithm each call ran with, as the worker resolved it (one per call run; the
  // failing call's is its request's when the worker never said).
  std::vector<std::string> algorithms;
  std::string message;  // the failing call's evidence; "" when OK
  double elapsed_ms = 0.0;
  bool interrupted = false;
};

class SequenceRunner {
 public:
  // Starts the setup worker on the device the options select, identifies the stack,
  // learns deadlines from the store's OK verdicts of the stack (when `store` is given)
  // and calibrates. Errors: the worker cannot start, a bad device selection.
  static StatusOr<std::unique_ptr<SequenceRunner>> Start(const ReplayOptions& options, Store* store,
                                                         const ReplayCallbacks& callbacks);
  ~SequenceRunner();

  const StackFingerprint& stack() const { return stack_; }

  // The calls as they will run: each Find replaced by one call per algorithm the backend
  // offers for its problem (in the backend's order), and each call of the default
  // algorithm naming it (the first the backend offers).
  StatusOr<std::vector<SequenceCall>> Expand(const std::vector<SequenceCall>& calls);

  // The default deadline of a run of `calls`: the sum of each call's stage deadlines,
  // plus the longest confirmation deadline (one call may be waited on that long).
  double DefaultRunDeadlineMs(const std::vector<SequenceCall>& calls) const;

  // Runs `calls` in order in a fresh worker. A call that misses its first run deadline
  // is waited for up to the confirmation deadline when `wait_to_confirm` (it is then
  // SLOW if it finishes, HANG if not); without, the first miss is a HANG (for the many
  // candidates of a minimisation, whose result is confirmed once at the end). `what`
  // names the run in progress reports.
  StatusOr<CallRun> Run(const std::vector<SequenceCall>& calls, bool wait_to_confirm,
                        double run_deadline_ms, const std::string& what);

  struct Impl;

 private:
  explicit SequenceRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  StackFingerprint stack_;
};

}  // namespace convguard::replay
