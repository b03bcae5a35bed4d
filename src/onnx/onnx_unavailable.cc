// convguard/onnx.h in a build without ONNX (libonnx-dev and libprotobuf-dev were not
// found when it was configured): reading and writing models say so.
#include "convguard/onnx.h"

namespace convguard {
namespace {

Status NotBuilt() {
  return Status::Unsupported(
      "this convguard was built without ONNX support (install libonnx-dev and libprotobuf-dev, "
      "then "
      "configure again)");
}

}  // namespace

bool OnnxSupported() { return false; }

StatusOr<ModelConvs> ReadOnnxModel(const std::string&, const OnnxReadOptions&) {
  return NotBuilt();
}

StatusOr<OnnxFixReport> WriteFixedOnnxModel(const std::string&, const OnnxReadOptions&,
                                            const std::vector<OnnxConvFix>&, const std::string&) {
  return NotBuilt();
}

}  // namespace convguard
