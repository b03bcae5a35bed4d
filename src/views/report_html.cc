// The report as one self-contained HTML page (convguard/report.h): inline CSS and SVG,
// no script, no external asset, so it can be mailed, archived or opened offline.
//
// Every verdict of the report is exactly one heat-map cell (an SVG rect of class "cell")
// linked to its row of the evidence table; the tests count them.
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "convguard/report.h"
#include "convguard/text_forms.h"
#include "views/report_labels.h"

namespace convguard {
namespace {

std::string Escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

struct Style {
  const char* fill;
  const char* letter;  // shown in the cell, so colour is not the only cue
};

Style StyleOf(const std::string& state) {
  static const std::map<std::string, Style> kStyles = {
      {"OK", {"#2a9d5c", ""}},     {"SLOW", {"#e9c46a", "S"}},
      {"HANG", {"#d62828", "H"}},  {"CRASH", {"#7b2cbf", "C"}},
      {"WRONG", {"#f77f00", "W"}}, {"MISTRUSTED", {"#8d99ae", "M"}},
      {"ERROR", {"#264653", "E"}}, {"UNSUPPORTED", {"#d9d9d9", "U"}},
      {"OOM", {"#3a86ff", "O"}},   {"UNKNOWN", {"#ffffff", "?"}},
  };
  auto it = kStyles.find(state);
  return it == kStyles.end() ? Style{"#000000", "!"} : it->second;
}

const char* kCss = R"(
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 2em 3em;
       color: #1d2330; background: #fff; }
h1 { margin: .8em 0 .2em; } h2 { margin-top: 2em; border-bottom: 2px solid #1d2330; }
h3 { margin: 1.6em 0 .5em; }
.meta, .note { color: #555; }
.emulation { background: #fff3cd; border: 1px solid #e0c36a; padding: .4em .8em; }
table { border-collapse: collapse; margin: .4em 0 1em; }
th, td { border: 1px solid #ccd; padding: .2em .55em; text-align: left; vertical-align: top; }
th { background: #eef0f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
pre { background: #f5f6f9; border: 1px solid #dde; padding: .6em .8em; overflow-x: auto; }
.legend span { display: inline-block; margin-right: 1em; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #888;
          vertical-align: -2px; margin-right: .3em; }
figure { display: inline-block; margin: 0 1.5em 1.2em 0; vertical-align: top; }
figcaption { font-weight: 600; margin-bottom: .2em; }
svg text { font: 11px ui-monospace, "DejaVu Sans Mono", monospace; fill: #1d2330; }
svg text.in-cell { font-weight: 700; fill: #fff; pointer-events: none; }
.evidence td { font-size: 12.5px; }
.evidence code { word-break: break-all; }
td.msg { max-width: 28em; }
.evidence tr:target { background: #fff3cd; }
.verdict { font-weight: 700; }
)";

std::string Swatch(const std::string& state) {
  return "<span class=\"swatch\" style=\"background:" + std::string(StyleOf(state).fill) +
         "\"></span>";
}

// One heat map: rows are the rest of the problem and the algorithm, columns the input
// sizes; one cell per verdict.
struct Cell {
  size_t index;  // into StackReport::verdicts
  const Verdict* verdict;
  std::string row, column;
  int64_t area = 0, h = 0;
};

std::string HeatMap(const std::string& anchor, const std::vector<Cell>& cells) {
  std::vector<std::string> rows;
  std::vector<std::pair<std::pair<int64_t, int64_t>, std::string>> columns;  // (area, h), label
  for (const Cell& c : cells) {
    if (std::find(rows.begin(), rows.end(), c.row) == rows.end()) rows.push_back(c.row);
    const auto col = std::make_pair(std::make_pair(c.area, c.h), c.column);
    if (std::find(columns.begin(), columns.end(), col) == columns.end()) columns.push_back(col);
  }
  std::sort(rows.begin(), rows.end());
  std::sort(columns.begin(), columns.end());
  constexpr int kCell = 22, kGap = 2, kCharW = 7;
  size_t row_chars = 4, col_chars = 4;
  for (const std::string& r : rows) row_chars = std::max(row_chars, r.size());
  for (const auto& c : columns) col_chars = std::max(col_chars, c.second.size());
  const int left = static_cast<int>(row_chars) * kCharW + 10;
  const int top = static_cast<int>(col_chars) * kCharW + 8;
  const int width = left + static_cast<int>(columns.size()) * (kCell + kGap) + 4;
  const int height = top + static_cast<int>(rows.size()) * (kCell + kGap) + 4;
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << " " << height << "\" role=\"img\">";
  for (size_t i = 0; i < columns.size(); ++i) {
    const int x = left + static_cast<int>(i) * (kCell + kGap) + kCell / 2 + 4;
    svg << "<text transform=\"translate(" << x << "," << top - 6 << ") rotate(-90)\">"
        << Escape(columns[i].second) << "</text>";
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const int y = top + static_cast<int>(i) * (kCell + kGap) + kCell / 2 + 4;
    svg << "<text x=\"" << left - 6 << "\" y=\"" << y << "\" text-anchor=\"end\">"
        << Escape(rows[i]) << "</text>";
  }
  for (const Cell& c : cells) {
    const size_t col = static_cast<size_t>(std::find_if(columns.begin(), columns.end(),
                                                        [&](const auto& x) {
                                                          return x.second == c.column &&
                                                                 x.first.first == c.area &&
                                                                 x.first.second == c.h;
                                                        }) -
                                           columns.begin());
    const size_t row =
        static_cast<size_t>(std::find(rows.begin(), rows.end(), c.row) - rows.begin());
    const int x = left + static_cast<int>(col) * (kCell + kGap);
    const int y = top + static_cast<int>(row) * (kCell + kGap);
    const std::string kind(VerdictName(c.verdict->kind));
    const Style style = StyleOf(kind);
    std::string title = kind + ": " + c.verdict->problem + " (" + c.verdict->algorithm + ")";
    if (c.verdict->time_ms_median > 0)
      title += ", median " + Fixed(c.verdict->time_ms_median, 3) + " ms";
    svg << "<a href=\"#" << anchor << "-v" << c.index << "\"><rect class=\"cell\" data-verdict=\""
        << kind << "\" x=\"" << x << "\" y=\"" << y << "\" width=\"" << kCell << "\" height=\""
        << kCell << "\" rx=\"3\" fill=\"" << style.fill
        << "\" stroke=\"#555\" stroke-width=\"0.5\">"
        << "<title>" << Escape(title) << "</title></rect>";
    if (*style.letter)
      svg << "<text class=\"in-cell\" x=\"" << x + kCell / 2 << "\" y=\"" << y + kCell / 2 + 4
          << "\" text-anchor=\"middle\">" << style.letter << "</text>";
    svg << "</a>";
  }
  svg << "</svg>";
  return svg.str();
}

std::string ModelStrip(const ReportModel& m) {
  constexpr int kW = 12, kH = 28, kGap = 2, kPerLine = 80;
  const int n = static_cast<int>(m.layers.size());
  const int lines = std::max(1, (n + kPerLine - 1) / kPerLine);
  const int width = std::min(n, kPerLine) * (kW + kGap) + 4;
  const int height = lines * (kH + 6) + 2;
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"strip\" width=\"" << std::max(width, 20)
      << "\" height=\"" << height << "\" role=\"img\">";
  for (int i = 0; i < n; ++i) {
    const ReportLayer& l = m.layers[static_cast<size_t>(i)];
    const int x = 2 + (i % kPerLine) * (kW + kGap), y = 2 + (i / kPerLine) * (kH + 6);
    const bool predicted = !l.predicted.empty();
    const Style style = StyleOf(l.state);
    std::string title = l.name + ": " + l.state;
    if (predicted)
      title +=
          " (PREDICTED " + l.predicted + ", confidence " + Fixed(l.predicted_confidence, 2) + ")";
    if (!l.problem.empty()) title += " " + l.problem;
    if (!l.detail.empty()) title += " — " + l.detail;
    svg << "<rect class=\"layer\" data-state=\"" << l.state << "\" x=\"" << x << "\" y=\"" << y
        << "\" width=\"" << kW << "\" height=\"" << kH << "\" fill=\"" << style.fill
        << "\" stroke=\"" << (predicted ? StyleOf(l.predicted).fill : "#555")
        << "\" stroke-width=\"" << (predicted ? 2.5 : 0.5) << "\""
        << (predicted ? " stroke-dasharray=\"3 2\"" : "") << ">"
        << "<title>" << Escape(title) << "</title></rect>";
  }
  svg << "</svg>";
  return svg.str();
}

void Summary(std::ostringstream& out, const StackReport& s, const std::string& anchor) {
  out << "<section id=\"" << anchor << "-summary\" class=\"summary\"><h3>Summary</h3>";
  out << "<p>" << s.verdicts.size() << " verdict" << (s.verdicts.size() == 1 ? "" : "s") << " of "
      << s.problems << " problem" << (s.problems == 1 ? "" : "s");
  if (static_cast<int64_t>(s.verdicts.size()) != s.stack_verdicts)
    out << " (of the stack's " << s.stack_verdicts << ")";
  out << ".</p><table><tr><th>verdict</th><th>count</th></tr>";
  for (const auto& [kind, n] : s.counts)
    out << "<tr><td>" << Swatch(kind) << kind << "</td><td class=\"num\">" << n << "</td></tr>";
  out << "</table>";
  for (const auto* part : {&s.failing, &s.working}) {
    out << "<h4>"
        << (part == &s.failing ? "Configurations that fail" : "Known working configurations")
        << "</h4>";
    if (part->empty()) {
      out << "<p class=\"note\">None among these verdicts.</p>";
      continue;
    }
    out << "<table><tr><th>c</th><th>k</th><th>input sizes</th><th>the rest</th><th>"
        << (part == &s.failing ? "status" : "median time") << "</th></tr>";
    for (const SizeGroup& g : *part) {
      std::string sizes;
      for (const std::string& z : g.sizes) sizes += (sizes.empty() ? "" : ", ") + z;
      out << "<tr><td class=\"num\">" << g.c << "</td><td class=\"num\">" << g.k << "</td><td>"
          << Escape(sizes) << "</td><td>" << Escape(g.rest) << "</td><td>";
      if (part == &s.failing) {
        out << Swatch(g.kind) << g.kind;
      } else if (g.time_ms_max > 0) {
        out << Fixed(g.time_ms_min, 3)
            << (Fixed(g.time_ms_min, 3) == Fixed(g.time_ms_max, 3) ? ""
                                                                   : "-" + Fixed(g.time_ms_max, 3))
            << " ms";
      } else {
        out << "-";
      }
      out << "</td></tr>";
    }
    out << "</table>";
  }
  out << "</section>";
}

void HeatMaps(std::ostringstream& out, const StackReport& s, const std::string& anchor) {
  out << "<section id=\"" << anchor
      << "-heatmaps\" class=\"heatmaps\"><h3>Verdicts over spatial "
         "size, per channel pair</h3><p class=\"note\">One cell per verdict: columns are input "
         "sizes (h x w), rows the rest of the problem and the algorithm. Select a cell for its "
         "evidence.</p>";
  std::map<std::pair<int64_t, int64_t>, std::vector<Cell>> by_pair;
  std::vector<Cell> unparsed;
  for (size_t i = 0; i < s.verdicts.size(); ++i) {
    const Verdict& v = s.verdicts[i];
    StatusOr<Problem> p = ParseProblem(v.problem, TextForm::kCanonical);
    Cell cell{i, &v, "", "", 0, 0};
    if (!p.ok()) {
      cell.row = v.problem + " / " + v.algorithm;
      cell.column = "?";
      unparsed.push_back(cell);
      continue;
    }
    cell.row = report_labels::RestOf(*p) + " / " + v.algorithm;
    cell.column = report_labels::SizeOf(*p);
    cell.area = p->h * p->w;
    cell.h = p->h;
    by_pair[{p->c, p->k}].push_back(cell);
  }
  for (const auto& [pair, cells] : by_pair)
    out << "<figure><figcaption>c " << pair.first << " &rarr; k " << pair.second << "</figcaption>"
        << HeatMap(anchor, cells) << "</figure>";
  if (!unparsed.empty())
    out << "<figure><figcaption>problems in another form</figcaption>" << HeatMap(anchor, unparsed)
        << "</figure>";
  out << "</section>";
}

void Models(std::ostringstream& out, const StackReport& s, const std::string& anchor) {
  out << "<section id=\"" << anchor << "-models\" class=\"models\"><h3>Models</h3>";
  if (s.models.empty()) {
    out << "<p class=\"note\">No model given: <code>convguard report --model FILE</code> (an ONNX "
           "model, a MIOpen log or a layers file) adds its layer strip.</p></section>";
    return;
  }
  out << "<p class=\"note\">One bar per layer, in the model's order; a dashed border is the "
         "learned pattern's PREDICTED verdict for a layer the store does not know (never "
         "stored).</p>";
  for (const ReportModel& m : s.models) {
    out << "<h4>" << Escape(m.origin) << " &mdash; " << Escape(m.status) << "</h4><p>"
        << Escape(m.notes) << "</p>" << ModelStrip(m);
    bool any = false;
    for (const ReportLayer& l : m.layers) any = any || l.state != "OK";
    if (!any) continue;
    out << "<table><tr><th>layer</th><th>state</th><th>problem</th><th>exact plan</th>"
           "<th>detail</th></tr>";
    for (const ReportLayer& l : m.layers) {
      if (l.state == "OK") continue;
      std::string state = l.state;
      if (!l.predicted.empty())
        state +=
            " (PREDICTED " + l.predicted + ", confidence " + Fixed(l.predicted_confidence, 2) + ")";
      out << "<tr><td>" << Escape(l.name) << "</td><td>" << Swatch(l.state) << Escape(state)
          << "</td><td><code>" << Escape(l.problem) << "</code></td><td>"
          << Escape(!l.plan.empty() ? l.plan
                    : l.state == "UNKNOWN" || l.state == "UNSUPPORTED"
                        ? std::string("-")
                        : "none from stored verdicts")
          << "</td><td>" << Escape(l.detail) << "</td></tr>";
    }
    out << "</table>";
  }
  out << "</section>";
}

void PatternSection(std::ostringstream& out, const StackReport& s, const std::string& anchor) {
  out << "<section id=\"" << anchor << "-pattern\" class=\"pattern\"><h3>Learned pattern</h3>";
  if (!s.pattern) {
    out << "<p>None: " << Escape(s.no_pattern) << ".</p></section>";
    return;
  }
  const Pattern& p = *s.pattern;
  out << "<p>Learned from " << p.train_verdicts << " verdicts, " << p.held_out_verdicts
      << " held out. Errors of the printed rules: training " << p.train_errors << " of "
      << p.train_verdicts << ", held out " << p.held_out_errors << " of " << p.held_out_verdicts
      << ".</p>";
  if (!p.rules.empty()) {
    out << "<table><tr><th>rule</th><th>covers</th><th>wrong</th><th>held out covers</th>"
           "<th>held out wrong</th></tr>";
    for (const LearnedRule& r : p.rules)
      out << "<tr><td><code>" << Escape(r.fault + " when " + r.predicate)
          << "</code></td><td class=\"num\">" << r.train_covered << "</td><td class=\"num\">"
          << r.train_wrong << "</td><td class=\"num\">" << r.held_out_covered
          << "</td><td class=\"num\">" << r.held_out_wrong << "</td></tr>";
    out << "</table>";
  }
  out << "<p>The rules file (<code>--inject</code> reproduces it on the reference "
         "backend):</p><pre>"
      << Escape(p.RulesText()) << "</pre></section>";
}

void Recommendations(std::ostringstream& out, const StackReport& s, const std::string& anchor) {
  out << "<section id=\"" << anchor
      << "-recommendations\" class=\"recommendations\"><h3>"
         "Recommendation</h3><ul>";
  for (const Recommendation& r : s.recommendations) {
    out << "<li>" << Escape(r.headline);
    if (!r.reasons.empty()) {
      out << "<ul>";
      for (const std::string& why : r.reasons) out << "<li>" << Escape(why) << "</li>";
      out << "</ul>";
    }
    out << "</li>";
  }
  out << "</ul></section>";
}

void Evidence(std::ostringstream& out, const StackReport& s, const std::string& anchor) {
  out << "<section id=\"" << anchor << "-evidence\" class=\"evidence\"><h3>Evidence</h3>"
      << "<table><tr><th>#</th><th>verdict</th><th>problem</th><th>algorithm</th><th>median ms</th>"
         "<th>attempts</th><th>deadline ms</th><th>elapsed ms</th><th>check</th><th>recorded</th>"
         "<th>message</th><th>repro</th></tr>";
  for (size_t i = 0; i < s.verdicts.size(); ++i) {
    const Verdict& v = s.verdicts[i];
    const std::string kind(VerdictName(v.kind));
    out << "<tr id=\"" << anchor << "-v" << i << "\"><td class=\"num\">" << i
        << "</td><td class=\"verdict\">" << Swatch(kind) << kind << "</td><td><code>"
        << Escape(v.problem) << "</code></td><td>" << Escape(v.algorithm)
        << "</td><td class=\"num\">" << (v.time_ms_median > 0 ? Fixed(v.time_ms_median, 3) : "-")
        << "</td><td class=\"num\">" << v.attempts << "</td><td class=\"num\">"
        << Fixed(v.deadline_ms, 0) << "</td><td class=\"num\">" << Fixed(v.elapsed_ms, 0)
        << "</td><td>" << Escape(v.check) << "</td><td>" << Escape(v.recorded_at) << " (convguard "
        << Escape(v.tool_version) << ")</td><td>" << Escape(v.message) << "</td><td><code>"
        << Escape(v.repro) << "</code></td></tr>";
  }
  out << "</table></section>";
}

}  // namespace

std::string ReportToHtml(const Report& report) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      << "<title>convguard report: " << Escape(report.store_label) << "</title><style>" << kCss
      << "</style></head><body>\n<header><h1>convguard report</h1><p class=\"meta\">Store "
      << Escape(report.store_label) << "; filters: " << Escape(report.filters) << "; convguard "
      << Escape(report.tool_version)
      << ". Verdicts are observations; PREDICTED marks what the "
         "learned pattern expects where nothing was probed.</p><p class=\"legend\">";
  for (const char* state : {"OK", "SLOW", "HANG", "CRASH", "WRONG", "MISTRUSTED", "ERROR",
                            "UNSUPPORTED", "OOM", "UNKNOWN"})
    out << "<span>" << Swatch(state) << state << "</span>";
  out << "</p><nav><ul>";
  for (size_t i = 0; i < report.stacks.size(); ++i)
    out << "<li><a href=\"#s" << i << "\">stack " << report.stacks[i].stack.Id()
        << "</a>: " << Escape(report.stacks[i].stack.Summary()) << "</li>";
  out << "</ul></nav></header>\n";
  for (size_t i = 0; i < report.stacks.size(); ++i) {
    const StackReport& s = report.stacks[i];
    const std::string anchor = "s" + std::to_string(i);
    out << "<article class=\"stack\" id=\"" << anchor << "\"><h2>stack " << s.stack.Id()
        << "</h2><p>" << Escape(s.stack.Summary()) << "</p>";
    if (s.stack.is_emulated())
      out << "<p class=\"emulation\"><strong>EMULATION</strong>: " << Escape(s.stack.emulation)
          << "</p>";
    Summary(out, s, anchor);
    HeatMaps(out, s, anchor);
    Models(out, s, anchor);
    PatternSection(out, s, anchor);
    Recommendations(out, s, anchor);
    Evidence(out, s, anchor);
    out << "</article>\n";
  }
  for (const std::string& n : report.notes)
    out << "<p class=\"note\">Note: " << Escape(n) << "</p>";
  out << "</body></html>\n";
  return out.str();
}

}  // namespace convguard
