// insight/pattern.cc — LearnPattern: a shallow decision tree over a stack's verdicts,
// printed as fault rules (convguard/pattern.h).
//
// The tree is CART with Gini impurity. A split is one condition of the fault-rules
// language on one feature: `f >= t` for a number (t one of the values seen), a boolean
// feature (`pow2(c)`, `c % 8 == 0`) or `name == value` for a category (direction, dtype,
// layout, algo). Each leaf's majority kind is its answer; misbehaving leaves become rules,
// their path's conditions joined with && (bounds on one feature merged). The counts are
// then measured by parsing the printed text (see the header's "Honesty").
#include "convguard/pattern.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "backends/inject/fault_rules.h"
#include "convguard/problem.h"
#include "convguard/text_forms.h"
#include "core/hash.h"

namespace convguard {
namespace {

constexpr int kKinds = 9;  // VerdictKind values

int KindIndex(VerdictKind k) { return static_cast<int>(k); }

// The fault that makes the probe engine record `kind`, as a rules file writes it; empty
// when no fault does.
std::string FaultFor(VerdictKind kind, double slow_ms) {
  switch (kind) {
    case VerdictKind::kHang: return "spin";
    case VerdictKind::kCrash: return "segv";
    case VerdictKind::kWrong: return "wrong(0.5)";
    case VerdictKind::kError: return "error(\"learned: the stack reports an error here\")";
    case VerdictKind::kUnsupported:
      return "unsupported(\"learned: the stack does not support this\")";
    case VerdictKind::kSlow:
      return "slow(" + std::to_string(std::max<int64_t>(1000, std::llround(slow_ms))) + ")";
    default: return "";
  }
}

struct Sample {
  Problem problem;
  std::string algorithm;
  VerdictKind kind = VerdictKind::kOk;
  double elapsed_ms = 0.0;
  bool held_out = false;
  std::vector<int64_t> values;  // one per feature
};

enum class FeatureType { kNumber, kBoolean, kCategory };

struct Feature {
  std::string name;  // the expression: "c", "h * w", "pow2(c)", "c % 8 == 0", "direction"
  FeatureType type = FeatureType::kNumber;
  std::function<int64_t(const Problem&)> value;  // numbers and booleans
  // Categories: the value's text as the rules language writes it, and its index.
  std::function<std::string(const Problem&, const std::string& algorithm)> category;
  std::vector<std::string> categories;  // index -> text, filled from the samples
};

// The rules language spells directions with underscores: bwd-data -> bwd_data.
std::string DirectionWord(Direction d) {
  std::string word(DirectionName(d));
  std::replace(word.begin(), word.end(), '-', '_');
  return word;
}

std::vector<Feature> MakeFeatures(bool use_algorithm) {
  std::vector<Feature> f;
  auto number = [&](std::string name, std::function<int64_t(const Problem&)> v) {
    f.push_back({std::move(name), FeatureType::kNumber, std::move(v), nullptr, {}});
  };
  auto boolean = [&](std::string name, std::function<int64_t(const Problem&)> v) {
    f.push_back({std::move(name), FeatureType::kBoolean, std::move(v), nullptr, {}});
  };
  auto pow2 = [](int64_t x) -> int64_t { return x > 0 && (x & (x - 1)) == 0 ? 1 : 0; };
  number("n", [](const Problem& p) { return p.n; });
  number("c", [](const Problem& p) { return p.c; });
  number("k", [](const Problem& p) { return p.k; });
  number("h", [](const Problem& p) { return p.h; });
  number("w", [](const Problem& p) { return p.w; });
  number("r", [](const Problem& p) { return p.r; });
  number("s", [](const Problem& p) { return p.s; });
  number("oh", [](const Problem& p) { return p.out_h(); });
  number("ow", [](const Problem& p) { return p.out_w(); });
  number("pad_top", [](const Problem& p) { return p.pad_top; });
  number("pad_left", [](const Problem& p) { return p.pad_left; });
  number("stride_h", [](const Problem& p) { return p.stride_h; });
  number("stride_w", [](const Problem& p) { return p.stride_w; });
  number("dilation_h", [](const Problem& p) { return p.dilation_h; });
  number("dilation_w", [](const Problem& p) { return p.dilation_w; });
  number("groups", [](const Problem& p) { return p.groups; });
  number("c * k", [](const Problem& p) { return p.c * p.k; });
  number("h * w", [](const Problem& p) { return p.h * p.w; });
  number("oh * ow", [](const Problem& p) { return p.out_h() * p.out_w(); });
  boolean("bias == 1", [](const Problem& p) -> int64_t { return p.bias ? 1 : 0; });
  boolean("pow2(c)", [pow2](const Problem& p) { return pow2(p.c); });
  boolean("pow2(k)", [pow2](const Problem& p) { return pow2(p.k); });
  boolean("pow2(h)", [pow2](const Problem& p) { return pow2(p.h); });
  boolean("pow2(w)", [pow2](const Problem& p) { return pow2(p.w); });
  for (int m : {2, 4, 8, 16}) {
    boolean("c % " + std::to_string(m) + " == 0",
            [m](const Problem& p) -> int64_t { return p.c % m == 0 ? 1 : 0; });
    boolean("k % " + std::to_string(m) + " == 0",
            [m](const Problem& p) -> int64_t { return p.k % m == 0 ? 1 : 0; });
  }
  auto category = [&](std::string name,
                      std::function<std::string(const Problem&, const std::string&)> c) {
    f.push_back({std::move(name), FeatureType::kCategory, nullptr, std::move(c), {}});
  };
  category("direction",
           [](const Problem& p, const std::string&) { return DirectionWord(p.direction); });
  category("dtype",
           [](const Problem& p, const std::string&) { return std::string(DataTypeName(p.dtype)); });
  category("layout",
           [](const Problem& p, const std::string&) { return std::string(LayoutName(p.layout)); });
  if (use_algorithm) {
    category("algo", [](const Problem&, const std::string& a) {
      std::string quoted = "\"";
      for (char ch : a) {
        if (ch == '"' || ch == '\\') quoted += '\\';
        quoted += ch;
      }
      return quoted + "\"";
    });
  }
  return f;
}

// The negation of a boolean feature's text.
std::string Negated(const std::string& name) {
  if (name.rfind("pow2(", 0) == 0) return "!" + name;
  const size_t eq = name.rfind(" == ");
  if (eq != std::string::npos) return name.substr(0, eq) + " != " + name.substr(eq + 4);
  return "!(" + name + ")";
}

struct Condition {
  int feature = 0;
  bool positive = true;   // number: value >= threshold; boolean: true; category: == value
  int64_t threshold = 0;  // number: the threshold; category: the value's index
};

// Numbers and booleans: value >= threshold (a boolean's threshold is 1); categories:
// value == the category's index.
bool ConditionHolds(const Feature& f, const Condition& c, const Sample& s) {
  const int64_t v = s.values[static_cast<size_t>(c.feature)];
  const bool holds = f.type == FeatureType::kCategory ? v == c.threshold : v >= c.threshold;
  return holds == c.positive;
}

struct Node {
  std::array<int64_t, kKinds> counts{};
  VerdictKind answer = VerdictKind::kOk;
  std::optional<Condition> split;  // when set: children[0] holds it, children[1] not
  std::unique_ptr<Node> yes, no;
};

double Gini(const std::array<int64_t, kKinds>& counts, int64_t total) {
  if (total == 0) return 0.0;
  double sum = 0.0;
  for (int64_t c : counts) {
    const double p = static_cast<double>(c) / static_cast<double>(total);
    sum += p * p;
  }
  return 1.0 - sum;
}

VerdictKind Majority(const std::array<int64_t, kKinds>& counts) {
  int best = 0;  // OK wins ties: a rule is only printed where the data says so
  for (int i = 1; i < kKinds; ++i)
    if (counts[i] > counts[best]) best = i;
  return static_cast<VerdictKind>(best);
}

class TreeBuilder {
 public:
  TreeBuilder(const std::vector<Feature>& features, const std::vector<Sample>& samples,
              const PatternOptions& options)
      : features_(features), samples_(samples), options_(options) {}

