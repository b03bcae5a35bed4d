// Plans for people (indented text) and for programs (JSON).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "convguard/plan.h"
#include "convguard/text_forms.h"
#include "plan/internal.h"
#include "rewrite/rewrite.h"

namespace convguard {
namespace {

std::string Ms(double ms) {
  char buf[64];
  if (ms >= 100) {
    std::snprintf(buf, sizeof buf, "%.0f ms", ms);
  } else if (ms >= 1) {
    std::snprintf(buf, sizeof buf, "%.2f ms", ms);
  } else {
    std::snprintf(buf, sizeof buf, "%.3f ms", ms);
  }
  return buf;
}

// How exact a leaf's verdict says it is.
std::string LeafExactness(double tolerance) {
  if (tolerance == 0.0) return "bit-exact";
  if (tolerance < 0.0) return "exactness not recorded";
  char buf[64];
  std::snprintf(buf, sizeof buf, "rounds: checked within %.3g", tolerance);
  return buf;
}

void StepText(const PlanStep& step, int indent, int64_t runs, std::ostringstream& out) {
  out << std::string(static_cast<size_t>(indent) * 2, ' ');
  if (runs > 1) out << runs << " x ";
  if (step.is_leaf()) {
    out << StepKindName(step) << " " << ToCanonical(step.problem) << " on " << step.backend << " '"
        << step.algorithm << "'";
    if (step.measured_ms >= 0) {
      out << " (OK, measured " << Ms(step.measured_ms);
    } else {
      out << " (OK, " << Ms(step.predicted_ms) << " modelled";
    }
    out << ", " << LeafExactness(step.tolerance) << ")";
    if (!step.parameters.empty()) out << " — " << step.parameters;
    out << "\n";
    return;
  }
  out << StepKindName(step) << " " << step.parameters << "  [" << Ms(step.predicted_ms)
      << (step.modelled ? " incl. modelled" : "") << "]\n";
  for (size_t i = 0; i < step.children.size(); ++i) {
    StepText(step.children[i], indent + 1, step.runs[i], out);
  }
}

nlohmann::json SpanJson(const rewrite::Span& s) { return nlohmann::json::array({s.begin, s.end}); }

// A forward rewrite's pieces (rewrite/rewrite.h, ForwardPiece): how a program that is not
// convguard (an ONNX writer, a framework's guard) runs the step with its own operators.
// Empty for a backward problem, whose rewrites have no forward pieces.
nlohmann::json PiecesJson(const PlanStep& step) {
  nlohmann::json out = nlohmann::json::array();
  if (step.problem.direction != Direction::kForward) return out;
  StatusOr<std::vector<rewrite::ForwardPiece>> pieces = plan::ForwardPiecesOf(step);
  if (!pieces.ok()) return out;
  for (const rewrite::ForwardPiece& piece : *pieces) {
    out.push_back({{"slot", piece.slot},
                   {"n", SpanJson(piece.n)},
                   {"c", SpanJson(piece.c)},
                   {"h", SpanJson(piece.h)},
                   {"w", SpanJson(piece.w)},
                   {"k", SpanJson(piece.k)},
                   {"out_n", SpanJson(piece.out_n)},
                   {"out_h", SpanJson(piece.out_h)},
                   {"out_w", SpanJson(piece.out_w)}});
  }
  return out;
}

nlohmann::json StepJson(const PlanStep& step) {
  nlohmann::json j;
  j["kind"] = StepKindName(step);
  if (!step.parameters.empty()) j["parameters"] = step.parameters;
  j["problem"] = ToCanonical(step.problem);
  j["predicted_ms"] = step.predicted_ms;
  j["modelled"] = step.modelled;
  if (step.is_leaf()) {
    j["backend"] = step.backend;
    j["stack"] = step.stack_id;
    j["algorithm"] = step.algorithm;
    if (step.measured_ms >= 0) j["measured_ms"] = step.measured_ms;
    j["tolerance"] = step.tolerance;
  } else {
    j["bytes_per_call"] = step.bytes_per_call;
    j["bytes_per_weight_load"] = step.bytes_per_weight_load;
    nlohmann::json children = nlohmann::json::array();
    for (size_t i = 0; i < step.children.size(); ++i) {
      nlohmann::json c = StepJson(step.children[i]);
      c["runs"] = step.runs[i];
      children.push_back(std::move(c));
    }
    j["children"] = std::move(children);
    if (step.problem.direction == Direction::kForward) j["pieces"] = PiecesJson(step);
  }
  return j;
}

nlohmann::json PlanJson(const Plan& plan) {
  nlohmann::json j;
  j["predicted_ms"] = plan.predicted_ms;
  j["native_ms"] = plan.native_ms;
  j["native_measured"] = plan.native_measured;
  j["overhead"] = plan.overhead();
  j["leaf_runs"] = plan.leaves;
  j["depth"] = plan.depth;
  j["uses_fallback"] = plan.uses_fallback;
  j["exact"] = plan.exact;
  j["tolerance"] = PlanTolerance(plan);
  j["root"] = StepJson(plan.root);
  return j;
}

std::string Summary(const Plan& plan) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%.2fx", plan.overhead());
  char tolerance[64];
  std::snprintf(tolerance, sizeof tolerance, "%.3g", PlanTolerance(plan));
  return "predicted " + Ms(plan.predicted_ms) + " per call against " + Ms(plan.native_ms) +
         (plan.native_measured ? " measured" : " modelled") + " natively (" + buf + "), " +
         std::to_string(plan.leaves) + " leaf run" + (plan.leaves == 1 ? "" : "s") + " per call, " +
         (plan.exact ? std::string("bit-exact")
                     : std::string("a leaf rounds: result within tolerance ") + tolerance);
}

}  // namespace

