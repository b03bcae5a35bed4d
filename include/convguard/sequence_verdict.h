// convguard/sequence_verdict.h — what replaying a sequence of calls in one process
// showed (see convguard/sequence.h for sequences and docs/replay.md for the replay).
//
// Thread-safety: value types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "convguard/verdict.h"

namespace convguard {

// How one distinct problem of a replayed sequence fares in a fresh worker, alone.
struct ProblemAlone {
  std::string problem;    // canonical
  std::string algorithm;  // as probed ("default" resolved by the engine)
  VerdictKind kind = VerdictKind::kOk;
};

// The outcome of replaying a sequence in one worker on one stack. Stored by
// Store::AddSequenceVerdict, never replaced: every replay is kept.
struct SequenceVerdict {
  int64_t id = 0;  // assigned by the store (0 before)
  std::string stack_id;
  std::string digest;     // SequenceDigest of the sequence replayed
  std::string source;     // the file it came from
  int64_t calls = 0;      // calls in the sequence, a Find counting once per algorithm run
  int64_t calls_run = 0;  // calls that ran to the end or failed (up to the failing one)
  // OK when every call ran and checked out (SLOW and UNSUPPORTED calls do not fail a
  // sequence: they are counted); else the first failing call's kind: HANG, CRASH, WRONG,
  // MISTRUSTED, ERROR or OOM; SLOW when the whole sequence missed its own deadline.
  VerdictKind kind = VerdictKind::kOk;
  int64_t failed_at = -1;        // 0-based index of the failing call among the calls run; -1
  std::string failed_problem;    // canonical, "" when OK
  std::string failed_algorithm;  // resolved name
  std::string failed_origin;     // FILE:LINE of the failing call
  int64_t slow_calls = 0;        // calls that missed their first deadline and then finished
  int64_t unsupported_calls = 0;
  std::string message;  // the evidence: deadlines, exit status, worker stderr, check
  double elapsed_ms = 0.0;
  // Each distinct problem of the calls run, alone in a fresh worker (empty when not
  // asked for). A failing problem that fails alone too is not a sequence effect.
  std::vector<ProblemAlone> alone;
  // The minimal failing sub-sequence found, as SequenceCallKey lines (empty: not
  // minimised), and what minimisation says of it: "minimal" (removing any one call makes
  // it pass), or why it is not proven minimal (budget spent; not reproduced).
  std::vector<std::string> minimal;
  std::string minimal_note;
  std::string repro;  // a one-line command that replays the sequence (the minimal one if any)
  std::string tool_version;
  std::string recorded_at;  // UTC ISO 8601
  bool emulated = false;
};

}  // namespace convguard
