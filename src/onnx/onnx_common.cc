// What every build has of convguard/onnx.h, with or without the ONNX library: input
// shapes and recognising a model file.
#include <charconv>

#include "convguard/onnx.h"

namespace convguard {

bool LooksLikeOnnx(std::string_view bytes) {
  // A ModelProto starts with its first field's tag: ir_version (field 1, varint: 0x08)
  // in every exporter seen; a text file or log starts otherwise.
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x08 &&
         static_cast<unsigned char>(bytes[1]) < 0x80;
}

StatusOr<OnnxInputShape> ParseOnnxInputShape(std::string_view text) {
  const size_t eq = text.find('=');
  const std::string quoted = "'" + std::string(text) + "'";
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size()) {
    return Status::InvalidArgument("input shape " + quoted +
                                   " is not NAME=DIMS (e.g. input=1x3x224x224)");
  }
  OnnxInputShape shape;
  shape.name = std::string(text.substr(0, eq));
  std::string_view dims = text.substr(eq + 1);
  while (!dims.empty()) {
    const size_t x = dims.find('x');
    const std::string_view item = dims.substr(0, x);
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || value < 1) {
      return Status::InvalidArgument("input shape " + quoted + ": '" + std::string(item) +
                                     "' is not a dimension (allowed: integers >= 1 joined by 'x')");
    }
    shape.dims.push_back(value);
    if (x == std::string_view::npos) break;
    dims.remove_prefix(x + 1);
    if (dims.empty()) return Status::InvalidArgument("input shape " + quoted + " ends with 'x'");
  }
  return shape;
}

}  // namespace convguard
