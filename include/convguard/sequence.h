// convguard/sequence.h — an ordered sequence of convolution calls (what an application
// ran, repeats included) and the verdict of replaying it in one process.
//
// Some stacks fail only after many earlier calls in the same process: a problem that is
// OK alone, probed in a fresh worker, hangs as the 40th call of a process that ran a
// certain mix before it. A sequence keeps what a log or list says an application did,
// in order, so that `convguard replay` can run exactly that in one worker; what it
// showed is a SequenceVerdict (convguard/sequence_verdict.h). Docs: docs/replay.md.
//
// Thread-safety: value types and pure functions (the readers read the file system).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/problem.h"
#include "convguard/status.h"

namespace convguard {

// One call of a sequence.
struct SequenceCall {
  Problem problem;
  // The algorithm the call asks for: "" for the backend's default choice.
  std::string algorithm;
  // A Find (an MIOpen log's `[LogCmdFindConvolution]`): the application benchmarked
  // every solver, so the replay runs the problem once with every algorithm the backend
  // offers, in the backend's order, before the next call.
  bool find = false;
  std::string origin;  // "FILE:LINE" where it was read
};

struct CallSequence {
  std::string origin;  // the file read (or the origin given)
  // "miopen-log" or "list".
  std::string format;
  std::vector<SequenceCall> calls;  // in order, repeats kept
  // Log commands left out because convguard cannot run them (only when asked to skip).
  int64_t skipped = 0;
  std::string first_skipped;  // "FILE:LINE: why", "" when none
};

// Reads a sequence from `path`: an MIOpen log (MIOPEN_ENABLE_LOGGING_CMD=1 output: every
// convolution command in log order, Finds marked) when the file looks like one, else a
// problem list (convguard/problem_source.h: one problem per line in any text form,
// includes expanded in place, duplicates kept, an optional trailing `algo=NAME`).
// Errors (kInvalidArgument unless said): a file that does not exist (kNotFound), a list
// line that does not parse (the list reader's message), a log whose convolution commands
// cannot all be read (naming the first unread line and why: a replay that skips a call
// is not the application's sequence) unless `skip_unreadable` (they are then left out
// and counted), a file with no convolution call at all, and more than `max_calls` calls
// (kOutOfRange).
StatusOr<CallSequence> ReadCallSequence(const std::string& path, bool skip_unreadable = false,
                                        int64_t max_calls = 10'000'000);

// The calls as the replay runs them, one line each: "<canonical> <algorithm>" with
// "default" for the backend's choice and "find" for a Find. What SequenceDigest hashes.
std::string SequenceCallKey(const SequenceCall& call);
// FNV-1a (64-bit, 16 hex digits) of the calls' keys joined by newlines: two logs that
// ran the same calls in the same order have the same digest, whatever else they printed.
std::string SequenceDigest(const std::vector<SequenceCall>& calls);

// A problem list that reads back as `calls` (ReadCallSequence), one call per line:
// canonical text, then ` algo=NAME` when the call names an algorithm, ` # find` when it
// was a Find (a comment: a list replays it with the default algorithm). `header` lines
// are written first as `# ` comments.
std::string FormatSequenceList(const std::vector<SequenceCall>& calls,
                               const std::vector<std::string>& header);
// The same calls as MIOpenDriver command lines (`MIOpenDriver conv... -i 1`), one per
// call, with a comment header; a call MIOpenDriver cannot express is a comment naming
// why.
std::string FormatSequenceDriverCommands(const std::vector<SequenceCall>& calls,
                                         const std::vector<std::string>& header);

}  // namespace convguard
