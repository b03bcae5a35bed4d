// convguard/onnx.h — ONNX models: their convolutions, and fixed models written back.
//
// Reading: the model is parsed (ONNX 1.12's protobuf; opsets up to the one the library
// knows), shapes are inferred, and every Conv becomes a ModelConv with its real input
// shape, strides, dilations, groups and pads (auto_pad SAME_UPPER/SAME_LOWER/VALID
// resolved to explicit, possibly asymmetric pads). ConvTranspose, 1-D and 3-D
// convolutions and convolutions of integer types are listed as not yet supported, with
// the reason. Dynamic dimensions are fixed from OnnxReadOptions::inputs; a dynamic batch
// dimension left unset is taken as 1 and said in the notes; any other dynamic dimension
// left unset is an error naming the input and how to set it.
//
// Writing: WriteFixedOnnxModel replaces each Conv given a plan by the plan written in
// standard operators (Conv, Slice, Pad on the channel axis, Concat), following the
// rewrites' forward pieces (src/rewrite/rewrite.h): channel padding becomes zero filters
// or zero input channels inside new initializers, spatial tiles are Slices of the input
// with their halos (never a spatial Pad, which runtimes fuse back into the next Conv's
// pads), batch chunks and group blocks are Slices, and the pieces' outputs are
// concatenated into the original node's output. Node and initializer names derive from
// the original node's. The written model passes the ONNX checker.
//
// Errors are values: a file that is not an ONNX model, a truncated or corrupted one, an
// opset newer than the library, an op no schema knows, a missing external-data file,
// a shape that cannot be inferred: kInvalidArgument (kNotFound for a missing file), one
// line naming the file and what is wrong. Nothing is written on error.
//
// Builds without ONNX (CONVGUARD_HAVE_ONNX unset) answer kUnsupported saying so.
//
// Thread-safety: functions of their arguments and the files they read and write.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/model.h"
#include "convguard/plan.h"
#include "convguard/status.h"

namespace convguard {

// A fixed shape for a graph input, as --input NAME=1x3x224x224 gives it.
struct OnnxInputShape {
  std::string name;
  std::vector<int64_t> dims;
};
// Parses "NAME=1x3x224x224" (every dimension >= 1). kInvalidArgument naming the text.
StatusOr<OnnxInputShape> ParseOnnxInputShape(std::string_view text);

struct OnnxReadOptions {
  std::vector<OnnxInputShape> inputs;  // shapes for inputs with dynamic dimensions
};

// Whether this build reads and writes ONNX (libonnx and protobuf were found).
bool OnnxSupported();

// Whether `bytes` (a file's first bytes) look like an ONNX model: a protobuf ModelProto.
// A heuristic for choosing a reader; ReadOnnxModel decides for real.
bool LooksLikeOnnx(std::string_view bytes);

// The model's convolutions in graph order (ModelConv::node is the node's position).
StatusOr<ModelConvs> ReadOnnxModel(const std::string& path, const OnnxReadOptions& options = {});
// The same for a model already in memory; `origin` names it in messages, and external
// data is looked for next to it.
StatusOr<ModelConvs> ReadOnnxModelBytes(std::string_view bytes, const std::string& origin,
                                        const OnnxReadOptions& options = {});

// One Conv node to replace by its plan (a forward plan for that node's problem).
struct OnnxConvFix {
  int64_t node = -1;  // the node's position in the graph, as ModelConv::node
  Plan plan;
};

struct OnnxFixReport {
  // One line per replaced node: "node 'conv2' (n1_c16_..._fwd): pad-input-channels c=16->17;
  // 1 Conv, 1 Pad, 0 Slice, 0 Concat".
  std::vector<std::string> changes;
  int64_t nodes_removed = 0;
  int64_t nodes_added = 0;
  int64_t initializers_added = 0;
};

// Writes `in` with every node of `fixes` replaced by its plan to `out` (which must not
// be `in`). Every leaf of a plan must run natively (no algorithm choice and no other
// backend, which an ONNX file cannot express), and the node's weights (and bias) must be
// float32 initializers in the file. Errors name the node.
StatusOr<OnnxFixReport> WriteFixedOnnxModel(const std::string& in, const OnnxReadOptions& options,
                                            const std::vector<OnnxConvFix>& fixes,
                                            const std::string& out);

}  // namespace convguard
