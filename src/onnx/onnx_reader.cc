// Reading an ONNX model's convolutions (convguard/onnx.h).
#include "convguard/onnx.h"
#include "onnx/onnx_model.h"
#include "onnx/onnx_structure.h"

namespace convguard {

bool OnnxSupported() { return true; }

namespace {

ModelConvs ConvsOf(const onnx_internal::LoadedModel& m) {
  ModelConvs out;
  out.origin = m.origin;
  out.format = "onnx";
  out.notes = m.notes;
  const auto& graph = m.model.graph();
  for (int i = 0; i < graph.node_size(); ++i) {
    if (onnx_internal::IsConvolution(graph.node(i)))
      out.convs.push_back(onnx_internal::ConvOfNode(m, i));
  }
  return out;
}

}  // namespace

StatusOr<ModelConvs> ReadOnnxModel(const std::string& path, const OnnxReadOptions& options) {
  // The convolutions need the graph and the tensors' shapes, not the weights.
  CG_ASSIGN_OR_RETURN(std::string structure, onnx_internal::ReadModelStructure(path));
  CG_ASSIGN_OR_RETURN(onnx_internal::LoadedModel m,
                      onnx_internal::LoadModelBytes(structure, path, options));
  return ConvsOf(m);
}

StatusOr<ModelConvs> ReadOnnxModelBytes(std::string_view bytes, const std::string& origin,
                                        const OnnxReadOptions& options) {
  CG_ASSIGN_OR_RETURN(std::string structure, onnx_internal::ModelStructureOfBytes(bytes, origin));
  CG_ASSIGN_OR_RETURN(onnx_internal::LoadedModel m,
                      onnx_internal::LoadModelBytes(structure, origin, options));
  return ConvsOf(m);
}

}  // namespace convguard
