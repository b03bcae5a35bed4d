// The planner: finds the cheapest exact plan for a problem from the store's verdicts.
//
// Search. For a problem P at depth d, the options are its leaves (OK verdicts on the
// stacks in use) and, while d < max_depth, every candidate of every rewrite whose every
// child slot has an option at depth d + 1 (each slot takes its cheapest). A plan's cost
// is the sum over slots of runs x the child's cost plus the rewrite's copies. Options
// are memoised per (problem, depth), so the search visits each sub-problem once per
// depth; with a few candidates per rewrite and max_depth 2 it stays in the thousands of
// store lookups. Ties keep generation order: leaves first, then rewrites in
// AllRewrites() order, candidates in their own order. Deterministic.
//
// Probing. With probe_missing the search runs "optimistically": a sub-problem with no
// verdict at all counts as an unknown leaf at the cost model's estimate. When the best
// plan contains unknown leaves, the unknown sub-problems of the cheapest plan of each kind
// are probed in one round through the prober (the engine spreads them over its workers,
// cheapest first), and the search runs again, until the best plan is fully known, a known
// plan is within 10% of the best the unknowns could offer, or the probe budget is spent.
// With algorithm choice allowed (and not for training: plan, run, the Guard API), within a
// round the prober asks after each verdict whether that is already so and then starts
// nothing more (ProbeEnough), and a sub-problem is first probed with the backend's default
// algorithm only: an OK verdict makes it a leaf; after a misbehaving one, every algorithm
// is probed in a later round. A model's plans probe each round whole, so that the same
// store always gives the same plan. A sub-problem is never asked the same way twice. The final plan
// always comes from a non-optimistic search: only observed OK verdicts are run.
//
// Fallback stacks join the search only when the primary stacks yield no plan.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "convguard/compare.h"
#include "convguard/text_forms.h"
#include "plan/internal.h"
#include "rewrite/rewrite.h"

namespace convguard {
namespace {

using plan::CostModel;
using plan::LeafOption;

struct Option {
  PlanStep step;
  // What the option needs a verdict for before it can run, as (stack id, problem): an
  // unknown leaf, or with PlannerOptions::backward_too a leaf's unknown backward problems.
  std::vector<std::pair<std::string, Problem>> unknowns;
  bool has_unknown() const { return !unknowns.empty(); }
};

// The backward problems a forward problem's leaf runs when a framework differentiates it.
std::vector<Problem> BackwardProblems(const Problem& forward) {
  std::vector<Problem> out;
  for (Direction d : {Direction::kBackwardData, Direction::kBackwardWeights}) {
    Problem q = forward;
    q.direction = d;
    out.push_back(q);
  }
  return out;
}

// The verdicts of (stack, problem), each read from the store once per planning (and
// again after a probe may have added some).
class VerdictCache {
 public:
  explicit VerdictCache(Store& store) : store_(store) {}

  static std::string Key(const std::string& stack_id, const std::string& problem) {
    return stack_id + "/" + problem;
  }

  StatusOr<const std::vector<Verdict>*> Of(const std::string& stack_id,
                                           const std::string& problem) {
    const std::string key = Key(stack_id, problem);
    if (auto it = cache_.find(key); it != cache_.end()) return &it->second;
    VerdictFilter f;
    f.stack_id = stack_id;
    f.problem = problem;
    CG_ASSIGN_OR_RETURN(std::vector<Verdict> v, store_.ListVerdicts(f));
    return &(cache_[key] = std::move(v));
  }

  void Forget(const std::string& key) { cache_.erase(key); }

 private:
  Store& store_;
  std::map<std::string, std::vector<Verdict>> cache_;
};

class Search {
 public:
  Search(const std::vector<const StackChoice*>& stacks, VerdictCache& verdicts,
         const CostModel& cost, const PlannerOptions& options, bool optimistic,
         const std::map<std::string, bool>& asked)
      : stacks_(stacks),
        verdicts_(verdicts),
        cost_(cost),
        options_(options),
        optimistic_(optimistic),
        asked_(asked) {
    const StatusOr<BackendDescriptor> primary = DescribeBackend(stacks_.front()->backend);
    primary_takes_device_tensors_ = primary.ok() && primary->device_tensors;
  }

