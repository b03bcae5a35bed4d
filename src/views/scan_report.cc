// A scan report for people (a terminal table, Markdown) and for programs (JSON).
#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "convguard/scan.h"
#include "convguard/text_forms.h"
#include "core/json_records.h"

namespace convguard {
namespace {

std::string DirectionShort(Direction d) {
  switch (d) {
    case Direction::kForward: return "fwd";
    case Direction::kBackwardData: return "bwd-data";
    case Direction::kBackwardWeights: return "bwd-weights";
  }
  return "?";
}

std::string MiopenKey(const Problem& p) {
  StatusOr<std::string> key = ToMiopenKey(p);
  return key.ok() ? *key : "-";
}

// What a problem's row says in its last column: its verdict, and for a bad one its plan.
std::string Outcome(const ScannedProblem& p) {
  std::string out;
  switch (p.state) {
    case LayerState::kOk: out = "OK"; break;
    case LayerState::kUnknown: {
      if (p.predicted.empty()) return "UNKNOWN (no verdict)";
      char confidence[32];
      std::snprintf(confidence, sizeof confidence, "%.2f", p.predicted_confidence);
      return "UNKNOWN (no verdict; PREDICTED " + p.predicted + ", confidence " + confidence + ")";
    }
    case LayerState::kUnsupported: return "UNSUPPORTED";
    case LayerState::kBad: out = p.verdict; break;
  }
  if (p.by_forward_plan) return out + " -> runs as the forward plan's leaves";
  if (!p.plan && p.no_plan.empty()) return out;  // nothing to fix here
  if (!p.plan) return out + " -> blocked: " + p.no_plan;
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.2fx", p.plan->overhead());
  const PlanStep& root = p.plan->root;
  return out + " -> " +
         (root.is_leaf() ? std::string(StepKindName(root)) : root.rewrite + " " + root.parameters) +
         " (" + ratio + ")";
}

struct Row {
  std::string index, layer, direction, problem, key, outcome;
};

std::vector<Row> Rows(const ScanReport& r) {
  std::vector<Row> rows;
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const ScannedLayer& layer = r.layers[i];
    if (layer.problems.empty()) {
      rows.push_back({std::to_string(i + 1), layer.conv.name, "-", layer.conv.op, "-",
                      "UNSUPPORTED: " + layer.conv.unsupported});
      continue;
    }
    for (size_t j = 0; j < layer.problems.size(); ++j) {
      const ScannedProblem& p = layer.problems[j];
      rows.push_back({j == 0 ? std::to_string(i + 1) : "", j == 0 ? layer.conv.name : "",
                      DirectionShort(p.problem.direction), ToCanonical(p.problem),
                      MiopenKey(p.problem), Outcome(p)});
    }
  }
  return rows;
}

std::string Header(const ScanReport& r) {
  std::string out = "model " + r.origin + " (" + r.format + "), " +
                    std::to_string(r.layers.size()) + " convolution" +
                    (r.layers.size() == 1 ? "" : "s") + ", " + std::to_string(r.distinct_problems) +
                    " distinct problem" + (r.distinct_problems == 1 ? "" : "s") +
                    (r.training ? " (forward and backward: --training)" : " (forward)") + "\n";
  out += "stack " + r.stack.stack_id + ": " + r.stack.summary + "\n";
  if (r.probed > 0) out += "probed " + std::to_string(r.probed) + " problem(s) for this scan\n";
  for (const std::string& n : r.notes) out += "note: " + n + "\n";
  return out;
}

}  // namespace

