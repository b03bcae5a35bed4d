// Recommendations from verdicts: a knob variant or an algorithm choice that avoids every
// failure, with its measured cost (convguard/recommend.h).
#include "convguard/recommend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <set>

namespace convguard {
namespace {

bool Misbehaves(VerdictKind k) { return k != VerdictKind::kOk && k != VerdictKind::kUnsupported; }

// What the verdicts say about one problem across its algorithms.
struct ProblemView {
  VerdictKind worst = VerdictKind::kOk;
  std::map<std::string, const Verdict*> by_algorithm;
  bool misbehaves() const { return Misbehaves(worst); }
  bool any_ok() const {
    for (const auto& [algo, v] : by_algorithm)
      if (v->kind == VerdictKind::kOk) return true;
    return false;
  }
  // The fastest OK median among the algorithms `keep` accepts; nullopt when none is timed.
  template <typename Keep>
  std::optional<double> BestOkMs(Keep keep) const {
    std::optional<double> best;
    for (const auto& [algo, v] : by_algorithm)
      if (v->kind == VerdictKind::kOk && v->time_ms_median > 0 && keep(algo))
        best = best ? std::min(*best, v->time_ms_median) : v->time_ms_median;
    return best;
  }
  std::optional<double> BestOkMs() const {
    return BestOkMs([](const std::string&) { return true; });
  }
};

std::map<std::string, ProblemView> ByProblem(const std::vector<Verdict>& verdicts) {
  std::map<std::string, ProblemView> out;
  for (const Verdict& v : verdicts) {
    auto [it, fresh] = out.try_emplace(v.problem);
    ProblemView& view = it->second;
    if (fresh || VerdictSeverity(v.kind) < VerdictSeverity(view.worst)) view.worst = v.kind;
    view.by_algorithm[v.algorithm] = &v;
  }
  return out;
}

// Accumulates after/before ratios.
class CostMeter {
 public:
  void Add(const std::string& problem, double before_ms, double after_ms) {
    if (before_ms <= 0 || after_ms <= 0) return;
    const double ratio = after_ms / before_ms;
    log_sum_ += std::log(ratio);
    ++cost_.problems;
    if (ratio > cost_.worst_ratio) {
      cost_.worst_ratio = ratio;
      cost_.worst_problem = problem;
    }
  }
  MeasuredCost Result() const {
    MeasuredCost c = cost_;
    if (c.problems > 0) c.geomean_ratio = std::exp(log_sum_ / static_cast<double>(c.problems));
    return c;
  }

