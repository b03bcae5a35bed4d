// convguard/replay.h — replaying what an application ran, in one worker under the
// watchdog, and shrinking a sequence that fails to a minimal one that still fails.
//
// Probing each problem alone in a fresh worker cannot see a stack that fails only after
// many earlier calls in the same process. Replay runs a CallSequence (convguard/
// sequence.h) in order, repeats included, in ONE fresh worker: every call has its own
// deadline (the deadline policy's, for one execution), and the whole sequence has one
// too. The first call that fails ends it: a HANG (the call missed its first deadline
// and then the confirmation deadline, waited for in the same worker, because the state
// that hangs is the sequence's and a fresh worker would not have it), a CRASH, or a
// WRONG/MISTRUSTED/ERROR/OOM reply. SLOW calls (late, then finished) and UNSUPPORTED
// ones are counted and the sequence goes on, as the application would.
//
// Then, optionally: each distinct (problem, algorithm) of the calls run is run alone,
// each in a fresh worker, so a failure that happens alone too is not blamed on the
// sequence; and a failing sequence is minimised by delta debugging (remove chunks, keep
// order, run each candidate in a fresh worker) to a sub-sequence that fails the same way
// at the same problem, within a time budget. The verdict goes to the store
// (Store::AddSequenceVerdict) with the minimal sequence.
//
// Thread-safety: Replay is called from one thread; it forks workers, so the caller must
// not reap children it did not start.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "convguard/probe.h"
#include "convguard/sequence.h"
#include "convguard/sequence_verdict.h"
#include "convguard/stack.h"
#include "convguard/status.h"
#include "convguard/store.h"

namespace convguard {

struct ReplayOptions {
  // The backend, fault rules, interpreter, devices (the first selected one is used, else
  // device 0), deadlines, check and seed. warmup/repeats do not apply: each call runs
  // once, untimed warm-up excluded, as the application ran it.
  ProbeOptions probe;
  // The whole sequence's deadline; 0: the sum of every call's stage deadlines (so only a
  // sequence that stalls between calls, or slows down as a whole, misses it). A sequence
  // that misses it is SLOW.
  double sequence_deadline_ms = 0.0;
  // Run each distinct (problem, algorithm) of the calls run alone in a fresh worker.
  bool alone = true;
  // Minimise a failing sequence within `minimise_budget_ms` (> 0).
  bool minimise = false;
  double minimise_budget_ms = 600'000.0;
  // The command that replays a list (the repro line): "<repro_command> replay FILE ...".
  std::string repro_command = "convguard";
  // Flags the repro line carries after the backend's (e.g. "--skip-unreadable").
  std::vector<std::string> repro_flags;
  // Where the caller will write the minimal sequence as a list (FormatSequenceList): the
  // repro line then replays that file. Empty: the repro replays the whole source.
  std::string minimal_list_path;
};

struct ReplayCallbacks {
  // A line a person waiting should see: a call that missed its first deadline, each
  // minimisation step ("minimise: 40 -> 20 calls (test 3, 4.1 s)").
  std::function<void(const std::string&)> on_notice;
  // Free-text events for a log (worker starts, kills, calibration).
  std::function<void(const std::string&)> on_event;
  // Progress through a run of calls: done of total, at most about once per second.
  std::function<void(int64_t done, int64_t total, const std::string& what)> on_progress;
};

struct ReplayResult {
  SequenceVerdict verdict;  // as stored (with its id when a store was given)
  StackFingerprint stack;
  // The calls as run (Finds expanded into one call per algorithm).
  std::vector<SequenceCall> expanded;
  // The minimal failing sub-sequence (empty when not minimised or nothing failed).
  std::vector<SequenceCall> minimal;
  bool interrupted = false;  // SIGINT/SIGTERM: the verdict is partial and not stored
};

// Replays `sequence` as described above. `store` may be null (nothing is recorded).
// Errors: a worker that cannot start, bad options (kInvalidArgument: an empty sequence,
// a budget <= 0, a negative sequence deadline), a store that refuses the verdict.
StatusOr<ReplayResult> Replay(const CallSequence& sequence, const ReplayOptions& options,
                              Store* store, const ReplayCallbacks& callbacks = {});

}  // namespace convguard