std::string ScanReportToText(const ScanReport& r) {
  const std::vector<Row> rows = Rows(r);
  size_t w[5] = {1, 5, 3, 7, 3};
  for (const Row& row : rows) {
    w[0] = std::max(w[0], row.index.size());
    w[1] = std::max(w[1], row.layer.size());
    w[2] = std::max(w[2], row.direction.size());
    w[3] = std::max(w[3], row.problem.size());
    w[4] = std::max(w[4], row.key.size());
  }
  const auto pad = [](const std::string& s, size_t width) {
    return s + std::string(width - s.size(), ' ');
  };
  std::ostringstream out;
  out << Header(r);
  out << pad("#", w[0]) << "  " << pad("layer", w[1]) << "  " << pad("dir", w[2]) << "  "
      << pad("problem", w[3]) << "  " << pad("key", w[4]) << "  verdict\n";
  for (const Row& row : rows) {
    out << pad(row.index, w[0]) << "  " << pad(row.layer, w[1]) << "  " << pad(row.direction, w[2])
        << "  " << pad(row.problem, w[3]) << "  " << pad(row.key, w[4]) << "  " << row.outcome
        << "\n";
  }
  out << (r.emulated ? "answer (EMULATED stack): " : "answer: ") << r.answer << "\n";
  return out.str();
}

std::string ScanReportToMarkdown(const ScanReport& r) {
  std::ostringstream out;
  std::istringstream header(Header(r));
  for (std::string line; std::getline(header, line);) out << line << "  \n";
  out << "\n| # | layer | dir | problem | MIOpen key | verdict |\n| --- | --- | --- | --- | --- | "
         "--- |\n";
  for (const Row& row : Rows(r)) {
    out << "| " << row.index << " | " << row.layer << " | " << row.direction << " | `"
        << row.problem << "` | `" << row.key << "` | " << row.outcome << " |\n";
  }
  out << "\n**" << (r.emulated ? "Answer (EMULATED stack)" : "Answer") << ":** " << r.answer
      << "\n";
  return out.str();
}

std::string ScanReportToJson(const ScanReport& r) {
  using nlohmann::json;
  json j;
  j["model"] = r.origin;
  j["format"] = r.format;
  j["stack"] = {{"id", r.stack.stack_id},
                {"summary", r.stack.summary},
                {"backend", r.stack.backend},
                {"emulated", r.emulated}};
  j["training"] = r.training;
  j["distinct_problems"] = r.distinct_problems;
  j["probed"] = r.probed;
  j["notes"] = r.notes;
  const char* outcomes[] = {"works", "works-with-rewrites", "blocked", "unknown"};
  j["outcome"] = outcomes[static_cast<int>(r.outcome)];
  j["answer"] = r.answer;
  if (r.replayed) j["replayed"] = ToJson(*r.replayed);
  json related = json::array();
  for (const SequenceVerdict& v : r.related) related.push_back(ToJson(v));
  j["related_sequences"] = std::move(related);
  json layers = json::array();
  for (const ScannedLayer& layer : r.layers) {
    json l = {{"name", layer.conv.name},
              {"op", layer.conv.op},
              {"node", layer.conv.node},
              {"calls", layer.conv.calls},
              {"state", LayerStateName(layer.state)}};
    if (!layer.conv.unsupported.empty()) l["unsupported"] = layer.conv.unsupported;
    json problems = json::array();
    for (const ScannedProblem& p : layer.problems) {
      json q = {{"problem", ToCanonical(p.problem)},
                {"miopen_key", MiopenKey(p.problem)},
                {"state", LayerStateName(p.state)},
                {"verdict", p.verdict}};
      if (!p.detail.empty()) q["detail"] = p.detail;
      if (p.plan) {
        q["plan"] = json::parse(PlanToJson(*p.plan));
      }
      if (!p.no_plan.empty()) q["no_plan"] = p.no_plan;
      if (p.by_forward_plan) q["by_forward_plan"] = true;
      if (!p.predicted.empty()) {
        q["predicted"] = {{"verdict", p.predicted},
                          {"confidence", p.predicted_confidence},
                          {"rule", p.predicted_rule}};
      }
      problems.push_back(std::move(q));
    }
    l["problems"] = std::move(problems);
    layers.push_back(std::move(l));
  }
  j["layers"] = std::move(layers);
  return j.dump(2);
}