  std::unique_ptr<Node> Build(const std::vector<int>& rows, int depth) {
    auto node = std::make_unique<Node>();
    for (int i : rows) ++node->counts[KindIndex(samples_[i].kind)];
    node->answer = Majority(node->counts);
    const auto total = static_cast<int64_t>(rows.size());
    const double impurity = Gini(node->counts, total);
    if (depth >= options_.max_depth || impurity <= 0.0 || total < 2 * options_.min_leaf)
      return node;
    std::optional<Condition> best;
    double best_score = impurity - 1e-12;
    for (size_t f = 0; f < features_.size(); ++f) {
      for (const Condition& c : Candidates(static_cast<int>(f), rows)) {
        std::array<int64_t, kKinds> in{}, out{};
        int64_t n_in = 0;
        for (int i : rows) {
          if (Holds(c, samples_[i])) {
            ++in[KindIndex(samples_[i].kind)];
            ++n_in;
          } else {
            ++out[KindIndex(samples_[i].kind)];
          }
        }
        const int64_t n_out = total - n_in;
        if (n_in < options_.min_leaf || n_out < options_.min_leaf) continue;
        const double score = (static_cast<double>(n_in) * Gini(in, n_in) +
                              static_cast<double>(n_out) * Gini(out, n_out)) /
                             static_cast<double>(total);
        if (score < best_score - 1e-12) {
          best_score = score;
          best = c;
        }
      }
    }
    if (!best) return node;
    std::vector<int> yes, no;
    for (int i : rows) (Holds(*best, samples_[i]) ? yes : no).push_back(i);
    node->split = best;
    node->yes = Build(yes, depth + 1);
    node->no = Build(no, depth + 1);
    return node;
  }