  // Every option for p at `depth`, cheapest first. Empty: nothing works. `parent` is the
  // rewrite that produced p ("" at the root): it is not applied again directly below
  // itself, since c -> c' -> c'' is c -> c'' (and tiles of tiles, chunks of chunks,
  // slices of slices are tiles, chunks and slices of the original).
  StatusOr<const std::vector<Option>*> Options(const Problem& p, int depth,
                                               std::string_view parent = "") {
    const std::string key =
        ToCanonical(p) + "@" + std::to_string(depth) + "/" + std::string(parent);
    if (auto it = memo_.find(key); it != memo_.end()) return &it->second;
    std::vector<Option> options;
    CG_RETURN_IF_ERROR(AddLeaves(p, options));
    if (depth < options_.max_depth) {
      for (const rewrite::Rewrite* r : rewrite::AllRewrites()) {
        if (r->name() == parent) continue;
        for (const rewrite::Application& app : r->Candidates(p)) {
          CG_ASSIGN_OR_RETURN(std::optional<Option> o, Compose(p, app, depth));
          if (o) options.push_back(std::move(*o));
        }
      }
    }
    std::stable_sort(options.begin(), options.end(), [](const Option& a, const Option& b) {
      return a.step.predicted_ms < b.step.predicted_ms;
    });
    PreferSimpleWithinNoise(options);
    // Children use only the best option. The root keeps a few for the report, and every
    // one while probing (the probe loop looks at the best of each kind).
    const size_t keep = depth > 0     ? 1
                        : optimistic_ ? options.size()
                                      : static_cast<size_t>(options_.max_alternatives) + 1;
    if (options.size() > keep) options.resize(keep);
    return &(memo_[key] = std::move(options));
  }

 private:
  // Measured times carry noise: an option with more steps (extra rewrites) must beat a
  // simpler one by more than kNoiseShare of the simpler one's time and more than
  // kNoiseMs to come first, so plans do not add a channel padding to a tile because it
  // measured 0.05 ms faster once. Moves the simplest option within that margin of the
  // fastest to the front; the rest keep their order.
  static constexpr double kNoiseShare = 0.10;
  static constexpr double kNoiseMs = 0.05;

  static int64_t Steps(const PlanStep& s) {
    int64_t n = 1;
    for (const PlanStep& c : s.children) n += Steps(c);
    return n;
  }

  static void PreferSimpleWithinNoise(std::vector<Option>& options) {
    if (options.size() < 2) return;
    const double fastest = options.front().step.predicted_ms;
    size_t chosen = 0;
    int64_t chosen_steps = Steps(options.front().step);
    for (size_t i = 1; i < options.size(); ++i) {
      const double ms = options[i].step.predicted_ms;
      if (ms - fastest > std::max(kNoiseShare * ms, kNoiseMs)) break;  // sorted: none later
      const int64_t steps = Steps(options[i].step);
      if (steps < chosen_steps) {
        chosen = i;
        chosen_steps = steps;
      }
    }
    std::rotate(options.begin(), options.begin() + static_cast<std::ptrdiff_t>(chosen),
                options.begin() + static_cast<std::ptrdiff_t>(chosen) + 1);
  }

