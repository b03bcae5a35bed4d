// onnx/onnx_model.h — an ONNX model loaded for convguard: parsed, checked, its dynamic
// input dimensions fixed and its shapes inferred. Private to src/onnx: ONNX's and
// protobuf's headers stay in this folder.
//
// Every ONNX and protobuf call that can throw is made here or in the fixer, inside a
// try block: exceptions never leave src/onnx (they become Status values).
//
// Thread-safety: a LoadedModel is a value; loading touches only the file and ONNX's
// schema registry (read-only after its first use).
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "convguard/model.h"
#include "convguard/onnx.h"
#include "convguard/status.h"

namespace convguard::onnx_internal {

struct LoadedModel {
  ONNX_NAMESPACE::ModelProto model;  // inputs' dynamic dimensions fixed, shapes inferred
  std::string origin;                // the path read
  // Static shapes and element types by value name (graph inputs, initializers, inferred
  // intermediate values, outputs). A value whose shape is not fully known is absent.
  std::map<std::string, std::vector<int64_t>> shapes;
  std::map<std::string, int32_t> element_types;
  std::vector<std::string> notes;
};

// Reads and checks `path`; see convguard/onnx.h for what is refused.
StatusOr<LoadedModel> LoadModel(const std::string& path, const OnnxReadOptions& options);
StatusOr<LoadedModel> LoadModelBytes(std::string_view bytes, const std::string& origin,
                                     const OnnxReadOptions& options);

// Whether node `index` is a convolution (of any kind convguard lists), and if so what
// convguard makes of it.
bool IsConvolution(const ONNX_NAMESPACE::NodeProto& node);
ModelConv ConvOfNode(const LoadedModel& m, int64_t index);

// A name or text from a model, fit for a one-line message: control and non-ASCII bytes as
// \xNN, cut to 120 bytes ("..." marks a cut). Models are untrusted input.
std::string Printable(std::string_view text);

// The display name of node `index` (Printable): its name, or "<op>#<index>" when it has
// none.
std::string NodeName(const ONNX_NAMESPACE::GraphProto& graph, int64_t index);

}  // namespace convguard::onnx_internal
