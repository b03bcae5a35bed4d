// Helpers shared by the rewrite tests: exact data and its reference result, running a
// node on it with a poisoned result tensor, bit-for-bit comparison, and building
// nodes (single rewrites or random compositions) over reference leaves.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "convguard/fill.h"
#include "convguard/problem.h"
#include "convguard/reference.h"
#include "convguard/status.h"
#include "convguard/tensor.h"
#include "convguard/text_forms.h"
#include "rewrite/reference_leaf.h"
#include "rewrite/rewrite.h"

namespace convguard::rewrite::testing {

// FillExact data for p (seeded) with the reference result in its result tensor.
inline ConvTensors<double> ExactCase(const Problem& p, uint64_t seed) {
  ConvTensors<double> t = ConvTensors<double>::Allocate(p);
  FillExact(p, seed, t);
  ReferenceConvolution(p, t);
  return t;
}

// The float32 tensors a node is handed: every member converted from `data` (exact for
// FillExact values), the result tensor poisoned with NaN so an unwritten element shows.
inline ConvTensors<float> PoisonedIo(const Problem& p, const ConvTensors<double>& data) {
  ConvTensors<float> io;
  ToFloatOperands(p, data, io);
  return io;
}

// "" when `result` is bit for bit the float32 of `expected`; otherwise where and how
// it first differs, and how many elements do.
inline std::string CompareBits(const Problem& p, const std::vector<float>& result,
                               const std::vector<double>& expected) {
  if (result.size() != expected.size()) return "result has the wrong size";
  int64_t differing = 0;
  std::string first;
  for (size_t i = 0; i < result.size(); ++i) {
    const auto want = static_cast<float>(expected[i]);
    if (std::bit_cast<uint32_t>(result[i]) == std::bit_cast<uint32_t>(want)) continue;
    if (differing++ == 0) {
      first = ResultView(p).Describe(static_cast<int64_t>(i)) + ": got " +
              std::to_string(result[i]) + " expected " + std::to_string(want);
    }
  }
  if (differing == 0) return "";
  return std::to_string(differing) + " of " + std::to_string(result.size()) +
         " elements differ, first " + first;
}

// Loads the weights of `data`, executes once, compares. "" on success.
inline std::string LoadRunCompare(ExecNode& node, const Problem& p,
                                  const ConvTensors<double>& data) {
  ConvTensors<float> io = PoisonedIo(p, data);
  Status st = node.LoadWeights(io.weight, io.bias);
  if (!st.ok()) return "LoadWeights: " + st.ToString();
  st = node.Execute(io);
  if (!st.ok()) return "Execute: " + st.ToString();
  return CompareBits(p, ResultTensor(p, io), ResultTensor(p, data));
}

// Executes without loading weights (they were loaded before), compares. "" on success.
inline std::string RunCompare(ExecNode& node, const Problem& p, const ConvTensors<double>& data) {
  ConvTensors<float> io = PoisonedIo(p, data);
  Status st = node.Execute(io);
  if (!st.ok()) return "Execute: " + st.ToString();
  return CompareBits(p, ResultTensor(p, io), ResultTensor(p, data));
}

inline std::string Describe(const Application& app) {
  std::string text = app.rewrite + " " + app.parameters + " -> {";
  for (size_t i = 0; i < app.children.size(); ++i) {
    text += (i ? ", " : "") + ToCanonical(app.children[i]) + " x" + std::to_string(app.runs[i]);
  }
  return text + "}";
}

// Builds `app` for p over one reference leaf per slot.
inline StatusOr<std::unique_ptr<ExecNode>> BuildOverLeaves(const Rewrite& rewrite, const Problem& p,
                                                           const Application& app) {
  return rewrite.Build(p, app, ReferenceLeaves(app));
}

// Builds a node for p whose top `depth` levels are rewrites chosen at random among all
// applicable candidates (a level with none becomes a leaf); leaves are references.
// `description` receives the tree, e.g. "batch-split n=2->1+1 [leaf, spatial-...]".
inline StatusOr<std::unique_ptr<ExecNode>> BuildRandomTree(const Problem& p, int depth,
                                                           std::mt19937_64& rng,
                                                           std::string& description) {
  std::vector<std::pair<const Rewrite*, Application>> options;
  if (depth > 0) {
    for (const Rewrite* rewrite : AllRewrites()) {
      for (Application& app : rewrite->Candidates(p)) options.emplace_back(rewrite, std::move(app));
    }
  }
  if (options.empty()) {
    description += "leaf";
    return std::unique_ptr<ExecNode>(new ReferenceLeaf(p));
  }
  const auto& [rewrite, app] = options[rng() % options.size()];
  description += app.rewrite + " " + app.parameters + " [";
  std::vector<std::unique_ptr<ExecNode>> children;
  for (size_t slot = 0; slot < app.children.size(); ++slot) {
    if (slot) description += ", ";
    CG_ASSIGN_OR_RETURN(std::unique_ptr<ExecNode> child,
                        BuildRandomTree(app.children[slot], depth - 1, rng, description));
    children.push_back(std::move(child));
  }
  description += "]";
  return rewrite->Build(p, app, std::move(children));
}

}  // namespace convguard::rewrite::testing
