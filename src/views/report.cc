// The store as a report (convguard/report.h): gathering, and the text, Markdown, JSON and
// CSV forms. The HTML page is in report_html.cc.
#include "convguard/report.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "convguard/plan.h"
#include "convguard/text_forms.h"
#include "core/json_records.h"
#include "views/report_labels.h"

namespace convguard {
using report_labels::RestOf;
using report_labels::SizeOf;

namespace {

bool Misbehaves(VerdictKind k) { return k != VerdictKind::kOk && k != VerdictKind::kUnsupported; }

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

// The problems a model layer runs: its forward problem, and with training the backward ones.
std::vector<Problem> LayerProblems(const Problem& forward, bool training) {
  std::vector<Problem> out = {forward};
  if (training && forward.direction == Direction::kForward)
    for (Direction d : {Direction::kBackwardData, Direction::kBackwardWeights}) {
      Problem p = forward;
      p.direction = d;
      out.push_back(p);
    }
  return out;
}

std::string KindsText(const std::vector<VerdictKind>& kinds) {
  std::string out;
  for (VerdictKind k : kinds) out += (out.empty() ? "" : ",") + std::string(VerdictName(k));
  return out;
}

// What the store holds, for messages that say why nothing matched.
std::string Holdings(const std::vector<StackFingerprint>& stacks,
                     const std::map<std::string, std::vector<Verdict>>& by_stack) {
  std::string out;
  for (const StackFingerprint& s : stacks) {
    auto it = by_stack.find(s.Id());
    const size_t n = it == by_stack.end() ? 0 : it->second.size();
    std::map<int, std::pair<std::string, int64_t>> kinds;
    if (it != by_stack.end())
      for (const Verdict& v : it->second) {
        auto& slot = kinds[VerdictSeverity(v.kind)];
        slot.first = std::string(VerdictName(v.kind));
        ++slot.second;
      }
    std::string counts;
    for (const auto& [severity, named] : kinds)
      counts += (counts.empty() ? "" : " ") + named.first + " " + std::to_string(named.second);
    out += "\n  stack " + s.Id() + " (backend " + s.backend + "): " + std::to_string(n) +
           " verdict" + (n == 1 ? "" : "s") + (counts.empty() ? "" : " (" + counts + ")");
  }
  return out;
}

// Groups problems of one kind class by (c, k, rest): the seed report's table rows.
std::vector<SizeGroup> GroupBySize(
    const std::map<std::string, std::vector<const Verdict*>>& problems, bool failing) {
  struct Key {
    int64_t c, k;
    std::string rest, kind;
    auto operator<=>(const Key&) const = default;
  };
  struct Entry {
    std::vector<std::pair<Problem, std::string>> sizes;  // problem, "HxW" (or canonical)
    double min_ms = 0, max_ms = 0;
    bool timed = false;
  };
  std::map<Key, Entry> groups;
  for (const auto& [canonical, verdicts] : problems) {
    VerdictKind worst = verdicts.front()->kind;
    double best_ok = -1;
    bool all_ok = true;
    for (const Verdict* v : verdicts) {
      if (VerdictSeverity(v->kind) < VerdictSeverity(worst)) worst = v->kind;
      all_ok = all_ok && v->kind == VerdictKind::kOk;
      if (v->kind == VerdictKind::kOk && v->time_ms_median > 0)
        best_ok = best_ok < 0 ? v->time_ms_median : std::min(best_ok, v->time_ms_median);
    }
    if (failing ? !Misbehaves(worst) : !all_ok) continue;
    StatusOr<Problem> p = ParseProblem(canonical, TextForm::kCanonical);
    Key key{0, 0, canonical, std::string(VerdictName(worst))};
    if (p.ok()) key = Key{p->c, p->k, RestOf(*p), std::string(VerdictName(worst))};
    Entry& e = groups[key];
    e.sizes.emplace_back(p.ok() ? *p : Problem{}, p.ok() ? SizeOf(*p) : canonical);
    if (best_ok > 0) {
      e.min_ms = e.timed ? std::min(e.min_ms, best_ok) : best_ok;
      e.max_ms = e.timed ? std::max(e.max_ms, best_ok) : best_ok;
      e.timed = true;
    }
  }
  std::vector<SizeGroup> out;
  for (auto& [key, e] : groups) {
    std::stable_sort(e.sizes.begin(), e.sizes.end(), [](const auto& a, const auto& b) {
      const int64_t aa = a.first.h * a.first.w, bb = b.first.h * b.first.w;
      return aa != bb ? aa < bb : a.first.h < b.first.h;
    });
    SizeGroup g;
    g.c = key.c;
    g.k = key.k;
    g.rest = key.rest;
    g.kind = key.kind;
    for (const auto& [p, size] : e.sizes) g.sizes.push_back(size);
    g.time_ms_min = e.min_ms;
    g.time_ms_max = e.max_ms;
    out.push_back(std::move(g));
  }
  return out;
}

// "48x48, 64x64"; four or more square sizes in even steps read as a range:
// "4x4..28x28 every 2 (13 sizes)".
std::string SizesText(const std::vector<std::string>& sizes) {
  std::vector<int64_t> sides;
  for (const std::string& s : sizes) {
    const size_t x = s.find('x');
    if (x == std::string::npos || s.substr(0, x) != s.substr(x + 1)) break;
    int64_t side = 0;
    if (std::from_chars(s.data(), s.data() + x, side).ec != std::errc()) break;
    sides.push_back(side);
  }
  if (sides.size() == sizes.size() && sides.size() >= 4) {
    const int64_t step = sides[1] - sides[0];
    bool even = step > 0;
    for (size_t i = 2; i < sides.size() && even; ++i) even = sides[i] - sides[i - 1] == step;
    if (even)
      return sizes.front() + ".." + sizes.back() + " every " + std::to_string(step) + " (" +
             std::to_string(sizes.size()) + " sizes)";
  }
  std::string out;
  for (const std::string& s : sizes) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string TimeRange(const SizeGroup& g) {
  if (g.time_ms_max <= 0) return "-";
  if (Fixed(g.time_ms_min, 3) == Fixed(g.time_ms_max, 3)) return Fixed(g.time_ms_min, 3) + " ms";
  return Fixed(g.time_ms_min, 3) + "-" + Fixed(g.time_ms_max, 3) + " ms";
}

// A model's layers against the stack's verdicts (`own`, by problem). An UNKNOWN layer
// gets a PREDICTED verdict when every problem it lacks is within what the pattern learned
// from: the most severe prediction, with the lowest confidence among them.
// Plans a misbehaving layer's forward problem from stored verdicts only (nothing is
// probed), as a model scan does; memoised per problem. "" when there is no plan.
class StoredPlans {
 public:
  StoredPlans(Store& store, const StackFingerprint& stack, bool training)
      : store_(store), stack_(stack), training_(training) {}
  std::string Of(const Problem& p) {
    const std::string key = ToCanonical(p);
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    PlannerOptions options;
    options.allow_algorithm_choice = false;
    options.backward_too = training_;
    StatusOr<PlanReport> r = MakePlan(
        p, {StackChoice{stack_.backend, stack_.Id(), stack_.Summary(), false}}, store_, options);
    std::string text;
    if (r.ok() && r->chosen) {
      const PlanStep& root = r->chosen->root;
      text =
          root.is_leaf() ? std::string(StepKindName(root)) : root.rewrite + " " + root.parameters;
    }
    return memo_[key] = text;
  }

 private:
  Store& store_;
  const StackFingerprint& stack_;
  bool training_;
  std::map<std::string, std::string> memo_;
};

ReportModel JudgeModel(const ModelConvs& model, bool training,
                       const std::map<std::string, std::vector<const Verdict*>>& own,
                       const std::optional<Pattern>& problem_pattern, const LearnedScope& scope,
                       StoredPlans& plans) {
  ReportModel m;
  m.origin = model.origin;
  m.format = model.format;
  std::map<std::string, int64_t> by_state;
  bool bad = false, unknown = false, supported = false, blocked = false;
  std::map<std::string, int64_t> rewrites;  // rewrite name -> layers
  for (const ModelConv& conv : model.convs) {
    ReportLayer layer;
    layer.name = conv.name;
    layer.calls = conv.calls;
    if (!conv.problem) {
      layer.state = "UNSUPPORTED";
      layer.detail = conv.unsupported;
    } else {
      supported = true;
      layer.problem = ToCanonical(*conv.problem);
      const Verdict* worst = nullptr;
      std::vector<Problem> missing;
      for (const Problem& p : LayerProblems(*conv.problem, training)) {
        auto it = own.find(ToCanonical(p));
        if (it == own.end()) {
          missing.push_back(p);
          continue;
        }
        for (const Verdict* v : it->second)
          if (!worst || VerdictSeverity(v->kind) < VerdictSeverity(worst->kind)) worst = v;
      }
      if (worst && Misbehaves(worst->kind)) {
        layer.state = std::string(VerdictName(worst->kind));
        layer.detail = FirstLine(worst->message);
        layer.plan = plans.Of(*conv.problem);
        bad = true;
        blocked = blocked || layer.plan.empty();
        if (!layer.plan.empty()) ++rewrites[layer.plan.substr(0, layer.plan.find(' '))];
      } else if (!missing.empty() || !worst) {
        layer.state = "UNKNOWN";
        unknown = true;
        bool predictable = problem_pattern.has_value();
        for (const Problem& p : missing) predictable = predictable && scope.Covers(p);
        if (problem_pattern && !predictable)
          layer.detail =
              "no prediction: the direction, data type or layout of a problem it "
              "lacks is beyond what the stack's pattern learned from";
        for (const Problem& p : predictable ? missing : std::vector<Problem>{}) {
          StatusOr<Prediction> pr = Predict(*problem_pattern, p);
          if (!pr.ok()) {
            layer.predicted.clear();
            break;
          }
          const std::string name(VerdictName(pr->kind));
          if (layer.predicted.empty() ||
              VerdictSeverity(pr->kind) < VerdictSeverity(*ParseVerdictName(layer.predicted)))
            layer.predicted = name;
          layer.predicted_confidence = layer.predicted_confidence == 0.0
                                           ? pr->confidence
                                           : std::min(layer.predicted_confidence, pr->confidence);
        }
      } else {
        layer.state = std::string(VerdictName(worst->kind));  // OK or UNSUPPORTED
        if (worst->kind == VerdictKind::kUnsupported) layer.detail = FirstLine(worst->message);
      }
    }
    ++by_state[layer.state];
    m.layers.push_back(std::move(layer));
  }
  if (blocked) {
    m.status = "blocked";
  } else if (bad) {
    m.status =
        unknown ? "unknown (its bad layers have exact rewrites)" : "works with exact rewrites";
  } else {
    m.status = unknown ? "unknown" : supported ? "works" : "unsupported";
  }
  if (!bad && !unknown && supported)
    for (const auto& [state, n] : by_state)
      if (state == "UNSUPPORTED") m.status = "works (" + std::to_string(n) + " unsupported)";
  m.notes = std::to_string(m.layers.size()) + " layer" + (m.layers.size() == 1 ? "" : "s") + ":";
  std::vector<std::pair<std::string, int64_t>> ordered(by_state.begin(), by_state.end());
  for (const auto& [state, n] : ordered) m.notes += " " + std::to_string(n) + " " + state + ",";
  if (!m.notes.empty() && m.notes.back() == ',') m.notes.pop_back();
  if (!rewrites.empty()) {
    m.notes += "; rewrites:";
    for (const auto& [name, n] : rewrites) m.notes += " " + std::to_string(n) + " x " + name + ",";
    m.notes.pop_back();
  }
  return m;
}

std::string StackLine(const StackFingerprint& s) { return "stack " + s.Id() + ": " + s.Summary(); }

std::string RuleLine(const LearnedRule& r) { return r.fault + " when " + r.predicate; }

std::string RuleCounts(const LearnedRule& r) {
  return "covers " + std::to_string(r.train_covered) + ", wrong " + std::to_string(r.train_wrong) +
         "; held out: covers " + std::to_string(r.held_out_covered) + ", wrong " +
         std::to_string(r.held_out_wrong);
}

std::string PatternErrors(const Pattern& p) {
  return "errors: training " + std::to_string(p.train_errors) + " of " +
         std::to_string(p.train_verdicts) + ", held out " + std::to_string(p.held_out_errors) +
         " of " + std::to_string(p.held_out_verdicts);
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

namespace report_labels {

std::string RestOf(const Problem& p) {
  std::string out =
      "n" + std::to_string(p.n) + " " + std::to_string(p.r) + "x" + std::to_string(p.s);
  if (p.pad_top == p.pad_left && p.pad_top == p.pad_bottom && p.pad_top == p.pad_right) {
    out += " pad " + std::to_string(p.pad_top);
  } else {
    out += " pad " + std::to_string(p.pad_top) + "," + std::to_string(p.pad_left) + "," +
           std::to_string(p.pad_bottom) + "," + std::to_string(p.pad_right);
  }
  if (p.stride_h != 1 || p.stride_w != 1)
    out += " stride " + std::to_string(p.stride_h) +
           (p.stride_w == p.stride_h ? "" : "x" + std::to_string(p.stride_w));
  if (p.dilation_h != 1 || p.dilation_w != 1)
    out += " dilation " + std::to_string(p.dilation_h) +
           (p.dilation_w == p.dilation_h ? "" : "x" + std::to_string(p.dilation_w));
  if (p.groups != 1) out += " groups " + std::to_string(p.groups);
  if (p.bias) out += " bias";
  if (p.dtype != DataType::kF32) out += " " + std::string(DataTypeName(p.dtype));
  if (p.layout != Layout::kNCHW) out += " " + std::string(LayoutName(p.layout));
  out += " " + std::string(DirectionName(p.direction));
  return out;
}

std::string SizeOf(const Problem& p) { return std::to_string(p.h) + "x" + std::to_string(p.w); }

}  // namespace report_labels

StatusOr<Report> BuildReport(Store& store, const ReportOptions& options) {
  CG_ASSIGN_OR_RETURN(std::vector<StackFingerprint> stacks, store.ListStacks());
  CG_ASSIGN_OR_RETURN(std::vector<Verdict> all, store.ListVerdicts(VerdictFilter{}));
  std::map<std::string, std::vector<Verdict>> by_stack;
  for (Verdict& v : all) by_stack[v.stack_id].push_back(std::move(v));
  if (by_stack.empty())
    return Status::InvalidArgument("the store " + options.store_label +
                                   " holds no verdict yet: probe, sweep or scan --probe first");

  Report report;
  report.store_label = options.store_label;
  report.tool_version = CONVGUARD_VERSION;
  std::vector<std::string> filters;
  if (options.stack_id) filters.push_back("stack=" + *options.stack_id);
  if (options.backend) filters.push_back("backend=" + *options.backend);
  if (!options.kinds.empty()) filters.push_back("verdict=" + KindsText(options.kinds));
  for (const ModelConvs& m : options.models) filters.push_back("model=" + m.origin);
  if (options.training && !options.models.empty()) filters.push_back("training");
  for (const std::string& f : filters) report.filters += (report.filters.empty() ? "" : ", ") + f;
  if (report.filters.empty()) report.filters = "none";

  std::vector<const StackFingerprint*> chosen;
  for (const StackFingerprint& s : stacks) {
    if (options.stack_id && s.Id() != *options.stack_id) continue;
    if (options.backend && s.backend != *options.backend) continue;
    chosen.push_back(&s);
  }
  if (chosen.empty()) {
    std::string what = options.stack_id ? "stack " + *options.stack_id : "";
    if (options.backend) what += (what.empty() ? "" : " of ") + ("backend " + *options.backend);
    return Status::InvalidArgument("no " + what + " in the store " + options.store_label +
                                   "; it holds:" + Holdings(stacks, by_stack));
  }

  // The models' problems (every direction a model may run), when models restrict.
  std::set<std::string> model_problems;
  for (const ModelConvs& m : options.models)
    for (const ModelConv& conv : m.convs)
      if (conv.problem)
        for (const Problem& p : LayerProblems(*conv.problem, options.training))
          model_problems.insert(ToCanonical(p));

  std::vector<StackVerdicts> everything;
  for (const StackFingerprint& s : stacks) {
    auto it = by_stack.find(s.Id());
    everything.push_back({s, it == by_stack.end() ? std::vector<Verdict>{} : it->second});
  }

  for (const StackFingerprint* s : chosen) {
    auto it = by_stack.find(s->Id());
    if (it == by_stack.end()) {
      report.notes.push_back("stack " + s->Id() + " has no verdict yet");
      continue;
    }
    const std::vector<Verdict>& own = it->second;
    StackReport sr;
    sr.stack = *s;
    sr.stack_verdicts = static_cast<int64_t>(own.size());
    for (const Verdict& v : own) {
      if (!options.kinds.empty() &&
          std::find(options.kinds.begin(), options.kinds.end(), v.kind) == options.kinds.end())
        continue;
      if (!options.models.empty() && !model_problems.count(v.problem)) continue;
      sr.verdicts.push_back(v);
    }
    if (sr.verdicts.empty() && options.models.empty()) {
      report.notes.push_back("stack " + s->Id() + ": none of its " + std::to_string(own.size()) +
                             " verdicts matches the filters");
      continue;
    }
    std::stable_sort(
        sr.verdicts.begin(), sr.verdicts.end(), [](const Verdict& a, const Verdict& b) {
          return a.problem != b.problem ? a.problem < b.problem : a.algorithm < b.algorithm;
        });
    std::map<int, std::pair<std::string, int64_t>> counts;
    std::map<std::string, std::vector<const Verdict*>> problems;
    for (const Verdict& v : sr.verdicts) {
      auto& slot = counts[VerdictSeverity(v.kind)];
      slot.first = std::string(VerdictName(v.kind));
      ++slot.second;
      problems[v.problem].push_back(&v);
    }
    for (const auto& [severity, named] : counts) sr.counts.push_back(named);
    sr.problems = static_cast<int64_t>(problems.size());
    sr.failing = GroupBySize(problems, true);
    sr.working = GroupBySize(problems, false);

    StatusOr<Pattern> pattern = LearnPattern(own, options.pattern);
    if (pattern.ok()) {
      sr.pattern = std::move(*pattern);
    } else {
      sr.no_pattern = pattern.status().message();
    }
    if (!options.models.empty()) {
      std::map<std::string, std::vector<const Verdict*>> own_by_problem;
      for (const Verdict& v : own) own_by_problem[v.problem].push_back(&v);
      std::optional<Pattern> problem_pattern;
      if (StatusOr<Pattern> pp = LearnProblemPattern(own, options.pattern); pp.ok())
        problem_pattern = std::move(*pp);
      const LearnedScope scope(own);
      StoredPlans plans(store, *s, options.training);
      for (const ModelConvs& m : options.models)
        sr.models.push_back(
            JudgeModel(m, options.training, own_by_problem, problem_pattern, scope, plans));
    }
    std::vector<StackVerdicts> others;
    for (const StackVerdicts& sv : everything)
      if (sv.stack.Id() != s->Id()) others.push_back(sv);
    sr.recommendations = Recommend(StackVerdicts{*s, own}, others);
    report.stacks.push_back(std::move(sr));
  }
  if (report.stacks.empty())
    return Status::InvalidArgument("no verdict in the store " + options.store_label +
                                   " matches the filters (" + report.filters +
                                   "); it holds:" + Holdings(stacks, by_stack));
  return report;
}

// ---- text ----

std::string ReportToText(const Report& report) {
  constexpr size_t kRows = 20;
  std::ostringstream out;
  out << "convguard report of " << report.store_label << " (filters: " << report.filters << ")\n";
  for (const StackReport& s : report.stacks) {
    out << "\n" << StackLine(s.stack) << "\n";
    out << "  " << s.verdicts.size() << " verdict" << (s.verdicts.size() == 1 ? "" : "s") << " of "
        << s.problems << " problem" << (s.problems == 1 ? "" : "s");
    if (static_cast<int64_t>(s.verdicts.size()) != s.stack_verdicts)
      out << " (the stack has " << s.stack_verdicts << ")";
    out << ":";
    for (const auto& [kind, n] : s.counts) out << " " << kind << " " << n;
    out << "\n";
    for (const auto* part : {&s.failing, &s.working}) {
      if (part->empty()) continue;
      out << (part == &s.failing ? "  fails (c -> k, the rest, input sizes):\n"
                                 : "  works (c -> k, the rest, input sizes, best median time):\n");
      for (size_t i = 0; i < part->size() && i < kRows; ++i) {
        const SizeGroup& g = (*part)[i];
        char head[64];
        std::snprintf(head, sizeof head, "    %4lld -> %-4lld ", static_cast<long long>(g.c),
                      static_cast<long long>(g.k));
        out << head << g.rest << "  " << g.kind << "  " << SizesText(g.sizes);
        if (part == &s.working) out << "  (" << TimeRange(g) << ")";
        out << "\n";
      }
      if (part->size() > kRows)
        out << "    ... " << part->size() - kRows << " more (--format markdown lists every one)\n";
    }
    if (s.pattern) {
      out << "  pattern, learned from " << s.pattern->train_verdicts << " verdicts ("
          << s.pattern->held_out_verdicts << " held out); " << PatternErrors(*s.pattern) << ":\n";
      if (s.pattern->rules.empty()) out << "    no rule: every verdict is predicted OK\n";
      for (const LearnedRule& r : s.pattern->rules)
        out << "    " << RuleLine(r) << "   # " << RuleCounts(r) << "\n";
    } else {
      out << "  pattern: none (" << s.no_pattern << ")\n";
    }
    if (!s.models.empty()) {
      out << "  models:\n";
      for (const ReportModel& m : s.models) {
        out << "    " << m.origin << "  " << m.status << "  (" << m.notes << ")\n";
        for (const ReportLayer& l : m.layers)
          if (l.state != "OK")
            out << "      " << l.name << "  " << l.state
                << (l.predicted.empty() ? ""
                                        : " (PREDICTED " + l.predicted + ", confidence " +
                                              Fixed(l.predicted_confidence, 2) + ")")
                << (l.problem.empty() ? "" : "  " + l.problem)
                << (l.plan.empty() ? "" : "  -> " + l.plan) << "\n";
      }
    }
    out << "  recommendation:\n";
    for (const Recommendation& r : s.recommendations) {
      out << "    " << r.headline << "\n";
      for (const std::string& why : r.reasons) out << "      - " << why << "\n";
    }
  }
  for (const std::string& n : report.notes) out << "note: " << n << "\n";
  return out.str();
}

// ---- Markdown: the seed report's sections ----

std::string ReportToMarkdown(const Report& report) {
  std::ostringstream out;
  for (const StackReport& s : report.stacks) {
    out << "# " << s.stack.Summary() << "\n\n";
    out << "**Stack** `" << s.stack.Id() << "`: backend " << s.stack.backend << ", device "
        << s.stack.device << ", library " << (s.stack.library.empty() ? "-" : s.stack.library)
        << ", driver " << (s.stack.driver.empty() ? "-" : s.stack.driver) << ", runtime "
        << (s.stack.runtime.empty() ? "-" : s.stack.runtime) << ".  \n";
    if (!s.stack.knobs.empty()) {
      out << "**Knobs**:";
      for (const auto& [k, v] : s.stack.knobs) out << " `" << k << "=" << v << "`";
      out << ".  \n";
    }
    if (s.stack.is_emulated()) out << "**EMULATION**: " << s.stack.emulation << ".  \n";
    out << "**Store**: " << report.store_label << "; filters: " << report.filters << "; convguard "
        << report.tool_version << ".\n\n";

    out << "## Problem\n\n" << s.verdicts.size() << " verdicts of " << s.problems << " problems:";
    for (size_t i = 0; i < s.counts.size(); ++i)
      out << (i ? ", " : " ") << s.counts[i].second << " " << s.counts[i].first;
    out << ".\n\n";

    bool only_hangs = !s.failing.empty();
    for (const SizeGroup& g : s.failing) only_hangs = only_hangs && g.kind == "HANG";
    out << (only_hangs ? "### Configurations That Hang\n\n" : "### Configurations That Fail\n\n");
    if (s.failing.empty()) {
      out << "None: no problem misbehaves among these verdicts.\n\n";
    } else {
      out << "| Input Channels | Output Channels | Input Sizes | The Rest | Status |\n"
          << "|---|---|---|---|---|\n";
      for (const SizeGroup& g : s.failing)
        out << "| " << g.c << " | " << g.k << " | " << SizesText(g.sizes) << " | " << g.rest
            << " | " << g.kind << " |\n";
      out << "\n";
    }
    out << "## Known Working Configurations\n\n";
    if (s.working.empty()) {
      out << "None among these verdicts: no problem is OK with every algorithm it ran.\n\n";
    } else {
      out << "| Input Channels | Output Channels | Input Sizes | The Rest | Median Time |\n"
          << "|---|---|---|---|---|\n";
      for (const SizeGroup& g : s.working)
        out << "| " << g.c << " | " << g.k << " | " << SizesText(g.sizes) << " | " << g.rest
            << " | " << TimeRange(g) << " |\n";
      out << "\n";
    }
    out << "## Models That Work\n\n";
    if (s.models.empty()) {
      out << "No model given (`convguard report --model FILE`: ONNX, MIOpen log or layers "
             "file).\n\n";
    } else {
      out << "| Model | Status | Notes |\n|---|---|---|\n";
      for (const ReportModel& m : s.models)
        out << "| " << m.origin << " | " << m.status << " | " << m.notes << " |\n";
      out << "\n";
    }
    out << "## Pattern\n\n";
    if (s.pattern) {
      out << "Learned from " << s.pattern->train_verdicts << " verdicts, "
          << s.pattern->held_out_verdicts << " more held out; " << PatternErrors(*s.pattern)
          << ". In the fault-rules language (`--inject` reproduces it on the reference "
             "backend):\n\n```\n"
          << s.pattern->RulesText() << "```\n\n";
    } else {
      out << "None: " << s.no_pattern << ".\n\n";
    }
    out << "## Recommendation\n\n";
    for (const Recommendation& r : s.recommendations) {
      out << "- " << r.headline << "\n";
      for (const std::string& why : r.reasons) out << "  - " << why << "\n";
    }
    out << "\n";
  }
  for (const std::string& n : report.notes) out << "_Note: " << n << "_\n\n";
  return out.str();
}

// ---- JSON ----

std::string ReportToJson(const Report& report) {
  using nlohmann::json;
  json j;
  j["store"] = report.store_label;
  j["filters"] = report.filters;
  j["tool_version"] = report.tool_version;
  j["notes"] = report.notes;
  j["stacks"] = json::array();
  for (const StackReport& s : report.stacks) {
    json js;
    js["stack_id"] = s.stack.Id();
    js["stack"] = ToJson(s.stack);
    js["stack_verdicts"] = s.stack_verdicts;
    js["problems"] = s.problems;
    js["counts"] = json::object();
    for (const auto& [kind, n] : s.counts) js["counts"][kind] = n;
    js["verdicts"] = json::array();
    for (const Verdict& v : s.verdicts) js["verdicts"].push_back(ToJson(v));
    for (const auto* part : {&s.failing, &s.working}) {
      json groups = json::array();
      for (const SizeGroup& g : *part)
        groups.push_back({{"c", g.c},
                          {"k", g.k},
                          {"rest", g.rest},
                          {"kind", g.kind},
                          {"sizes", g.sizes},
                          {"time_ms_min", g.time_ms_min},
                          {"time_ms_max", g.time_ms_max}});
      js[part == &s.failing ? "failing" : "working"] = groups;
    }
    js["pattern"] = s.pattern ? json::parse(s.pattern->ToJson()) : json(nullptr);
    js["no_pattern"] = s.no_pattern;
    js["models"] = json::array();
    for (const ReportModel& m : s.models) {
      json jm = {{"origin", m.origin},
                 {"format", m.format},
                 {"status", m.status},
                 {"notes", m.notes},
                 {"layers", json::array()}};
      for (const ReportLayer& l : m.layers) {
        json jl = {{"name", l.name}, {"problem", l.problem}, {"state", l.state},
                   {"plan", l.plan}, {"detail", l.detail},   {"calls", l.calls}};
        if (!l.predicted.empty()) {
          jl["predicted"] = l.predicted;
          jl["predicted_confidence"] = l.predicted_confidence;
        }
        jm["layers"].push_back(jl);
      }
      js["models"].push_back(jm);
    }
    js["recommendations"] = json::array();
    for (const Recommendation& r : s.recommendations) {
      json jr = {{"kind", std::string(RecommendationKindName(r.kind))},
                 {"headline", r.headline},
                 {"failing_problems", r.failing_problems},
                 {"fixed_problems", r.fixed_problems},
                 {"reasons", r.reasons}};
      if (!r.algorithm.empty()) jr["algorithm"] = r.algorithm;
      if (!r.variant_stack_id.empty()) {
        jr["variant_stack_id"] = r.variant_stack_id;
        jr["knobs"] = r.knobs;
      }
      if (r.cost.problems > 0)
        jr["cost"] = {{"problems", r.cost.problems},
                      {"geomean_ratio", r.cost.geomean_ratio},
                      {"worst_ratio", r.cost.worst_ratio},
                      {"worst_problem", r.cost.worst_problem}};
      js["recommendations"].push_back(jr);
    }
    j["stacks"].push_back(js);
  }
  return j.dump(1, ' ', false, json::error_handler_t::replace);
}

// ---- CSV: one row per verdict ----

std::string ReportToCsv(const Report& report) {
  std::ostringstream out;
  out << "stack_id,backend,device,library,emulated,problem,n,c,h,w,k,r,s,pad_top,pad_left,"
         "pad_bottom,pad_right,stride_h,stride_w,dilation_h,dilation_w,groups,dtype,layout,"
         "direction,algorithm,verdict,time_ms_min,time_ms_median,attempts,deadline_ms,"
         "elapsed_ms,check,tolerance,crash_signal,exit_code,message,implementation,recorded_at,"
         "tool_version,repro\r\n";
  for (const StackReport& s : report.stacks)
    for (const Verdict& v : s.verdicts) {
      std::vector<std::string> f = {s.stack.Id(),
                                    s.stack.backend,
                                    s.stack.device,
                                    s.stack.library,
                                    s.stack.is_emulated() ? "1" : "0",
                                    v.problem};
      StatusOr<Problem> p = ParseProblem(v.problem, TextForm::kCanonical);
      if (p.ok()) {
        for (int64_t x :
             {p->n, p->c, p->h, p->w, p->k, p->r, p->s, p->pad_top, p->pad_left, p->pad_bottom,
              p->pad_right, p->stride_h, p->stride_w, p->dilation_h, p->dilation_w, p->groups})
          f.push_back(std::to_string(x));
        f.push_back(std::string(DataTypeName(p->dtype)));
        f.push_back(std::string(LayoutName(p->layout)));
        f.push_back(std::string(DirectionName(p->direction)));
      } else {
        f.insert(f.end(), 19, "");
      }
      char num[64];
      const auto number = [&](double x) {
        std::snprintf(num, sizeof num, "%.6g", x);
        return std::string(num);
      };
      f.insert(f.end(), {v.algorithm, std::string(VerdictName(v.kind)), number(v.time_ms_min),
                         number(v.time_ms_median), std::to_string(v.attempts),
                         number(v.deadline_ms), number(v.elapsed_ms), v.check, number(v.tolerance),
                         std::to_string(v.crash_signal), std::to_string(v.exit_code), v.message,
                         v.implementation, v.recorded_at, v.tool_version, v.repro});
      for (size_t i = 0; i < f.size(); ++i) out << (i ? "," : "") << CsvField(f[i]);
      out << "\r\n";
    }
  return out.str();
}

}  // namespace convguard
