// Reading an ONNX model's convolutions (convguard/onnx.h).
#include "convguard/onnx.h"
#include "onnx/onnx_model.h"

namespace convguard {

bool OnnxSupported() { return true; }

StatusOr<ModelConvs> ReadOnnxModel(const std::string& path, const OnnxReadOptions& options) {
  CG_ASSIGN_OR_RETURN(onnx_internal::LoadedModel m, onnx_internal::LoadModel(path, options));
  ModelConvs out;
  out.origin = path;
  out.format = "onnx";
  out.notes = m.notes;
  const auto& graph = m.model.graph();
  for (int i = 0; i < graph.node_size(); ++i) {
    if (onnx_internal::IsConvolution(graph.node(i)))
      out.convs.push_back(onnx_internal::ConvOfNode(m, i));
  }
  return out;
}

}  // namespace convguard
