// convguard/recommend.h — the one change that avoids a stack's failures, if the data
// shows one, with what it costs.
//
// The seed report's recommendations were guesses ("use non-power-of-2 channels: might
// work"). Recommend() reads verdicts instead and says one of:
//   - set these knobs: a variant of the stack (the same device, driver, runtime and
//     library, other environment knobs) on which every problem that misbehaves here is
//     OK and nothing that is OK here misbehaves; cost: the variant's best OK time over
//     this stack's, per problem that both ran;
//   - avoid algorithm A: every misbehaving verdict is A's, and every problem A fails on
//     has another algorithm that is OK; cost: the best time without A over the best time
//     with it, per problem where A was OK and something else was too;
//   - use algorithm B: B is OK on every problem it ran, including every failing one;
//     cost: B's time over the best OK time, per problem;
//   - no single change: why each candidate falls short (an algorithm that fails too, a
//     variant that was not probed on every failing problem, ...), and what does work
//     (exact rewrites).
// A misbehaviour is any verdict but OK and UNSUPPORTED (a problem's verdict is its worst
// across algorithms). Costs are ratios of measured median times: the geometric mean, the
// worst, and over how many problems; a candidate without timings says so instead.
//
// Thread-safety: pure functions on values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "convguard/stack.h"
#include "convguard/verdict.h"

namespace convguard {

enum class RecommendationKind {
  kNothingToFix,    // no verdict of the stack misbehaves
  kSetKnobs,        // run on the variant `variant_stack_id` (knobs)
  kAvoidAlgorithm,  // never choose `algorithm`
  kUseAlgorithm,    // always choose `algorithm`
  kNoSingleChange,  // no knob or algorithm choice avoids every failure (reasons say why)
};
std::string_view RecommendationKindName(RecommendationKind k);  // "nothing-to-fix", ...

// A measured cost: `after` over `before`, per problem, as ratios of median times.
struct MeasuredCost {
  int64_t problems = 0;        // problems with both timings
  double geomean_ratio = 0.0;  // 0 when problems == 0
  double worst_ratio = 0.0;    // the largest ratio
  std::string worst_problem;   // where it was largest
};

struct Recommendation {
  RecommendationKind kind = RecommendationKind::kNoSingleChange;
  std::string headline;  // one sentence with the numbers
  std::string algorithm;
  std::string variant_stack_id;
  std::map<std::string, std::string> knobs;  // kSetKnobs: the variant's knobs that differ
                                             // ("" for a knob the variant does not set)
  int64_t failing_problems = 0;              // problems that misbehave on the stack
  int64_t fixed_problems = 0;                // of those, the ones the change makes OK
  MeasuredCost cost;
  std::vector<std::string> reasons;  // kNoSingleChange: why each candidate falls short
};

// A stack and its verdicts.
struct StackVerdicts {
  StackFingerprint stack;
  std::vector<Verdict> verdicts;
};

// Whether `a` and `b` are variants of one stack: every field equal but the knobs (which
// differ), the fault rules and the emulation text.
bool AreKnobVariants(const StackFingerprint& a, const StackFingerprint& b);

// Recommendations for `target` (its own verdicts) given the other stacks of the store.
// Returns one kNothingToFix or kNoSingleChange, or every change that avoids all failures
// (cheapest first by measured geometric mean; unmeasured last).
std::vector<Recommendation> Recommend(const StackVerdicts& target,
                                      const std::vector<StackVerdicts>& others);

}  // namespace convguard