  bool Holds(const Condition& c, const Sample& s) const {
    return ConditionHolds(features_[static_cast<size_t>(c.feature)], c, s);
  }

 private:
  std::vector<Condition> Candidates(int f, const std::vector<int>& rows) const {
    std::set<int64_t> seen;
    for (int i : rows) seen.insert(samples_[i].values[static_cast<size_t>(f)]);
    std::vector<Condition> out;
    if (seen.size() < 2) return out;
    // Numbers: `f >= t` for each seen value but the smallest; booleans: `f` (values 0/1,
    // the same test); categories: `f == v` for each value seen.
    switch (features_[static_cast<size_t>(f)].type) {
      case FeatureType::kNumber:
      case FeatureType::kBoolean:
        for (auto it = std::next(seen.begin()); it != seen.end(); ++it)
          out.push_back({f, true, *it});
        break;
      case FeatureType::kCategory:
        for (int64_t v : seen) out.push_back({f, true, v});
        break;
    }
    return out;
  }

  const std::vector<Feature>& features_;
  const std::vector<Sample>& samples_;
  const PatternOptions& options_;
};

// One rule's conditions, bounds on one number merged, in feature order.
std::string PathText(const std::vector<Feature>& features, const std::vector<Condition>& path) {
  std::map<int, std::pair<std::optional<int64_t>, std::optional<int64_t>>> bounds;  // [lo, hi)
  std::map<int, std::vector<std::string>> others;
  for (const Condition& c : path) {
    const Feature& f = features[static_cast<size_t>(c.feature)];
    switch (f.type) {
      case FeatureType::kNumber: {
        auto& [lo, hi] = bounds[c.feature];
        if (c.positive) {
          lo = lo ? std::max(*lo, c.threshold) : c.threshold;
        } else {
          hi = hi ? std::min(*hi, c.threshold) : c.threshold;
        }
        break;
      }
      case FeatureType::kBoolean:
        others[c.feature].push_back(c.positive ? f.name : Negated(f.name));
        break;
      case FeatureType::kCategory:
        others[c.feature].push_back(f.name + (c.positive ? " == " : " != ") +
                                    f.categories[static_cast<size_t>(c.threshold)]);
        break;
    }
  }
  std::vector<std::string> parts;
  for (size_t i = 0; i < features.size(); ++i) {
    const int f = static_cast<int>(i);
    if (auto b = bounds.find(f); b != bounds.end()) {
      const auto& [lo, hi] = b->second;
      if (lo && hi && *hi == *lo + 1) {
        parts.push_back(features[i].name + " == " + std::to_string(*lo));
        continue;
      }
      if (lo) parts.push_back(features[i].name + " >= " + std::to_string(*lo));
      if (hi) parts.push_back(features[i].name + " < " + std::to_string(*hi));
    }
    if (auto o = others.find(f); o != others.end())
      for (const std::string& t : o->second) parts.push_back(t);
  }
  if (parts.empty()) return "always";
  std::string out;
  for (const std::string& part : parts) out += (out.empty() ? "" : " && ") + part;
  return out;
}

struct Leaf {
  VerdictKind kind;
  std::string predicate;
  double slow_ms;
};

void CollectLeaves(const Node& node, const std::vector<Feature>& features,
                   const std::vector<Sample>& samples, std::vector<Condition>& path,
                   std::vector<Leaf>& out) {
  if (!node.split) {
    if (node.answer != VerdictKind::kOk) out.push_back({node.answer, PathText(features, path), 0});
    return;
  }
  path.push_back(*node.split);
  CollectLeaves(*node.yes, features, samples, path, out);
  path.back().positive = false;
  CollectLeaves(*node.no, features, samples, path, out);
  path.pop_back();
}

double MedianElapsed(const std::vector<Sample>& samples, VerdictKind kind) {
  std::vector<double> v;
  for (const Sample& s : samples)
    if (s.kind == kind && !s.held_out) v.push_back(s.elapsed_ms);
  if (v.empty()) return 1000.0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

std::string Percent(int64_t part, int64_t whole) {
  if (whole == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%",
                100.0 * static_cast<double>(part) / static_cast<double>(whole));
  return buf;
}

}  // namespace

std::string Pattern::RulesText() const {
  std::string out;
  out += "# convguard pattern of stack " + stack_id + ", learned from " +
         std::to_string(train_verdicts) + " verified verdict(s); " +
         std::to_string(held_out_verdicts) +
         " more held out (problems chosen by a hash of their canonical text)\n";
  out += "# errors of these rules: training " + std::to_string(train_errors) + " of " +
         std::to_string(train_verdicts) + " (" + Percent(train_errors, train_verdicts) +
         "), held-out " + std::to_string(held_out_errors) + " of " +
         std::to_string(held_out_verdicts) + " (" + Percent(held_out_errors, held_out_verdicts) +
         ")\n";
  for (const std::string& note : notes) out += "# note: " + note + "\n";
  out +=
      "# each rule: the verdicts it matches first (training / held-out), and how many of\n"
      "# those are of another kind; use with --inject on the reference backend\n";
  for (const LearnedRule& r : rules) {
    out += "\n# " + std::string(VerdictName(r.kind)) + ": training " +
           std::to_string(r.train_covered) + " (" + std::to_string(r.train_wrong) +
           " wrong), held-out " + std::to_string(r.held_out_covered) + " (" +
           std::to_string(r.held_out_wrong) + " wrong)\n";
    out += r.fault + " when " + r.predicate + "\n";
  }
  out += "\n# no rule matches (predicted OK): training " + std::to_string(unmatched_train) + " (" +
         std::to_string(unmatched_train_wrong) + " wrong), held-out " +
         std::to_string(unmatched_held_out) + " (" + std::to_string(unmatched_held_out_wrong) +
         " wrong)\n";
  return out;
}

std::string Pattern::ToJson() const {
  nlohmann::json j;
  j["stack"] = stack_id;
  j["train_verdicts"] = train_verdicts;
  j["held_out_verdicts"] = held_out_verdicts;
  j["train_errors"] = train_errors;
  j["held_out_errors"] = held_out_errors;
  j["notes"] = notes;
  nlohmann::json rs = nlohmann::json::array();
  for (const LearnedRule& r : rules) {
    rs.push_back({{"verdict", VerdictName(r.kind)},
                  {"fault", r.fault},
                  {"predicate", r.predicate},
                  {"rule", r.fault + " when " + r.predicate},
                  {"train_covered", r.train_covered},
                  {"train_wrong", r.train_wrong},
                  {"held_out_covered", r.held_out_covered},
                  {"held_out_wrong", r.held_out_wrong}});
  }
  j["rules"] = std::move(rs);
  j["unmatched"] = {{"train", unmatched_train},
                    {"train_wrong", unmatched_train_wrong},
                    {"held_out", unmatched_held_out},
                    {"held_out_wrong", unmatched_held_out_wrong}};
  j["rules_text"] = RulesText();
  return j.dump(2);
}

StatusOr<Pattern> LearnPattern(const std::vector<Verdict>& verdicts,
                               const PatternOptions& options) {
  if (options.max_depth < 1 || options.max_depth > 12)
    return Status::InvalidArgument("depth " + std::to_string(options.max_depth) +
                                   " is out of range (allowed: 1 to 12)");
  if (options.held_out_percent < 0 || options.held_out_percent > 90)
    return Status::InvalidArgument("held-out share " + std::to_string(options.held_out_percent) +
                                   "% is out of range (allowed: 0 to 90)");
  Pattern pattern;
  std::vector<Feature> features = MakeFeatures(options.use_algorithm);
  std::vector<Sample> samples;
  std::map<std::string, int64_t> left_out;
  for (const Verdict& v : verdicts) {
    if (pattern.stack_id.empty()) pattern.stack_id = v.stack_id;
    if (v.stack_id != pattern.stack_id)
      return Status::InvalidArgument("the verdicts span several stacks (" + pattern.stack_id +
                                     ", " + v.stack_id + "): learn one stack at a time");
    if (FaultFor(v.kind, 0).empty() && v.kind != VerdictKind::kOk) {
      ++left_out[std::string(VerdictName(v.kind))];
      continue;
    }
    StatusOr<Problem> p = ParseProblem(v.problem);
    if (!p.ok()) {
      ++left_out["unreadable problem"];
      continue;
    }
    Sample s;
    s.problem = *p;
    s.algorithm = v.algorithm;
    s.kind = v.kind;
    s.elapsed_ms = v.elapsed_ms;
    s.held_out = options.held_out_percent > 0 &&
                 static_cast<int>(std::strtoull(Fnv1a64Hex(v.problem).c_str(), nullptr, 16) % 100) <
                     options.held_out_percent;
    samples.push_back(std::move(s));
  }
  for (const auto& [what, count] : left_out)
    pattern.notes.push_back(std::to_string(count) + " " + what +
                            " verdict(s) left out: no fault of the rules language produces them");
  if (static_cast<int64_t>(samples.size()) < options.min_verdicts)
    return Status::InvalidArgument(
        std::to_string(samples.size()) + " usable verdict(s)" +
        (pattern.stack_id.empty() ? "" : " of stack " + pattern.stack_id) +
        ": too few to learn a pattern from (at least " + std::to_string(options.min_verdicts) +
        "; probe more problems, e.g. convguard sweep --grid)");
  // Feature values; categories get indices in order of first appearance.
  for (Feature& f : features) {
    std::map<std::string, int64_t> index;
    for (Sample& s : samples) {
      if (f.type != FeatureType::kCategory) {
        s.values.push_back(f.value(s.problem));
        continue;
      }
      const std::string text = f.category(s.problem, s.algorithm);
      auto [it, added] = index.emplace(text, static_cast<int64_t>(f.categories.size()));
      if (added) f.categories.push_back(text);
      s.values.push_back(it->second);
    }
  }
  std::vector<int> train;
  for (size_t i = 0; i < samples.size(); ++i)
    if (!samples[i].held_out) train.push_back(static_cast<int>(i));
  if (train.empty()) return Status::InvalidArgument("every verdict fell in the held-out part");
  TreeBuilder builder(features, samples, options);
  std::unique_ptr<Node> root = builder.Build(train, 0);
  std::vector<Leaf> leaves;
  std::vector<Condition> path;
  CollectLeaves(*root, features, samples, path, leaves);

  // The printed rules, parsed back: what they do is what is stated.
  std::string text;
  for (Leaf& leaf : leaves) {
    LearnedRule r;
    r.kind = leaf.kind;
    r.fault = FaultFor(leaf.kind, MedianElapsed(samples, leaf.kind));
    r.predicate = leaf.predicate;
    text += r.fault + " when " + r.predicate + "\n";
    pattern.rules.push_back(std::move(r));
  }
  StatusOr<inject::FaultRules> parsed = inject::ParseFaultRules(text, "learned pattern");
  if (!parsed.ok())
    return Status::Internal("the learned rules do not parse: " + parsed.status().message());
  for (const Sample& s : samples) {
    const inject::FaultRule* rule = parsed->Match(s.problem, s.algorithm);
    const VerdictKind predicted =
        rule ? inject::VerdictOfFault(rule->fault.kind) : VerdictKind::kOk;
    const bool wrong = predicted != s.kind;
    (s.held_out ? pattern.held_out_verdicts : pattern.train_verdicts) += 1;
    (s.held_out ? pattern.held_out_errors : pattern.train_errors) += wrong ? 1 : 0;
    if (rule == nullptr) {
      (s.held_out ? pattern.unmatched_held_out : pattern.unmatched_train) += 1;
      (s.held_out ? pattern.unmatched_held_out_wrong : pattern.unmatched_train_wrong) +=
          wrong ? 1 : 0;
      continue;
    }
    LearnedRule& r = pattern.rules[static_cast<size_t>(rule - parsed->rules.data())];
    (s.held_out ? r.held_out_covered : r.train_covered) += 1;
    (s.held_out ? r.held_out_wrong : r.train_wrong) += wrong ? 1 : 0;
  }
  if (pattern.rules.empty())
    pattern.notes.push_back("no rule: the training verdicts are mostly OK everywhere");
  return pattern;
}

StatusOr<Prediction> Predict(const Pattern& pattern, const Problem& p,
                             const std::string& algorithm) {
  std::string text;
  for (const LearnedRule& r : pattern.rules) text += r.fault + " when " + r.predicate + "\n";
  StatusOr<inject::FaultRules> parsed = inject::ParseFaultRules(text, "learned pattern");
  if (!parsed.ok())
    return Status::Internal("the learned rules do not parse: " + parsed.status().message());
  Prediction out;
  int64_t covered = pattern.unmatched_train, wrong = pattern.unmatched_train_wrong;
  if (const inject::FaultRule* rule = parsed->Match(p, algorithm); rule != nullptr) {
    const LearnedRule& r = pattern.rules[static_cast<size_t>(rule - parsed->rules.data())];
    out.kind = r.kind;
    out.rule = r.fault + " when " + r.predicate;
    covered = r.train_covered;
    wrong = r.train_wrong;
  }
  out.support = covered;
  out.confidence = static_cast<double>(covered - wrong + 1) / static_cast<double>(covered + 2);
  return out;
}

namespace {
std::string ScopeKind(const Problem& p) {
  return std::string(DirectionName(p.direction)) + " " + std::string(DataTypeName(p.dtype)) + " " +
         std::string(LayoutName(p.layout));
}
}  // namespace

LearnedScope::LearnedScope(const std::vector<Verdict>& verdicts) {
  for (const Verdict& v : verdicts)
    if (StatusOr<Problem> p = ParseProblem(v.problem); p.ok()) kinds_.insert(ScopeKind(*p));
}

bool LearnedScope::Covers(const Problem& p) const { return kinds_.count(ScopeKind(p)) > 0; }

StatusOr<Pattern> LearnProblemPattern(const std::vector<Verdict>& verdicts,
                                      PatternOptions options) {
  const auto severity = [](VerdictKind k) { return VerdictSeverity(k); };
  std::map<std::string, Verdict> worst;
  for (const Verdict& v : verdicts) {
    auto it = worst.find(v.problem);
    if (it == worst.end() || severity(v.kind) < severity(it->second.kind)) {
      Verdict copy = v;
      copy.algorithm.clear();
      worst[v.problem] = std::move(copy);
    }
  }
  std::vector<Verdict> per_problem;
  per_problem.reserve(worst.size());
  for (auto& [problem, v] : worst) per_problem.push_back(std::move(v));
  options.use_algorithm = false;
  return LearnPattern(per_problem, options);
}

StatusOr<std::vector<size_t>> LeastCertainFirst(const Pattern& pattern,
                                                const std::vector<Problem>& candidates) {
  std::vector<std::pair<double, size_t>> ranked;
  ranked.reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    CG_ASSIGN_OR_RETURN(Prediction p, Predict(pattern, candidates[i]));
    ranked.emplace_back(p.confidence, i);
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<size_t> out;
  out.reserve(ranked.size());
  for (const auto& [confidence, i] : ranked) out.push_back(i);
  return out;
}

}  // namespace convguard
