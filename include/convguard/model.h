// convguard/model.h — a model as convguard sees it: the convolutions it runs.
//
// A model reaches convguard as an ONNX file (convguard/onnx.h) or as an application's
// MIOpen command log (convguard/problem_source.h); both become a list of ModelConv, in
// the model's own order, each with the problem convguard probes and plans for it or the
// reason it cannot express it yet. Nothing is dropped silently: a convolution convguard
// cannot read is listed with its reason.
//
// Thread-safety: value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "convguard/problem.h"

namespace convguard {

struct ModelConv {
  std::string name;   // the node's name ("Conv#7" for an unnamed node), or "line N" of a log
  std::string op;     // "Conv", "ConvTranspose", ... or the MIOpenDriver command ("conv")
  int64_t node = -1;  // ONNX: the node's position in the graph; logs: -1
  // The forward problem; none when convguard cannot express this convolution (then
  // `unsupported` says why).
  std::optional<Problem> problem;
  std::string unsupported;
  int64_t calls = 1;  // how often the model runs it (a log's repeated lines)
};

struct ModelConvs {
  std::string origin;  // the file read
  std::string format;  // "onnx" or "miopen-log"
  std::vector<ModelConv> convs;
  // What the reader assumed or skipped, for the report (e.g. "input 'x': batch 1 assumed
  // for the dynamic dimension 'batch'", "1234 lines without a convolution skipped").
  std::vector<std::string> notes;
  // An MIOpen log: the SequenceDigest (convguard/sequence.h) of its calls in log order,
  // which names the sequence `convguard replay` ran for it; "" for other formats.
  std::string sequence_digest;
};

}  // namespace convguard