  // What differentiating a forward leaf of `p` on `stack` adds: its backward problems'
  // time, or that it cannot be a leaf (a backward problem misbehaves, or has no usable
  // verdict), or the backward problems still to probe.
  struct Backward {
    bool blocked = false;
    double ms = 0.0;
    std::vector<std::pair<std::string, Problem>> unknowns;
  };
  StatusOr<Backward> BackwardOf(const Problem& p, const StackChoice& stack,
                                plan::LeafExactness exactness) {
    Backward b;
    for (const Problem& q : BackwardProblems(p)) {
      const std::string text = ToCanonical(q);
      CG_ASSIGN_OR_RETURN(const std::vector<Verdict>* verdicts, verdicts_.Of(stack.stack_id, text));
      // A framework picks its own backward algorithm: any misbehaving one rules q out.
      if (std::any_of(verdicts->begin(), verdicts->end(),
                      [](const Verdict& v) { return plan::IsMisbehaviour(v.kind); })) {
        b.blocked = true;
        return b;
      }
      const std::vector<LeafOption> usable =
          plan::UsableLeafOptions(*verdicts, StepKind::kNative, "", exactness);
      if (!usable.empty()) {
        b.ms += usable.front().measured_ms >= 0 ? usable.front().measured_ms
                                                : cost_.EstimateMs(stack.stack_id, q);
      } else if (verdicts->empty() && optimistic_ &&
                 asked_.count(VerdictCache::Key(stack.stack_id, text)) == 0) {
        b.ms += cost_.EstimateMs(stack.stack_id, q);
        b.unknowns.emplace_back(stack.stack_id, q);
      } else {
        b.blocked = true;
        return b;
      }
    }
    return b;
  }

  Status AddLeaves(const Problem& p, std::vector<Option>& out) {
    const std::string text = ToCanonical(p);
    for (const StackChoice* stack : stacks_) {
      CG_ASSIGN_OR_RETURN(const std::vector<Verdict>* verdicts,
                          verdicts_.Of(stack->stack_id, text));
      const plan::LeafExactness exactness =
          options_.exact_leaves ? plan::LeafExactness::kBitExactOnly : plan::LeafExactness::kAnyOk;
      Backward backward;
      if (options_.backward_too && p.direction == Direction::kForward) {
        CG_ASSIGN_OR_RETURN(backward, BackwardOf(p, *stack, exactness));
        if (backward.blocked) continue;
      }
      std::vector<LeafOption> leaves = stack->fallback
                                           ? plan::FallbackLeafOptions(*verdicts, *stack, exactness)
                                           : plan::PrimaryLeafOptions(*verdicts, exactness);
      // Unknown, for the optimistic search: never asked about; or asked with the backend's
      // default algorithm only, which did not give a usable leaf (the others are untried).
      const auto asked = asked_.find(VerdictCache::Key(stack->stack_id, text));
      const bool never_asked = asked == asked_.end();
      const bool default_only = !never_asked && !asked->second;
      if (optimistic_ && ((verdicts->empty() && never_asked) || (default_only && leaves.empty()))) {
        LeafOption unknown;
        unknown.kind = stack->fallback ? StepKind::kBackendFallback : StepKind::kNative;
        unknown.unknown = true;
        leaves.push_back(unknown);
      }
      for (const LeafOption& leaf : leaves) {
        if (!options_.allow_algorithm_choice && leaf.kind == StepKind::kAlgorithmAvoidance)
          continue;
        Option o;
        o.step.kind = leaf.kind;
        o.step.parameters = leaf.reason;
        o.step.problem = p;
        o.step.backend = stack->backend;
        o.step.stack_id = stack->stack_id;
        o.step.algorithm = leaf.algorithm;
        o.step.measured_ms = leaf.measured_ms;
        o.step.tolerance = leaf.tolerance;
        o.step.modelled = leaf.measured_ms < 0;
        o.step.predicted_ms =
            (leaf.measured_ms >= 0 ? leaf.measured_ms : cost_.EstimateMs(stack->stack_id, p)) +
            backward.ms;
        if (leaf.unknown) o.unknowns.emplace_back(stack->stack_id, p);
        o.unknowns.insert(o.unknowns.end(), backward.unknowns.begin(), backward.unknowns.end());
        out.push_back(std::move(o));
      }
    }
    return Status::Ok();
  }

