// replay/minimise.h — delta debugging over a sequence: the smallest sub-sequence (order
// kept) that still fails the same way.
//
// The algorithm is ddmin's complement step (Zeller and Hildebrandt, "Simplifying and
// Isolating Failure-Inducing Input", 2002): split the current failing sequence into n
// chunks; if removing one chunk still fails, keep that and go on with n - 1 chunks;
// otherwise double n; stop when n reaches the length (removing any single call then
// makes it pass: the result is 1-minimal). Two additions for call sequences:
//   - a failing candidate reports WHERE it failed, and everything after that point is
//     dropped at once (those calls never ran before the failure);
//   - every candidate tried is remembered, so none is run twice.
// The test itself (running a candidate in a fresh worker) is the caller's, so this is
// unit-tested without processes.
//
// Thread-safety: a pure function of its arguments (the callbacks run on the calling thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "convguard/status.h"

namespace convguard::replay {

// Runs a candidate (indices into the original sequence, increasing). Returns the position
// in the candidate of the call where it failed the same way, or nullopt when it passes.
using CandidateTest =
    std::function<StatusOr<std::optional<size_t>>(const std::vector<size_t>& candidate)>;

struct MinimiseResult {
  std::vector<size_t> kept;  // the smallest failing candidate found (indices, increasing)
  bool one_minimal = false;  // removing any single call of `kept` was tried and passes
  bool out_of_budget = false;
  bool interrupted = false;
  int64_t tests = 0;  // candidates actually run (not counting remembered ones)
};

// Minimises the failing sequence 0..length-1 (which the caller knows fails at its last
// call). `budget_left` is asked before each test: false stops with the best so far.
// `on_step(kept_size, tests)` is told each time the sequence shrinks. Errors come from
// `test` only.
StatusOr<MinimiseResult> MinimiseSequence(size_t length, const CandidateTest& test,
                                          const std::function<bool()>& budget_left,
                                          const std::function<void(size_t, int64_t)>& on_step = {});

}  // namespace convguard::replay
