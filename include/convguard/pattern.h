// convguard/pattern.h — the pattern behind a stack's failures, learned from its verdicts
// and written in convguard's own fault-rules language (docs/fault-injection.md).
//
// The seed report's author summed up the data in one line ("certain channel counts with
// sizes over 32x32 hang") and got it partly wrong. LearnPattern derives that line from
// verified verdicts instead: a shallow decision tree over the problem's fields and derived
// features (c*k, h*w, oh*ow, powers of two, divisibility by 2/4/8/16, kernel size, stride,
// dilation, groups, dtype, layout, direction, algorithm), whose misbehaving leaves are
// printed as rules — `spin when ...` for HANG, `segv when ...` for CRASH, and so on — so a
// person can read them and `--inject` of the printed file on the reference backend
// reproduces them: a round trip that tests the learner.
//
// Honesty: every count a Pattern states (per rule: verdicts covered and how many of them
// it gets wrong; overall: errors on the training verdicts and on a held-out part) is
// computed by parsing the printed rules text and matching it against the verdicts, not
// from the tree's own bookkeeping, so the stated error is what the printed rules really
// do. The held-out part is chosen by a hash of each problem's canonical text (the same
// split on every run and machine); no verdict of a held-out problem is learned from.
//
// Thread-safety: values and pure functions.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "convguard/problem.h"
#include "convguard/status.h"
#include "convguard/verdict.h"

namespace convguard {

struct PatternOptions {
  int max_depth = 6;          // levels of the tree (conditions per rule at most)
  int64_t min_leaf = 1;       // fewest training verdicts a leaf may hold
  int held_out_percent = 20;  // share of problems kept out of learning, 0..90
  int64_t min_verdicts = 8;   // fewer usable verdicts: kInvalidArgument
  bool use_algorithm = true;  // split on `algo` too
};

// One printed rule and what it does to the verdicts.
struct LearnedRule {
  VerdictKind kind = VerdictKind::kHang;  // what the rule's fault produces
  std::string fault;                      // "spin", "segv", "wrong(0.5)", ...
  std::string predicate;                  // fault-rules predicate text
  int64_t train_covered = 0;              // training verdicts it matches (first match)
  int64_t train_wrong = 0;                // of those, verdicts of another kind
  int64_t held_out_covered = 0;
  int64_t held_out_wrong = 0;
};

struct Pattern {
  std::string stack_id;
  int64_t train_verdicts = 0;
  int64_t held_out_verdicts = 0;
  int64_t train_errors = 0;  // verdicts the printed rules predict wrongly
  int64_t held_out_errors = 0;
  int64_t unmatched_train = 0;  // verdicts no rule matches (predicted OK)
  int64_t unmatched_train_wrong = 0;
  int64_t unmatched_held_out = 0;
  int64_t unmatched_held_out_wrong = 0;
  std::vector<LearnedRule> rules;
  std::vector<std::string> notes;  // what was left out and why

  // The rules file: a header of comments (stack, counts, errors), one rule per leaf with
  // its counts as a comment. ParseFaultRules reads it.
  std::string RulesText() const;
  std::string ToJson() const;
};

// What a pattern predicts for a problem not yet probed. A prediction is never a verdict:
// it is shown as PREDICTED and never stored.
struct Prediction {
  VerdictKind kind = VerdictKind::kOk;
  // The share of the training verdicts that the same rule (or "no rule") got right, with
  // one right and one wrong added (Laplace), so a rule learned from 3 verdicts says 0.80,
  // not 1.00.
  double confidence = 0.0;
  int64_t support = 0;  // training verdicts behind it
  std::string rule;     // the matching rule's text, or "" when no rule matches
};

// Predicts (p, algorithm) from `pattern`'s rules. Errors: kInternal if the rules text does
// not parse (it always does for a Pattern from LearnPattern).
StatusOr<Prediction> Predict(const Pattern& pattern, const Problem& p,
                             const std::string& algorithm = "");

// The pattern of problems rather than (problem, algorithm) pairs: each problem labelled
// with its most severe verdict (HANG, CRASH, WRONG, OOM, ERROR, MISTRUSTED, SLOW,
// UNSUPPORTED, OK), no algorithm feature: what a framework that picks its own algorithm
// meets. What scan predictions and informative sweeps use.
StatusOr<Pattern> LearnProblemPattern(const std::vector<Verdict>& verdicts,
                                      PatternOptions options = {});

// What a pattern learned from may be predicted: problems whose direction, data type and
// layout some verdict has. Beyond that a prediction would be an extrapolation with a
// confidence it has not earned, so callers show none.
class LearnedScope {
 public:
  explicit LearnedScope(const std::vector<Verdict>& verdicts);
  bool Covers(const Problem& p) const;

 private:
  std::set<std::string> kinds_;
};

// The indices of `candidates` ordered from the least certain prediction to the most
// (ties: in their given order), for probing first what teaches the pattern most.
// Errors as Predict.
StatusOr<std::vector<size_t>> LeastCertainFirst(const Pattern& pattern,
                                                const std::vector<Problem>& candidates);

// Learns the pattern of `verdicts`, which must all be of one stack. Verdicts whose kind
// no fault produces (MISTRUSTED, OOM) are left out with a note.
// Errors: kInvalidArgument when fewer than options.min_verdicts usable verdicts remain,
// when they are all of one kind (nothing to learn: the message says which), or when the
// verdicts span several stacks.
StatusOr<Pattern> LearnPattern(const std::vector<Verdict>& verdicts,
                               const PatternOptions& options = {});

}  // namespace convguard