  StatusOr<std::optional<Option>> Compose(const Problem& p, const rewrite::Application& app,
                                          int depth) {
    Option o;
    o.step.kind = StepKind::kRewrite;
    o.step.rewrite = app.rewrite;
    o.step.parameters = app.parameters;
    o.step.problem = p;
    o.step.runs = app.runs;
    o.step.bytes_per_call = app.bytes_per_call;
    o.step.bytes_per_weight_load = app.bytes_per_weight_load;
    double total = 0;
    // Slots repeating one problem (groups of a split) share the search, not the node.
    for (size_t i = 0; i < app.children.size(); ++i) {
      CG_ASSIGN_OR_RETURN(const std::vector<Option>* child,
                          Options(app.children[i], depth + 1, app.rewrite));
      if (child->empty()) return std::optional<Option>();
      const Option& best = child->front();
      total += static_cast<double>(app.runs[i]) * best.step.predicted_ms;
      o.unknowns.insert(o.unknowns.end(), best.unknowns.begin(), best.unknowns.end());
      o.step.modelled = o.step.modelled || best.step.modelled;
      o.step.children.push_back(best.step);
    }
    total += cost_.CopyMs(app.bytes_per_call, RunsDeviceResident(o.step));
    o.step.predicted_ms = total;
    return std::optional<Option>(std::move(o));
  }

  // Whether Guard would run `step` device-resident (plan/backend_leaf.cc,
  // BuildDeviceTree): every rewrite below has a device node and every leaf runs on the
  // primary backend, whose tensors live in device memory.
  bool RunsDeviceResident(const PlanStep& step) const {
    if (step.is_leaf()) {
      return primary_takes_device_tensors_ && step.backend == stacks_.front()->backend;
    }
    const rewrite::Rewrite* r = rewrite::FindRewrite(step.rewrite);
    if (r == nullptr || !r->has_device_node()) return false;
    for (const PlanStep& child : step.children) {
      if (!RunsDeviceResident(child)) return false;
    }
    return true;
  }

