// Scanning a model against a stack (convguard/scan.h).
#include "convguard/scan.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "convguard/pattern.h"
#include "convguard/problem_source.h"
#include "convguard/text_forms.h"

namespace convguard {
namespace {

// Most severe first: what the layer's state names.
int Severity(VerdictKind k) { return VerdictSeverity(k); }

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

// The problems a layer runs: its own (forward for a model; a log's command may be any
// direction), and with training a forward layer's two backward directions.
std::vector<Problem> LayerProblems(const Problem& forward, bool training) {
  std::vector<Problem> out = {forward};
  if (training && forward.direction == Direction::kForward) {
    for (Direction d : {Direction::kBackwardData, Direction::kBackwardWeights}) {
      Problem p = forward;
      p.direction = d;
      out.push_back(p);
    }
  }
  return out;
}

void Judge(const std::vector<Verdict>& verdicts, ScannedProblem& out) {
  if (verdicts.empty()) {
    out.state = LayerState::kUnknown;
    return;
  }
  const Verdict* worst = &verdicts.front();
  for (const Verdict& v : verdicts) {
    if (Severity(v.kind) < Severity(worst->kind)) worst = &v;
  }
  out.verdict = std::string(VerdictName(worst->kind));
  out.state = worst->kind == VerdictKind::kOk ? LayerState::kOk : LayerState::kBad;
  if (out.state == LayerState::kBad)
    out.detail = "'" + worst->algorithm + "': " + FirstLine(worst->message);
}

// Problems still without a verdict get the prediction of the stack's learned pattern:
// one label per problem (its worst verdict, as a layer is judged), no algorithm, since a
// framework picks its own. Too few verdicts to learn from: no prediction, and a note.
Status PredictUnknown(Store& store, ScanReport& r, std::map<std::string, ScannedProblem>& judged) {
  bool any_unknown = false;
  for (const auto& [key, s] : judged) any_unknown = any_unknown || s.state == LayerState::kUnknown;
  if (!any_unknown) return Status::Ok();
  VerdictFilter filter;
  filter.stack_id = r.stack.stack_id;
  CG_ASSIGN_OR_RETURN(std::vector<Verdict> all, store.ListVerdicts(filter));
  StatusOr<Pattern> pattern = LearnProblemPattern(all);
  if (!pattern.ok()) {
    r.notes.push_back("no predictions for the unknown layers: " + pattern.status().message());
    return Status::Ok();
  }
  const LearnedScope scope(all);
  int64_t beyond = 0;
  for (auto& [key, s] : judged) {
    if (s.state != LayerState::kUnknown) continue;
    if (!scope.Covers(s.problem)) {
      ++beyond;
      continue;
    }
    CG_ASSIGN_OR_RETURN(Prediction p, Predict(*pattern, s.problem));
    s.predicted = std::string(VerdictName(p.kind));
    s.predicted_confidence = p.confidence;
    s.predicted_rule = p.rule;
  }
  char held[64];
  std::snprintf(held, sizeof held, "%lld of %lld", static_cast<long long>(pattern->held_out_errors),
                static_cast<long long>(pattern->held_out_verdicts));
  r.notes.push_back("PREDICTED verdicts come from the pattern learned from " +
                    std::to_string(pattern->train_verdicts) +
                    " problems' verdicts of this stack (convguard pattern; wrong on " + held +
                    " held-out problems); they are not verdicts and are not stored");
  if (beyond > 0) {
    r.notes.push_back("no prediction for " + std::to_string(beyond) +
                      " unknown problem(s) whose direction, data type and layout no verdict "
                      "of this stack has");
  }
  return Status::Ok();
}

LayerState Worst(LayerState a, LayerState b) {
  // BAD outranks UNKNOWN outranks OK; UNSUPPORTED only when nothing was checked.
  auto rank = [](LayerState s) {
    switch (s) {
      case LayerState::kBad: return 3;
      case LayerState::kUnknown: return 2;
      case LayerState::kOk: return 1;
      case LayerState::kUnsupported: return 0;
    }
    return 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

std::string Percent(double ratio) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.0f%%", (ratio - 1.0) * 100.0);
  return buf;
}

void Conclude(ScanReport& r) {
  int64_t checked = 0, bad = 0, unknown = 0, unsupported = 0, blocked = 0;
  std::map<std::string, int64_t> rewrites;
  double plan_ms = 0, native_ms = 0;
  const ScannedLayer* first_blocked = nullptr;
  const ScannedProblem* first_blocked_problem = nullptr;
  std::string first_blocked_why;
  for (const ScannedLayer& layer : r.layers) {
    if (layer.state == LayerState::kUnsupported) {
      ++unsupported;
      continue;
    }
    ++checked;
    if (layer.state == LayerState::kUnknown) ++unknown;
    if (layer.state != LayerState::kBad) continue;
    ++bad;
    const ScannedProblem* fix = layer.fix();
    if (fix == nullptr || !fix->plan) {
      ++blocked;
      if (first_blocked == nullptr) {
        first_blocked = &layer;
        first_blocked_why = fix == nullptr ? std::string() : fix->no_plan;
        for (const ScannedProblem& p : layer.problems) {
          if (p.state == LayerState::kBad && first_blocked_problem == nullptr) {
            first_blocked_problem = &p;
          }
        }
      }
      continue;
    }
    rewrites[fix->plan->root.is_leaf() ? std::string(StepKindName(fix->plan->root))
                                       : fix->plan->root.rewrite]++;
    plan_ms += fix->plan->predicted_ms;
    native_ms += fix->plan->native_ms;
  }
  const std::string of = " of " + std::to_string(checked) + " layer" + (checked == 1 ? "" : "s");
  std::string unchecked;
  if (unsupported > 0) {
    unchecked = "; " + std::to_string(unsupported) + " convolution" +
                (unsupported == 1 ? "" : "s") + " convguard cannot express yet not checked";
  }
  if (blocked > 0) {
    r.outcome = ModelOutcome::kBlocked;
    r.answer = "blocked: " + std::to_string(blocked) + of + (blocked == 1 ? " has" : " have") +
               " no exact plan on this stack (first: '" + first_blocked->conv.name + "' " +
               ToCanonical(first_blocked_problem->problem) + ": " + first_blocked_problem->verdict +
               (first_blocked_why.empty() ? "" : "; ") + first_blocked_why + ")" + unchecked;
    return;
  }
  if (unknown > 0) {
    r.outcome = ModelOutcome::kUnknown;
    r.answer = "unknown: " + std::to_string(unknown) + of + (unknown == 1 ? " has" : " have") +
               " no verdict on this stack yet (probe them: --probe)";
    if (bad > 0) r.answer += "; " + std::to_string(bad) + " known bad, each with an exact plan";
    r.answer += unchecked;
    return;
  }
  if (bad > 0) {
    std::string which;
    for (const auto& [name, count] : rewrites)
      which += (which.empty() ? "" : ", ") + name + " x" + std::to_string(count);
    r.outcome = ModelOutcome::kWorksWithRewrites;
    r.answer = "works with exact rewrites: " + std::to_string(bad) + of + " (" + which +
               "), predicted " + (native_ms > 0 ? Percent(plan_ms / native_ms) : std::string("?")) +
               " time on those layers" + unchecked;
    return;
  }
  r.outcome = ModelOutcome::kWorks;
  r.answer = checked == 0
                 ? "nothing to check: no convolution convguard can express" + unchecked
                 : "works: all " + std::to_string(checked) + " layers run as is" + unchecked;
}

// A log is an application's calls in order: what `convguard replay` found for exactly
// these calls, or for a failing sequence made only of problems this log runs too.
Status AddSequenceVerdicts(const ModelConvs& model, Store& store,
                           const std::set<std::string>& problems, ScanReport& r) {
  CG_ASSIGN_OR_RETURN(std::vector<SequenceVerdict> sequences,
                      store.ListSequenceVerdicts(r.stack.stack_id));
  for (SequenceVerdict& v : sequences) {
    if (v.digest == model.sequence_digest) {
      r.replayed = std::move(v);  // oldest first: the last one is the latest
      continue;
    }
    if (v.kind == VerdictKind::kOk || v.minimal.empty()) continue;
    bool all_here = true;
    for (const std::string& call : v.minimal) {
      all_here = all_here && problems.contains(call.substr(0, call.find(' ')));
    }
    if (all_here) r.related.push_back(std::move(v));
  }
  if (!r.replayed) {
    r.notes.push_back(
        "layers were judged one problem at a time, not in the log's order; 'convguard replay " +
        model.origin +
        "' runs the log's calls in order in one worker (hangs that need the "
        "calls before them)");
  } else if (r.replayed->kind == VerdictKind::kOk) {
    r.notes.push_back("its calls replayed in order in one worker: OK (sequence verdict #" +
                      std::to_string(r.replayed->id) + ", " + r.replayed->recorded_at + ")");
  } else {
    // The application's own sequence failed: whatever its layers do alone, it does not run.
    const SequenceVerdict& v = *r.replayed;
    r.outcome = ModelOutcome::kBlocked;
    r.answer = "blocked: its calls, replayed in order in one worker, gave " +
               std::string(VerdictName(v.kind)) + " at call " + std::to_string(v.failed_at + 1) +
               " of " + std::to_string(v.calls) + " (" + v.failed_problem + "; sequence verdict #" +
               std::to_string(v.id) +
               ": convguard db sequences --long); layer by layer: " + r.answer;
  }
  for (const SequenceVerdict& v : r.related) {
    r.notes.push_back("runs every problem of the minimal failing sequence of sequence verdict #" +
                      std::to_string(v.id) + " (" + std::string(VerdictName(v.kind)) + " after " +
                      std::to_string(v.minimal.size()) + " calls, replayed from " + v.source +
                      "): it may fail the same way; 'convguard replay " + model.origin +
                      "' checks");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<ModelConvs> ReadModel(const std::string& path, const ModelReadOptions& options) {
  if (options.format == ModelFormat::kOnnx) return ReadOnnxModel(path, options.onnx);
  if (options.format == ModelFormat::kMiopenLog) {
    CG_ASSIGN_OR_RETURN(MiopenLog log, ReadMiopenLog(path));
    return ModelConvsFromLog(log);
  }
  if (options.format == ModelFormat::kLayers) return ReadLayersFile(path);
  std::string head(4096, '\0');
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::error_code ec;
      if (!std::filesystem::exists(path, ec))
        return Status::NotFound("model '" + path + "' does not exist");
      return Status::IOError("cannot open model '" + path + "'");
    }
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
  }
  if (LooksLikeOnnx(head)) return ReadOnnxModel(path, options.onnx);
  if (LooksLikeLayers(head)) return ReadLayersFile(path);
  StatusOr<MiopenLog> log = ReadMiopenLog(path);
  if (!log.ok()) {
    if (log.status().code() != StatusCode::kInvalidArgument) return log.status();
    return Status::InvalidArgument(
        "'" + path + "' is neither an ONNX model (it does not start like one), nor a layers " +
        "file (a JSON object with \"convguard_layers\"), nor a MIOpen log: " +
        log.status().message());
  }
  return ModelConvsFromLog(*log);
}

const ScannedProblem* ScannedLayer::fix() const {
  if (state != LayerState::kBad) return nullptr;
  for (const ScannedProblem& p : problems) {
    if (p.plan || !p.no_plan.empty()) return &p;
  }
  return nullptr;
}

std::string_view LayerStateName(LayerState s) {
  switch (s) {
    case LayerState::kOk: return "OK";
    case LayerState::kBad: return "BAD";
    case LayerState::kUnknown: return "UNKNOWN";
    case LayerState::kUnsupported: return "UNSUPPORTED";
  }
  return "?";
}

StatusOr<ScanReport> ScanModel(const ModelConvs& model, const ScanOptions& options, Store& store,
                               ProbeCallbacks callbacks) {
  ScanReport r;
  r.origin = model.origin;
  r.format = model.format;
  r.training = options.training;
  r.notes = model.notes;
  std::string how;
  CG_ASSIGN_OR_RETURN(std::vector<DeviceStack> stacks,
                      IdentifyStacks(options.probe_options, &store, &how));
  if (callbacks.on_event) callbacks.on_event("stack identity: " + how);
  const StackFingerprint& fp = stacks.front().stack;
  r.stack = StackChoice{options.probe_options.backend, fp.Id(), fp.Summary(), /*fallback=*/false};
  r.emulated = fp.is_emulated();
  if (stacks.size() > 1) {
    r.notes.push_back("scanned on the stack of device " + std::to_string(stacks.front().device) +
                      " of " + std::to_string(stacks.size()) + " (choose one with --devices)");
  }

  // Distinct problems, in first-seen order.
  std::vector<Problem> distinct;
  std::set<std::string> seen;
  for (const ModelConv& conv : model.convs) {
    if (!conv.problem) continue;
    for (const Problem& p : LayerProblems(*conv.problem, options.training)) {
      if (seen.insert(ToCanonical(p)).second) distinct.push_back(p);
    }
  }
  r.distinct_problems = static_cast<int64_t>(distinct.size());
  const auto verdicts_of = [&](const Problem& p) {
    VerdictFilter f;
    f.stack_id = r.stack.stack_id;
    f.problem = ToCanonical(p);
    return store.ListVerdicts(f);
  };

  if (options.probe) {
    std::vector<ProbeJob> unknown;
    for (const Problem& p : distinct) {
      CG_ASSIGN_OR_RETURN(std::vector<Verdict> known, verdicts_of(p));
      if (known.empty()) unknown.push_back(ProbeJob{p, ""});
    }
    if (!unknown.empty()) {
      ProbeOptions probe = options.probe_options;
      probe.devices = {};
      if (stacks.front().device >= 0) probe.devices = {stacks.front().device};
      CG_ASSIGN_OR_RETURN(std::unique_ptr<ProbeEngine> engine,
                          ProbeEngine::Start(probe, &store, callbacks));
      CG_ASSIGN_OR_RETURN(ProbeRunResult ran, engine->Run(unknown));
      r.probed += static_cast<int64_t>(ran.verdicts.size());
      if (ran.interrupted) return Status::Internal("interrupted while probing the model's layers");
    }
  }

  PlannerOptions planner = options.planner;
  planner.allow_algorithm_choice = false;
  planner.probe_missing = options.probe;
  Prober prober;
  if (options.probe) prober = MakeEngineProber(options.probe_options, &store, callbacks);
  // Plans per problem, once each: (plan, why none).
  std::map<std::string, std::pair<std::optional<Plan>, std::string>> plans;
  const auto plan_of = [&](const Problem& p, bool backward_too) -> Status {
    const std::string key = ToCanonical(p) + (backward_too ? " training" : "");
    if (plans.count(key) != 0) return Status::Ok();
    PlannerOptions o = planner;
    o.backward_too = backward_too;
    CG_ASSIGN_OR_RETURN(PlanReport plan, MakePlan(p, {r.stack}, store, o, prober));
    r.probed += plan.probes_run;
    std::string why;
    if (!plan.chosen) {
      why = backward_too ? "no exact plan whose leaves are OK in all three directions"
                         : "no exact plan";
      if (!plan.suggestions.empty()) why += "; a person could " + plan.suggestions.front();
    }
    plans[key] = {std::move(plan.chosen), std::move(why)};
    return Status::Ok();
  };
  std::map<std::string, ScannedProblem> judged;
  for (const Problem& p : distinct) {
    ScannedProblem s;
    s.problem = p;
    CG_ASSIGN_OR_RETURN(std::vector<Verdict> verdicts, verdicts_of(p));
    Judge(verdicts, s);
    judged[ToCanonical(p)] = std::move(s);
  }

  CG_RETURN_IF_ERROR(PredictUnknown(store, r, judged));

  for (const ModelConv& conv : model.convs) {
    ScannedLayer layer;
    layer.conv = conv;
    if (conv.problem) {
      layer.state = LayerState::kOk;
      for (const Problem& p : LayerProblems(*conv.problem, options.training)) {
        layer.problems.push_back(judged.at(ToCanonical(p)));
        layer.state = Worst(layer.state, layer.problems.back().state);
      }
    }
    if (layer.state == LayerState::kBad) {
      // With training, a forward layer is fixed through its forward problem; otherwise
      // (and for a log's backward command) each bad problem is planned as itself.
      const bool through_forward = layer.problems.size() > 1;
      for (ScannedProblem& s : layer.problems) {
        const bool plan_here = through_forward ? s.problem.direction == Direction::kForward
                                               : s.state == LayerState::kBad;
        if (!plan_here) {
          s.by_forward_plan = through_forward && s.state == LayerState::kBad;
          continue;
        }
        CG_RETURN_IF_ERROR(plan_of(s.problem, through_forward));
        const auto& [plan, why] =
            plans.at(ToCanonical(s.problem) + (through_forward ? " training" : ""));
        s.plan = plan;
        s.no_plan = why;
      }
    }
    r.layers.push_back(std::move(layer));
  }
  Conclude(r);
  if (!model.sequence_digest.empty())
    CG_RETURN_IF_ERROR(AddSequenceVerdicts(model, store, seen, r));
  return r;
}

}  // namespace convguard
