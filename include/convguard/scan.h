// convguard/scan.h — a model's convolutions against a stack: will it run, and how.
//
// A scan takes a model's convolutions (convguard/model.h: from an ONNX file or a MIOpen
// log), the stack a backend presents (IdentifyStacks), and the store, and answers per
// layer and per model in the seed report's words: works as is / works with exact
// rewrites (how many layers, which rewrites, predicted cost) / blocked (why) / unknown
// (what was not probed). Identical problems are looked up and probed once.
//
// What a layer's state means:
//   OK          every verdict the store has for its problem on the stack is OK;
//   BAD         some verdict is not OK (the worst is named: HANG, CRASH, WRONG, ...): a
//               framework that picks its own algorithm may hit it, so the layer needs
//               an exact plan whose every leaf is OK with no bad verdict at all;
//   UNKNOWN     the store has no verdict (probe with ScanOptions::probe);
//   UNSUPPORTED convguard cannot express the convolution yet (ConvTranspose, 1-D, 3-D).
// Verdicts are observations; a scan never guesses. (Predictions come from the learned
// pattern and are labelled PREDICTED wherever they appear.)
//
// Thread-safety: ScanModel uses the store and starts workers from the calling thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "convguard/model.h"
#include "convguard/onnx.h"
#include "convguard/plan.h"
#include "convguard/probe.h"
#include "convguard/sequence_verdict.h"
#include "convguard/status.h"
#include "convguard/store.h"

namespace convguard {

// ---- reading a model ----

enum class ModelFormat { kAuto, kOnnx, kMiopenLog, kLayers };

struct ModelReadOptions {
  // kAuto: an ONNX model or a layers file (convguard/problem_source.h) by its first
  // bytes, else a log.
  ModelFormat format = ModelFormat::kAuto;
  OnnxReadOptions onnx;  // shapes of dynamic ONNX inputs
};

// A model's convolutions from an ONNX file, a MIOpen log or a layers file. Errors: as
// ReadOnnxModel, ReadMiopenLog and ReadLayersFile; with kAuto, a file that is none of
// them says what each reader expected.
StatusOr<ModelConvs> ReadModel(const std::string& path, const ModelReadOptions& options = {});

// ---- scanning ----

struct ScanOptions {
  // Also the backward-data and backward-weights problems of every layer: frameworks
  // choose their algorithms again for the backward pass, so training needs all three.
  bool training = false;
  // Probe problems the store does not know, now, in workers under the watchdog; and let
  // the planner probe the sub-problems of plans for bad layers.
  bool probe = false;
  // How the stack is identified and probed (backend, worker, deadlines, fault rules).
  ProbeOptions probe_options;
  // Plans for bad layers. ScanModel sets allow_algorithm_choice to false (a model cannot
  // choose its algorithms) and plans on the primary stack only.
  PlannerOptions planner;
};

enum class LayerState { kOk, kBad, kUnknown, kUnsupported };
std::string_view LayerStateName(LayerState s);  // "OK", "BAD", "UNKNOWN", "UNSUPPORTED"

struct ScannedProblem {
  Problem problem;
  LayerState state = LayerState::kUnknown;
  std::string verdict;  // the worst verdict's name ("HANG"), "OK", or "" when none
  std::string detail;   // the worst verdict's message, first line
  // BAD: the exact plan that runs it anyway, or why there is none. With training, a
  // layer's plan is its forward problem's, planned so that every leaf is OK in all three
  // directions (PlannerOptions::backward_too): a framework differentiates the forward
  // plan, so its backward problems are the leaves' own. The forward problem then carries
  // the plan whenever the layer is BAD, even when the forward problem itself is OK, and a
  // bad backward problem has none of its own (by_forward_plan says so).
  std::optional<Plan> plan;
  std::string no_plan;
  bool by_forward_plan = false;
  // UNKNOWN: what the stack's learned pattern (convguard/pattern.h) predicts, when the
  // store holds enough verdicts of the stack to learn one. Never stored, never a verdict:
  // the state stays UNKNOWN.
  std::string predicted;  // a verdict name ("HANG"), or "" when none
  double predicted_confidence = 0.0;
  std::string predicted_rule;  // the rule that matched, or "" (predicted OK: no rule)
};

struct ScannedLayer {
  ModelConv conv;
  std::vector<ScannedProblem> problems;         // forward first; then backward-data, -weights
  LayerState state = LayerState::kUnsupported;  // the worst of its problems
  // The layer's plan when it is BAD (or nullptr when it has none): the plan of its bad
  // problem, or with training of its forward problem.
  const ScannedProblem* fix() const;
};

enum class ModelOutcome { kWorks, kWorksWithRewrites, kBlocked, kUnknown };

struct ScanReport {
  std::string origin;
  std::string format;
  StackChoice stack;
  bool emulated = false;  // the stack is an emulation (every output says so)
  bool training = false;
  std::vector<ScannedLayer> layers;
  int64_t distinct_problems = 0;
  int64_t probed = 0;  // probes this scan ran
  std::vector<std::string> notes;
  ModelOutcome outcome = ModelOutcome::kUnknown;
  std::string answer;  // one line, e.g. "works with exact rewrites: 2 of 7 layers ..."
  // An MIOpen log: the stack's sequence verdicts (convguard/replay.h) about it. `replayed`:
  // the latest replay of exactly this log's calls (none: never replayed); `related`:
  // failing sequences replayed from elsewhere whose minimal failing sequence uses only
  // problems this log runs too, so it may fail the same way.
  std::optional<SequenceVerdict> replayed;
  std::vector<SequenceVerdict> related;
};

// Scans `model` on the stack of options.probe_options.backend. Errors: the stack cannot
// be identified (a worker does not start), store errors, probe errors.
StatusOr<ScanReport> ScanModel(const ModelConvs& model, const ScanOptions& options, Store& store,
                               ProbeCallbacks callbacks = {});

// The report as a terminal table, as Markdown, and as JSON.
std::string ScanReportToText(const ScanReport& report);
std::string ScanReportToMarkdown(const ScanReport& report);
std::string ScanReportToJson(const ScanReport& report);

// Several models in one table, one row each (the seed report's "Models That Work"): the
// model, its status, its layers by state, and which rewrites the bad ones need.
std::string ScanSummaryToText(const std::vector<ScanReport>& reports);
std::string ScanSummaryToMarkdown(const std::vector<ScanReport>& reports);
std::string ScanSummaryToJson(const std::vector<ScanReport>& reports);

}  // namespace convguard
