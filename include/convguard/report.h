// convguard/report.h — what a store knows, for people who would rather look than read.
//
// BuildReport reads the store (filtered by stack, backend and verdict, and restricted to
// the problems of given models) and gathers, per stack: its verdicts with their
// evidence, counts by kind, the problems that fail and those that work grouped the way
// the seed report tabled them (channels in -> out, input sizes, the rest of the problem),
// the learned pattern (convguard/pattern.h), per-model layer strips, and the
// recommendations of convguard/recommend.h. The Report*To* functions render it as a
// terminal summary, Markdown in the seed report's sections, JSON, CSV (one row per
// verdict) and one self-contained HTML page (inline CSS and SVG; no script, no network).
//
// Which verdicts each part uses:
//   - listings, tables, heat maps, evidence and CSV rows: the filtered verdicts;
//   - the pattern and the recommendations: every verdict of the stack, whatever the
//     filters (they describe the stack; a verdict filter would leave nothing to learn);
//   - model strips: every verdict of the stack for the model's problems; a problem the
//     store does not know is UNKNOWN, with the pattern's PREDICTED verdict when there is
//     a pattern (never stored, never counted as a verdict).
// Models are files the caller reads (ONNX, MIOpen log, layers file): the store keys
// verdicts by problem, not by model.
//
// Thread-safety: BuildReport reads the store from the calling thread; the rest are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "convguard/model.h"
#include "convguard/pattern.h"
#include "convguard/recommend.h"
#include "convguard/stack.h"
#include "convguard/status.h"
#include "convguard/store.h"
#include "convguard/verdict.h"

namespace convguard {

struct ReportOptions {
  std::optional<std::string> stack_id;  // only this stack
  std::optional<std::string> backend;   // only stacks of this backend ("cudnn", ...)
  std::vector<VerdictKind> kinds;       // only verdicts of these kinds (empty: all)
  // Per-model layer strips; and with models, listings keep only the models' problems
  // (their forward problems, and their backward problems when `training`).
  std::vector<ModelConvs> models;
  bool training = false;
  PatternOptions pattern;
  std::string store_label;  // how the report names the store (its path)
};

// A group of problems that differ only in spatial size: channels in -> out and the rest.
struct SizeGroup {
  int64_t c = 0, k = 0;
  std::string rest;                // "n1 3x3 pad 1 fwd", the fields other than c, k, h, w
  std::string kind;                // the verdict name shared by the group's sizes
  std::vector<std::string> sizes;  // "48x48", smallest first
  double time_ms_min = 0.0, time_ms_max = 0.0;  // OK groups: the range of median times
};

struct ReportLayer {
  std::string name;
  std::string problem;    // canonical forward problem, "" when unsupported
  std::string state;      // "OK", a verdict name ("HANG"), "UNKNOWN" or "UNSUPPORTED"
  std::string detail;     // the worst verdict's message, or why unsupported
  std::string predicted;  // UNKNOWN: the pattern's PREDICTED verdict, or ""
  double predicted_confidence = 0.0;
  int64_t calls = 1;
  // A misbehaving layer: the exact plan the store's verdicts give it (as `convguard scan`
  // plans a model: no algorithm choice; with training, leaves OK in all three directions),
  // e.g. "pad-output-channels k=64->65", or "" when the stored verdicts give none.
  std::string plan;
};

struct ReportModel {
  std::string origin, format;
  std::vector<ReportLayer> layers;
  // The seed report's words: "works" (every layer OK), "works with exact rewrites"
  // (every misbehaving layer has a plan from stored verdicts), "blocked" (some
  // misbehaving layer has none yet: `convguard scan --probe` probes for one), "unknown"
  // (no misbehaviour, some layer UNKNOWN), "unsupported" (no layer convguard can express).
  std::string status;
  std::string notes;  // "12 layers: 10 OK, 2 HANG; rewrites: 2 x pad-output-channels"
};

struct StackReport {
  StackFingerprint stack;
  int64_t stack_verdicts = 0;     // the stack's verdicts before filtering
  std::vector<Verdict> verdicts;  // the filtered verdicts, by problem then algorithm
  std::vector<std::pair<std::string, int64_t>> counts;  // by kind, most severe first
  int64_t problems = 0;                                 // distinct problems among `verdicts`
  std::vector<SizeGroup> failing;                       // problems whose worst verdict misbehaves
  std::vector<SizeGroup> working;                       // problems whose every verdict is OK
  std::optional<Pattern> pattern;
  std::string no_pattern;  // why there is none
  std::vector<ReportModel> models;
  std::vector<Recommendation> recommendations;
};

struct Report {
  std::string store_label;
  std::string filters;  // "stack=..., verdict=HANG" or "none"
  std::string tool_version;
  std::vector<StackReport> stacks;  // at least one, each with at least one verdict
  std::vector<std::string> notes;
};

// Errors (kInvalidArgument, each naming what the store holds): the store has no verdict;
// no stack matches the stack/backend filter; no verdict matches the filters. A stack with
// a single verdict is a report (its pattern says why there is none).
StatusOr<Report> BuildReport(Store& store, const ReportOptions& options);

std::string ReportToText(const Report& report);
std::string ReportToMarkdown(const Report& report);
std::string ReportToJson(const Report& report);
std::string ReportToCsv(const Report& report);
// One page: per stack a summary, SVG heat maps of verdicts over spatial size for each
// (c, k) pair (one cell per verdict, linked to its evidence), model layer strips, the
// learned rules, the recommendations, and the evidence table with repro lines.
std::string ReportToHtml(const Report& report);

}  // namespace convguard