std::string_view StepKindName(const PlanStep& step) {
  switch (step.kind) {
    case StepKind::kNative: return "native";
    case StepKind::kAlgorithmAvoidance: return "algorithm-avoidance";
    case StepKind::kBackendFallback: return "backend-fallback";
    case StepKind::kRewrite: return step.rewrite;
  }
  return "?";
}

std::string PlanToJson(const Plan& plan) { return PlanJson(plan).dump(); }

std::string PlanToText(const Plan& plan) {
  std::ostringstream out;
  out << Summary(plan) << "\n";
  StepText(plan.root, 1, 1, out);
  return out.str();
}

std::string PlanReportToText(const PlanReport& report) {
  std::ostringstream out;
  out << "problem " << report.problem_text << "\n";
  if (report.native_verdicts.empty()) {
    out << "as is: no verdict in the store\n";
  } else {
    out << "as is:\n";
    for (const std::string& line : report.native_verdicts) out << "  " << line << "\n";
  }
  if (report.probes_run > 0)
    out << "probed " << report.probes_run << " sub-problem(s) for this plan\n";
  for (const std::string& note : report.notes) out << "note: " << note << "\n";
  if (report.chosen) {
    const bool native = report.chosen->root.kind == StepKind::kNative;
    out << (native ? "plan: run it as is, " : "plan (exact rewrites): ")
        << PlanToText(*report.chosen);
    for (size_t i = 0; i < report.alternatives.size(); ++i) {
      out << "alternative " << i + 1 << ": " << PlanToText(report.alternatives[i]);
    }
  } else {
    out << "no exact plan: nothing the store knows to be OK computes this problem exactly.\n"
        << "options that CHANGE THE MODEL (convguard never applies these):\n";
    for (const std::string& s : report.suggestions) out << "  - " << s << "\n";
  }
  return out.str();
}

std::string PlanReportToJson(const PlanReport& report) {
  nlohmann::json j;
  j["problem"] = report.problem_text;
  j["native_verdicts"] = report.native_verdicts;
  j["probes_run"] = report.probes_run;
  j["notes"] = report.notes;
  j["plan"] = report.chosen ? PlanJson(*report.chosen) : nlohmann::json(nullptr);
  nlohmann::json alternatives = nlohmann::json::array();
  for (const Plan& p : report.alternatives) alternatives.push_back(PlanJson(p));
  j["alternatives"] = std::move(alternatives);
  j["suggestions"] = report.suggestions;
  return j.dump(2);
}

}  // namespace convguard