 private:
  MeasuredCost cost_;
  double log_sum_ = 0.0;
};

std::string Ratio(double r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fx", r);
  return buf;
}

std::string CostText(const MeasuredCost& c, const std::string& what) {
  if (c.problems == 0) return "its cost is not measured (no problem has both timings)";
  return "cost: " + what + " " + Ratio(c.geomean_ratio) + " (geometric mean over " +
         std::to_string(c.problems) + " problem" + (c.problems == 1 ? "" : "s") + ", worst " +
         Ratio(c.worst_ratio) + ")";
}

std::string Plural(int64_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string KnobsText(const std::map<std::string, std::string>& knobs) {
  std::string out;
  for (const auto& [name, value] : knobs)
    out += (out.empty() ? "" : " ") + name + "=" + (value.empty() ? "(unset)" : value);
  return out;
}

// The knobs on which `variant` differs from `base`, with the variant's values.
std::map<std::string, std::string> KnobDifference(const StackFingerprint& base,
                                                  const StackFingerprint& variant) {
  std::map<std::string, std::string> diff;
  for (const auto& [name, value] : variant.knobs) {
    auto it = base.knobs.find(name);
    if (it == base.knobs.end() || it->second != value) diff[name] = value;
  }
  for (const auto& [name, value] : base.knobs)
    if (!variant.knobs.count(name)) diff[name] = "";
  return diff;
}

// A knob variant, or the reason it falls short.
std::optional<Recommendation> TryVariant(const StackVerdicts& target,
                                         const std::map<std::string, ProblemView>& here,
                                         const StackVerdicts& variant, int64_t failing,
                                         std::vector<std::string>& reasons) {
  const std::map<std::string, ProblemView> there = ByProblem(variant.verdicts);
  const std::string name = KnobsText(KnobDifference(target.stack, variant.stack));
  int64_t fixed = 0, unprobed = 0, still = 0, broken = 0;
  CostMeter meter;
  for (const auto& [problem, view] : here) {
    auto it = there.find(problem);
    if (it == there.end()) {
      if (view.misbehaves()) ++unprobed;
      continue;
    }
    const ProblemView& other = it->second;
    if (view.misbehaves()) {
      if (!other.misbehaves() && other.any_ok()) {
        ++fixed;
      } else {
        ++still;
      }
    } else if (other.misbehaves()) {
      ++broken;
    }
    if (!view.misbehaves() && !other.misbehaves()) {
      const std::optional<double> before = view.BestOkMs(), after = other.BestOkMs();
      if (before && after) meter.Add(problem, *before, *after);
    }
  }
  if (fixed == failing && broken == 0) {
    Recommendation r;
    r.kind = RecommendationKind::kSetKnobs;
    r.variant_stack_id = variant.stack.Id();
    r.knobs = KnobDifference(target.stack, variant.stack);
    r.failing_problems = failing;
    r.fixed_problems = fixed;
    r.cost = meter.Result();
    r.headline = "set " + name + " (stack " + r.variant_stack_id + "): all " +
                 Plural(failing, "failing problem") + " are OK there and nothing that works here " +
                 "fails there; " + CostText(r.cost, "time");
    return r;
  }
  std::string why = "knobs " + name + " (stack " + variant.stack.Id() + "): ";
  std::vector<std::string> parts;
  if (fixed > 0)
    parts.push_back("fixes " + std::to_string(fixed) + " of " + std::to_string(failing));
  if (still > 0) parts.push_back(std::to_string(still) + " still fail there");
  if (unprobed > 0) parts.push_back(std::to_string(unprobed) + " not probed there");
  if (broken > 0)
    parts.push_back(broken == 1 ? std::string("1 problem that works here fails there")
                                : std::to_string(broken) + " problems that work here fail there");
  for (size_t i = 0; i < parts.size(); ++i) why += (i ? ", " : "") + parts[i];
  reasons.push_back(why);
  return std::nullopt;
}

// An algorithm choice that fixes every one of `failing` problems, at `cost`.
Recommendation AlgorithmChoice(RecommendationKind kind, const std::string& algorithm,
                               int64_t failing, const MeasuredCost& cost) {
  Recommendation r;
  r.kind = kind;
  r.algorithm = algorithm;
  r.failing_problems = failing;
  r.fixed_problems = failing;
  r.cost = cost;
  return r;
}

}  // namespace

std::string_view RecommendationKindName(RecommendationKind k) {
  switch (k) {
    case RecommendationKind::kNothingToFix: return "nothing-to-fix";
    case RecommendationKind::kSetKnobs: return "set-knobs";
    case RecommendationKind::kAvoidAlgorithm: return "avoid-algorithm";
    case RecommendationKind::kUseAlgorithm: return "use-algorithm";
    case RecommendationKind::kNoSingleChange: return "no-single-change";
  }
  return "?";
}

bool AreKnobVariants(const StackFingerprint& a, const StackFingerprint& b) {
  return a.knobs != b.knobs && a.backend == b.backend && a.device == b.device &&
         a.architecture == b.architecture && a.compute_units == b.compute_units &&
         a.driver == b.driver && a.runtime == b.runtime && a.library == b.library;
}

std::vector<Recommendation> Recommend(const StackVerdicts& target,
                                      const std::vector<StackVerdicts>& others) {
  const std::map<std::string, ProblemView> here = ByProblem(target.verdicts);
  int64_t failing = 0;
  std::set<std::string> failing_algorithms;
  for (const Verdict& v : target.verdicts)
    if (Misbehaves(v.kind)) failing_algorithms.insert(v.algorithm);
  for (const auto& [problem, view] : here) failing += view.misbehaves() ? 1 : 0;
  if (failing == 0) {
    Recommendation r;
    r.kind = RecommendationKind::kNothingToFix;
    r.headline = "nothing to avoid: none of the " +
                 Plural(static_cast<int64_t>(here.size()), "problem") + " misbehaves on this stack";
    return {r};
  }

  std::vector<Recommendation> found;
  std::vector<std::string> reasons;

  // Knob variants of the stack.
  for (const StackVerdicts& other : others)
    if (AreKnobVariants(target.stack, other.stack))
      if (std::optional<Recommendation> r = TryVariant(target, here, other, failing, reasons))
        found.push_back(std::move(*r));

  // Avoiding the one algorithm that fails.
  std::set<std::string> algorithms;
  for (const Verdict& v : target.verdicts) algorithms.insert(v.algorithm);
  if (failing_algorithms.size() == 1 && algorithms.size() > 1) {
    const std::string bad = *failing_algorithms.begin();
    int64_t fixed = 0;
    for (const auto& [problem, view] : here) {
      if (!view.misbehaves()) continue;
      bool other_ok = false;
      for (const auto& [algo, v] : view.by_algorithm)
        other_ok = other_ok || (algo != bad && v->kind == VerdictKind::kOk);
      fixed += other_ok ? 1 : 0;
    }
    if (fixed == failing) {
      CostMeter meter;
      int64_t only_ok = 0;
      for (const auto& [problem, view] : here) {
        auto it = view.by_algorithm.find(bad);
        if (it == view.by_algorithm.end() || it->second->kind != VerdictKind::kOk) continue;
        const std::optional<double> with = view.BestOkMs();
        const std::optional<double> without =
            view.BestOkMs([&](const std::string& a) { return a != bad; });
        bool other_ok = false;
        for (const auto& [algo, v] : view.by_algorithm)
          other_ok = other_ok || (algo != bad && v->kind == VerdictKind::kOk);
        if (!other_ok) ++only_ok;
        if (with && without) meter.Add(problem, *with, *without);
      }
      if (only_ok == 0) {
        Recommendation r =
            AlgorithmChoice(RecommendationKind::kAvoidAlgorithm, bad, failing, meter.Result());
        r.headline = "avoid algorithm '" + bad + "': every misbehaving verdict is its own, and " +
                     "each of the " + Plural(failing, "failing problem") +
                     " has another algorithm that is OK; " +
                     CostText(r.cost, "best time without it over best time with it");
        found.push_back(std::move(r));
      } else {
        reasons.push_back("avoiding algorithm '" + bad + "' would leave " +
                          Plural(only_ok, "problem") + " with no OK algorithm");
      }
    } else {
      reasons.push_back("avoiding algorithm '" + bad + "' fixes " + std::to_string(fixed) + " of " +
                        std::to_string(failing) +
                        " failing problems; the others have no other OK algorithm");
    }
  } else if (algorithms.size() > 1) {
    std::string names;
    for (const std::string& a : failing_algorithms)
      names += (names.empty() ? "'" : ", '") + a + "'";
    reasons.push_back("failures come from " + std::to_string(failing_algorithms.size()) +
                      " algorithms (" + names + "), so avoiding one is not enough");
  }

  // Always choosing one algorithm that is OK everywhere it ran.
  for (const std::string& algo : algorithms) {
    if (failing_algorithms.count(algo)) continue;
    int64_t covered = 0;
    for (const auto& [problem, view] : here)
      if (view.misbehaves() && view.by_algorithm.count(algo)) ++covered;
    bool ok_everywhere = true;
    for (const auto& [problem, view] : here) {
      auto it = view.by_algorithm.find(algo);
      if (it != view.by_algorithm.end() && it->second->kind != VerdictKind::kOk)
        ok_everywhere = false;
    }
    if (covered < failing || !ok_everywhere) {
      if (covered < failing && ok_everywhere)
        reasons.push_back("algorithm '" + algo + "' is OK wherever it ran, but ran on only " +
                          std::to_string(covered) + " of the " +
                          Plural(failing, "failing problem"));
      continue;
    }
    CostMeter meter;
    for (const auto& [problem, view] : here) {
      auto it = view.by_algorithm.find(algo);
      if (it == view.by_algorithm.end()) continue;
      const std::optional<double> best = view.BestOkMs();
      if (best && it->second->time_ms_median > 0)
        meter.Add(problem, *best, it->second->time_ms_median);
    }
    Recommendation r =
        AlgorithmChoice(RecommendationKind::kUseAlgorithm, algo, failing, meter.Result());
    r.headline = "use algorithm '" + algo + "' for every problem: it is OK on all " +
                 Plural(covered, "failing problem") + " and everywhere else it ran; " +
                 CostText(r.cost, "its time over the best time");
    found.push_back(std::move(r));
  }

  if (!found.empty()) {
    std::stable_sort(found.begin(), found.end(),
                     [](const Recommendation& a, const Recommendation& b) {
                       const bool am = a.cost.problems > 0, bm = b.cost.problems > 0;
                       if (am != bm) return am;
                       return am && a.cost.geomean_ratio < b.cost.geomean_ratio;
                     });
    return found;
  }
  Recommendation r;
  r.kind = RecommendationKind::kNoSingleChange;
  r.failing_problems = failing;
  if (algorithms.size() == 1 && failing_algorithms.size() == 1)
    reasons.push_back("the backend ran one algorithm here ('" + *algorithms.begin() +
                      "'), and it is the one that fails");
  bool any_variant = false;
  for (const StackVerdicts& other : others)
    any_variant = any_variant || AreKnobVariants(target.stack, other.stack);
  if (!any_variant)
    reasons.push_back(
        "the store holds no knob variant of this stack (the same stack with other "
        "environment knobs) to compare with");
  r.reasons = reasons;
  r.headline = "no single knob or algorithm change avoids all " +
               Plural(failing, "failing problem") +
               "; run them through exact rewrites instead (convguard scan --probe, fix, run, or "
               "convguard.torch.guard)";
  return {r};
}

}  // namespace convguard