namespace {

std::string Status(ModelOutcome o) {
  switch (o) {
    case ModelOutcome::kWorks: return "works";
    case ModelOutcome::kWorksWithRewrites: return "works with exact rewrites";
    case ModelOutcome::kBlocked: return "blocked";
    case ModelOutcome::kUnknown: return "unknown";
  }
  return "?";
}

struct SummaryRow {
  std::string model, status, layers, notes;
};

SummaryRow Summarise(const ScanReport& r) {
  int64_t ok = 0, bad = 0, unknown = 0, unsupported = 0;
  std::map<std::string, int64_t> rewrites;
  for (const ScannedLayer& layer : r.layers) {
    switch (layer.state) {
      case LayerState::kOk: ++ok; break;
      case LayerState::kUnknown: ++unknown; break;
      case LayerState::kUnsupported: ++unsupported; break;
      case LayerState::kBad: {
        ++bad;
        const ScannedProblem* fix = layer.fix();
        if (fix != nullptr && fix->plan) {
          const PlanStep& root = fix->plan->root;
          rewrites[root.is_leaf() ? std::string(StepKindName(root)) : root.rewrite]++;
        } else {
          rewrites["no exact plan"]++;
        }
        break;
      }
    }
  }
  std::string layers = std::to_string(r.layers.size()) + " conv: " + std::to_string(ok) + " OK";
  if (bad > 0) layers += ", " + std::to_string(bad) + " bad";
  if (unknown > 0) layers += ", " + std::to_string(unknown) + " unknown";
  if (unsupported > 0) layers += ", " + std::to_string(unsupported) + " unsupported";
  std::string notes;
  for (const auto& [name, count] : rewrites)
    notes += (notes.empty() ? "" : ", ") + std::to_string(count) + " x " + name;
  const std::string base = r.origin.substr(r.origin.find_last_of('/') + 1);
  return {base, Status(r.outcome), layers, notes.empty() ? "-" : notes};
}

}  // namespace

std::string ScanSummaryToText(const std::vector<ScanReport>& reports) {
  std::vector<SummaryRow> rows;
  size_t w[3] = {5, 6, 6};
  for (const ScanReport& r : reports) {
    rows.push_back(Summarise(r));
    w[0] = std::max(w[0], rows.back().model.size());
    w[1] = std::max(w[1], rows.back().status.size());
    w[2] = std::max(w[2], rows.back().layers.size());
  }
  const auto pad = [](const std::string& s, size_t width) {
    return s + std::string(width - s.size(), ' ');
  };
  std::ostringstream out;
  if (!reports.empty()) {
    out << "stack " << reports.front().stack.stack_id << ": " << reports.front().stack.summary
        << "\n";
  }
  out << pad("model", w[0]) << "  " << pad("status", w[1]) << "  " << pad("layers", w[2])
      << "  rewrites\n";
  for (const SummaryRow& row : rows) {
    out << pad(row.model, w[0]) << "  " << pad(row.status, w[1]) << "  " << pad(row.layers, w[2])
        << "  " << row.notes << "\n";
  }
  return out.str();
}

std::string ScanSummaryToMarkdown(const std::vector<ScanReport>& reports) {
  std::ostringstream out;
  if (!reports.empty()) {
    out << "Stack `" << reports.front().stack.stack_id << "`: " << reports.front().stack.summary
        << "\n\n";
  }
  out << "| Model | Status | Layers | Rewrites |\n| --- | --- | --- | --- |\n";
  for (const ScanReport& r : reports) {
    const SummaryRow row = Summarise(r);
    out << "| " << row.model << " | " << row.status << " | " << row.layers << " | " << row.notes
        << " |\n";
  }
  return out.str();
}

std::string ScanSummaryToJson(const std::vector<ScanReport>& reports) {
  nlohmann::json all = nlohmann::json::array();
  for (const ScanReport& r : reports) all.push_back(nlohmann::json::parse(ScanReportToJson(r)));
  return all.dump(2);
}

}  // namespace convguard
