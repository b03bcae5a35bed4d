// onnx/onnx_structure.h — an ONNX model's structure without its large tensor payloads,
// read straight from the protobuf wire format.
//
// Why: listing a model's convolutions needs its graph, its attributes and its tensors'
// shapes, never its weights; a ResNet-50 file is 100 MB of weights around 100 KB of
// graph. Parsing the whole file costs a third of a second and twice its size in memory,
// which is most of a scan whose verdicts are all in the store. This reader walks the
// ModelProto field by field and seeks past the data fields of every tensor that encodes to
// more than kLargeTensorBytes, so those bytes are never read from the file. Small tensors
// (Reshape shapes, Pad pads, Resize scales: what shape inference reads) keep their data.
//
// The result parses as a ModelProto whose large tensors have their dims, type, name and
// external-data entries but no values. It is for reading only: writing a model (the
// fixer) parses the whole file.
//
// Untrusted input: every length is checked against its enclosing message, nesting deeper
// than kMaxNesting is refused, and any error is one line naming the file.
//
// Thread-safety: functions of their arguments and the file they read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "convguard/status.h"

namespace convguard::onnx_internal {

// A tensor that encodes to more than this many bytes loses its data fields.
inline constexpr int64_t kLargeTensorBytes = 64 * 1024;
// Graphs inside attributes inside graphs (If, Loop, Scan bodies) nest at most this deep.
inline constexpr int kMaxNesting = 32;

// The structure of the model in file `path`. kNotFound for a missing file,
// kInvalidArgument for a directory or bytes that are not a well-formed protobuf message,
// kIOError for a read error.
StatusOr<std::string> ReadModelStructure(const std::string& path);

// The same from bytes in memory; `origin` names them in messages.
StatusOr<std::string> ModelStructureOfBytes(std::string_view bytes, const std::string& origin);

}  // namespace convguard::onnx_internal