  std::vector<const StackChoice*> stacks_;
  bool primary_takes_device_tensors_ = false;
  VerdictCache& verdicts_;
  const CostModel& cost_;
  const PlannerOptions& options_;
  bool optimistic_;
  const std::map<std::string, bool>& asked_;  // key -> every algorithm asked (else the default)
  std::map<std::string, std::vector<Option>> memo_;
};

void Summarise(const PlanStep& step, int depth, Plan& plan, int64_t multiplier) {
  if (step.is_leaf()) {
    plan.leaves += multiplier;
    plan.depth = std::max(plan.depth, depth);
    if (step.kind == StepKind::kBackendFallback) plan.uses_fallback = true;
    if (step.tolerance != 0.0) plan.exact = false;
    return;
  }
  for (size_t i = 0; i < step.children.size(); ++i) {
    Summarise(step.children[i], depth + 1, plan, multiplier * step.runs[i]);
  }
}

Plan MakePlanFrom(const PlanStep& root, double native_ms, bool native_measured) {
  Plan plan;
  plan.root = root;
  plan.predicted_ms = root.predicted_ms;
  plan.native_ms = native_ms;
  plan.native_measured = native_measured;
  Summarise(root, 0, plan, 1);
  return plan;
}

// Options that change the model, for a person: nearby shapes the stack handles.
StatusOr<std::vector<std::string>> Suggest(const Problem& p, const StackChoice& primary,
                                           Store& store, bool have_fallbacks) {
  std::vector<std::string> out;
  VerdictFilter f;
  f.stack_id = primary.stack_id;
  f.kind = VerdictKind::kOk;
  f.limit = 20000;
  CG_ASSIGN_OR_RETURN(std::vector<Verdict> ok, store.ListVerdicts(f));
  std::optional<Problem> best_size, best_c, best_k;
  auto closer = [](int64_t a, int64_t b, int64_t target) {
    return std::llabs(a - target) < std::llabs(b - target) ||
           (std::llabs(a - target) == std::llabs(b - target) && a < b);
  };
  for (const Verdict& v : ok) {
    StatusOr<Problem> q = ParseProblem(v.problem);
    if (!q.ok()) continue;
    Problem same_size = *q;
    same_size.h = p.h;
    same_size.w = p.w;
    if (same_size == p && (q->h != p.h || q->w != p.w)) {
      if (!best_size || closer(q->h * q->w, best_size->h * best_size->w, p.h * p.w)) best_size = *q;
    }
    Problem same_c = *q;
    same_c.c = p.c;
    if (same_c == p && q->c != p.c && (!best_c || closer(q->c, best_c->c, p.c))) best_c = *q;
    Problem same_k = *q;
    same_k.k = p.k;
    if (same_k == p && q->k != p.k && (!best_k || closer(q->k, best_k->k, p.k))) best_k = *q;
  }
  if (best_size) {
    out.push_back("resize this layer's input to " + std::to_string(best_size->h) + "x" +
                  std::to_string(best_size->w) +
                  " (OK on this stack): changes the model's resolution");
  }
  if (p.h > 1 || p.w > 1) {
    out.push_back(
        "pool or stride the input by 2 before this layer: changes the model and needs retraining");
  }
  if (best_c) {
    out.push_back("use " + std::to_string(best_c->c) + " input channels instead of " +
                  std::to_string(p.c) +
                  " (OK on this stack): changes the model and needs retraining");
  }
  if (best_k) {
    out.push_back("use " + std::to_string(best_k->k) + " output channels instead of " +
                  std::to_string(p.k) +
                  " (OK on this stack): changes the model and needs retraining");
  }
  if (!have_fallbacks) {
    out.push_back("name another backend of this machine with --fallback (exact, usually slower)");
  }
  out.push_back("probe the sub-problems the planner has no verdict for: --probe-missing");
  return out;
}

}  // namespace

StatusOr<PlanReport> MakePlan(const Problem& p, const std::vector<StackChoice>& stacks,
                              Store& store, const PlannerOptions& options, const Prober& prober) {
  CG_RETURN_IF_ERROR(Validate(p));
  if (options.max_depth < 0 || options.max_depth > 4) {
    return Status::InvalidArgument("max_depth = " + std::to_string(options.max_depth) +
                                   " is out of range (allowed 0..4)");
  }
  if (options.probe_missing && !prober) {
    return Status::InvalidArgument("probe_missing needs a prober (the probe engine)");
  }
  std::vector<const StackChoice*> primary, with_fallbacks;
  for (const StackChoice& s : stacks) {
    if (!s.fallback) primary.push_back(&s);
    with_fallbacks.push_back(&s);
  }
  if (primary.empty()) return Status::InvalidArgument("no primary stack to plan on");

  PlanReport report;
  report.problem = p;
  report.problem_text = ToCanonical(p);

  CostModel cost(options);
  // The stack's throughput from its OK verdicts; again after every round of probes.
  auto calibrate = [&](const StackChoice& s) -> Status {
    VerdictFilter f;
    f.stack_id = s.stack_id;
    f.kind = VerdictKind::kOk;
    f.limit = 5000;
    CG_ASSIGN_OR_RETURN(std::vector<Verdict> ok, store.ListVerdicts(f));
    cost.Calibrate(s.stack_id, ok);
    return Status::Ok();
  };
  for (const StackChoice& s : stacks) CG_RETURN_IF_ERROR(calibrate(s));

  // Sub-problems asked about: key -> whether every algorithm was asked (else only the
  // backend's default: enough when it is OK, with algorithm choice allowed).
  std::map<std::string, bool> asked;
  const bool default_first = options.allow_algorithm_choice && !options.backward_too;
  VerdictCache verdicts(store);
  // A plan is good enough when the best the unknowns could offer is known, or a known
  // plan is within 10% of it.
  auto good_enough = [](const std::vector<Option>& found) {
    if (found.empty() || !found.front().has_unknown()) return true;
    auto known =
        std::find_if(found.begin(), found.end(), [](const Option& o) { return !o.has_unknown(); });
    return known != found.end() &&
           known->step.predicted_ms <= 1.10 * found.front().step.predicted_ms;
  };

  auto run_phase =
      [&](const std::vector<const StackChoice*>& in_use) -> StatusOr<std::vector<Option>> {
    while (options.probe_missing && report.probes_run < options.probe_budget) {
      Search optimistic(in_use, verdicts, cost, options, /*optimistic=*/true, asked);
      CG_ASSIGN_OR_RETURN(const std::vector<Option>* found, optimistic.Options(p, 0));
      if (good_enough(*found)) break;
      // Breadth first: the unknown leaves of the cheapest plan of each kind (as is, each
      // rewrite), cheapest kind first, so that one family of sub-problems that all
      // misbehave alike (tiles of a stack that hangs on every 16-channel problem) cannot
      // spend the whole budget.
      std::vector<std::pair<std::string, Problem>> unknown;
      std::set<std::string> kinds;
      for (const Option& o : *found) {
        const std::string kind = o.step.is_leaf() ? "" : o.step.rewrite;
        if (!o.has_unknown() || !kinds.insert(kind).second) continue;
        unknown.insert(unknown.end(), o.unknowns.begin(), o.unknowns.end());
      }
      bool probed_any = false;
      for (const StackChoice* stack : in_use) {
        const std::map<std::string, bool> asked_before = asked;
        std::vector<ProbeJob> jobs;
        std::vector<std::pair<std::string, std::string>> round;  // (key, canonical)
        for (const auto& [stack_id, problem] : unknown) {
          if (stack_id != stack->stack_id) continue;
          if (static_cast<int64_t>(jobs.size()) + report.probes_run >= options.probe_budget) break;
          const std::string canonical = ToCanonical(problem);
          const std::string key = VerdictCache::Key(stack_id, canonical);
          if (std::any_of(round.begin(), round.end(),
                          [&](const auto& r) { return r.first == key; }))
            continue;
          auto a = asked.find(key);
          if (a != asked.end() && a->second) continue;  // every algorithm asked already
          // First the backend's default algorithm: with algorithm choice allowed, an OK
          // verdict for it is a usable leaf, and the others need not be probed; after it
          // misbehaved, every algorithm.
          const bool every = !default_first || a != asked.end();
          asked[key] = every;
          round.emplace_back(key, canonical);
          verdicts.Forget(key);
          // The problem asked about is always decided: its verdict as is is what the report
          // shows first, even when a rewrite turns out good enough meanwhile.
          jobs.push_back(ProbeJob{problem, every ? "*" : "", canonical == report.problem_text});
        }
        if (jobs.empty()) continue;
        // After each verdict: is a plan good enough now? The round's problems that have no
        // verdict yet count as unknown (optimistically), as before the round.
        ProbeEnough enough = [&](const Verdict& v) -> bool {
          verdicts.Forget(VerdictCache::Key(v.stack_id, v.problem));
          if (!IsUsable(v.kind)) return false;
          std::map<std::string, bool> view = asked_before;
          for (const auto& [key, canonical] : round) {
            StatusOr<const std::vector<Verdict>*> known = verdicts.Of(stack->stack_id, canonical);
            if (known.ok() && !(*known)->empty()) view[key] = asked[key];
          }
          Search now(in_use, verdicts, cost, options, /*optimistic=*/true, view);
          StatusOr<const std::vector<Option>*> options_now = now.Options(p, 0);
          return options_now.ok() && good_enough(**options_now);
        };
        // Stopping a round early makes the choice among plans within 10% of each other
        // depend on which verdict arrives first. Where the plan may choose its algorithm
        // (plan, run, Guard) speed to a plan wins; a model's plans (scan, fix, training)
        // keep every candidate of the round, so the same store gives the same fixed model.
        CG_ASSIGN_OR_RETURN(int64_t ran,
                            prober(*stack, jobs, default_first ? enough : ProbeEnough()));
        report.probes_run += ran;
        // A job the prober dropped once enough was known has no verdict: it counts as never
        // asked again, in case a later round needs it.
        for (const auto& [key, canonical] : round) {
          verdicts.Forget(key);
          StatusOr<const std::vector<Verdict>*> known = verdicts.Of(stack->stack_id, canonical);
          if (!known.ok()) return known.status();
          if ((*known)->empty()) {
            auto before = asked_before.find(key);
            if (before == asked_before.end()) {
              asked.erase(key);
            } else {
              asked[key] = before->second;
            }
          }
        }
        probed_any = true;
        CG_RETURN_IF_ERROR(calibrate(*stack));
      }
      if (!probed_any) break;
    }
    if (options.probe_missing && report.probes_run >= options.probe_budget) {
      report.notes.push_back("probe budget of " + std::to_string(options.probe_budget) +
                             " probes spent; raise it with --probe-budget");
    }
    Search exact(in_use, verdicts, cost, options, /*optimistic=*/false, asked);
    CG_ASSIGN_OR_RETURN(const std::vector<Option>* found, exact.Options(p, 0));
    return *found;
  };

  CG_ASSIGN_OR_RETURN(std::vector<Option> found, run_phase(primary));
  const bool have_fallbacks = with_fallbacks.size() > primary.size();
  if (found.empty() && have_fallbacks) {
    report.notes.push_back("no plan on the primary stack; backend fallback considered");
    CG_ASSIGN_OR_RETURN(found, run_phase(with_fallbacks));
  }

  // What the store says about the problem as is, and its native time.
  CG_ASSIGN_OR_RETURN(const std::vector<Verdict>* native,
                      verdicts.Of(primary.front()->stack_id, report.problem_text));
  double native_ms = -1.0;
  std::vector<std::string> rounding_set_aside;
  for (const Verdict& v : *native) {
    std::string line = v.algorithm + ": " + std::string(VerdictName(v.kind));
    if (v.kind == VerdictKind::kOk && v.tolerance > 0) line += " (rounds)";
    if (v.kind == VerdictKind::kOk && v.tolerance != 0 && options.exact_leaves) {
      rounding_set_aside.push_back("'" + v.algorithm + "'");
    }
    if (v.time_ms_median > 0) {
      line += " (" + std::to_string(v.time_ms_median) + " ms)";
      native_ms = native_ms < 0 ? v.time_ms_median : std::min(native_ms, v.time_ms_median);
    }
    if (!v.message.empty() && v.kind != VerdictKind::kOk) line += " — " + v.message;
    report.native_verdicts.push_back(std::move(line));
  }
  if (!rounding_set_aside.empty()) {
    std::string names;
    for (const std::string& n : rounding_set_aside) names += (names.empty() ? "" : ", ") + n;
    report.notes.push_back(
        "exact leaves demanded: set aside OK algorithm(s) " + names +
        " of the problem as is, whose results round or whose exactness was not recorded");
  }
  bool native_measured = native_ms >= 0;
  if (!native_measured) native_ms = cost.EstimateMs(primary.front()->stack_id, p);
  if (options.backward_too && p.direction == Direction::kForward) {
    // The plan's leaves run forward and backward: so does the problem as is.
    for (const Problem& q : BackwardProblems(p)) {
      CG_ASSIGN_OR_RETURN(const std::vector<Verdict>* bwd,
                          verdicts.Of(primary.front()->stack_id, ToCanonical(q)));
      double best = -1.0;
      for (const Verdict& v : *bwd) {
        if (v.time_ms_median > 0)
          best = best < 0 ? v.time_ms_median : std::min(best, v.time_ms_median);
      }
      native_measured = native_measured && best >= 0;
      native_ms += best >= 0 ? best : cost.EstimateMs(primary.front()->stack_id, q);
    }
    report.notes.push_back(
        "planned for training: every leaf is OK forward, backward-data and backward-weights, "
        "and times include all three");
  }

  for (size_t i = 0; i < found.size(); ++i) {
    Plan plan = MakePlanFrom(found[i].step, native_ms, native_measured);
    if (i == 0) {
      report.chosen = std::move(plan);
    } else {
      report.alternatives.push_back(std::move(plan));
    }
  }
  if (!report.chosen) {
    CG_ASSIGN_OR_RETURN(report.suggestions, Suggest(p, *primary.front(), store, have_fallbacks));
  }
  return report;
}

double PlanTolerance(const Plan& plan) {
  return plan.exact ? 0.0 : DefaultTolerance(plan.root.problem, /*exact_filled=*/false);
}

}  // namespace convguard
