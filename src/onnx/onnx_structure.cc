// An ONNX model's structure without its large tensor payloads (onnx/onnx_structure.h).
//
// The protobuf wire format: a message is a sequence of fields, each a varint tag (field
// number << 3 | wire type) and a value: a varint (type 0), 8 bytes (1), a varint length
// and that many bytes (2: strings, bytes, packed repeated numbers, sub-messages), or 4
// bytes (5). Types 3 and 4 (groups) are not in ONNX's schema. Field numbers below are
// onnx.proto's (ONNX 1.12, unchanged since IR version 3 for the ones used).
#include "onnx/onnx_structure.h"

#include <filesystem>
#include <fstream>

namespace convguard::onnx_internal {
namespace {

namespace fs = std::filesystem;

// The messages that can hold tensors, and how to reach them. Every other message and
// field is copied as it is.
enum class Kind { kModel, kGraph, kNode, kAttribute, kTensor };

// A sub-message field that is walked rather than copied; kTensor's data fields are the
// ones that may be left out.
bool SubMessage(Kind parent, uint32_t field, Kind& child) {
  switch (parent) {
    case Kind::kModel:
      if (field == 7) {
        child = Kind::kGraph;
        return true;
      }  // graph
      return false;
    case Kind::kGraph:
      if (field == 1) {
        child = Kind::kNode;
        return true;
      }  // node
      if (field == 5) {
        child = Kind::kTensor;
        return true;
      }  // initializer
      return false;
    case Kind::kNode:
      if (field == 5) {
        child = Kind::kAttribute;
        return true;
      }  // attribute
      return false;
    case Kind::kAttribute:
      if (field == 5 || field == 10) {
        child = Kind::kTensor;
        return true;
      }  // t, tensors
      if (field == 6 || field == 11) {
        child = Kind::kGraph;
        return true;
      }  // g, graphs
      return false;
    case Kind::kTensor: return false;
  }
  return false;
}

// TensorProto's value fields: float_data, int32_data, string_data, int64_data, raw_data,
// double_data, uint64_data.
bool TensorDataField(uint32_t field) {
  return field == 4 || field == 5 || field == 6 || field == 7 || field == 9 || field == 10 ||
         field == 11;
}

// Where the bytes come from: a file (skipping is a seek, so skipped bytes are never read)
// or memory.
class Source {
 public:
  virtual ~Source() = default;
  virtual bool ReadByte(uint8_t& byte) = 0;
  virtual bool Read(uint64_t n, std::string& out) = 0;  // appends n bytes
  virtual bool Skip(uint64_t n) = 0;
};

class FileSource final : public Source {
 public:
  explicit FileSource(std::ifstream& in) : in_(in) {}
  bool ReadByte(uint8_t& byte) override {
    const int c = in_.get();
    if (c == std::ifstream::traits_type::eof()) return false;
    byte = static_cast<uint8_t>(c);
    return true;
  }
  bool Read(uint64_t n, std::string& out) override {
    const size_t at = out.size();
    out.resize(at + n);
    in_.read(out.data() + at, static_cast<std::streamsize>(n));
    return static_cast<uint64_t>(in_.gcount()) == n;
  }
  bool Skip(uint64_t n) override {
    in_.seekg(static_cast<std::streamoff>(n), std::ios::cur);
    return static_cast<bool>(in_);
  }

 private:
  std::ifstream& in_;
};

class BytesSource final : public Source {
 public:
  explicit BytesSource(std::string_view bytes) : bytes_(bytes) {}
  bool ReadByte(uint8_t& byte) override {
    if (at_ >= bytes_.size()) return false;
    byte = static_cast<uint8_t>(bytes_[at_++]);
    return true;
  }
  bool Read(uint64_t n, std::string& out) override {
    if (n > bytes_.size() - at_) return false;
    out.append(bytes_.substr(at_, n));
    at_ += n;
    return true;
  }
  bool Skip(uint64_t n) override {
    if (n > bytes_.size() - at_) return false;
    at_ += n;
    return true;
  }

 private:
  std::string_view bytes_;
  size_t at_ = 0;
};

void AppendVarint(uint64_t value, std::string& out) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

class Walker {
 public:
  Walker(Source& source, const std::string& origin) : source_(source), origin_(origin) {}

  // Walks a message of `length` bytes of kind `kind`, appending what is kept to `out`.
  Status Message(uint64_t length, Kind kind, int depth, std::string& out) {
    if (depth > kMaxNesting) {
      return Status::InvalidArgument("model '" + origin_ + "' nests graphs more than " +
                                     std::to_string(kMaxNesting) + " deep");
    }
    const bool drop_data =
        kind == Kind::kTensor && length > static_cast<uint64_t>(kLargeTensorBytes);
    uint64_t left = length;
    while (left > 0) {
      uint64_t tag = 0;
      std::string tag_bytes;
      CG_RETURN_IF_ERROR(Varint(left, tag, &tag_bytes));
      const uint32_t field = static_cast<uint32_t>(tag >> 3);
      const uint32_t wire_type = static_cast<uint32_t>(tag & 7);
      if (field == 0 || tag >> 32 != 0) return Malformed();
      const bool keep = !(drop_data && TensorDataField(field));
      switch (wire_type) {
        case 0: {  // varint
          uint64_t value = 0;
          std::string value_bytes;
          CG_RETURN_IF_ERROR(Varint(left, value, &value_bytes));
          if (keep) out += tag_bytes + value_bytes;
          break;
        }
        case 1:  // fixed64
        case 5:  // fixed32
        {
          const uint64_t n = wire_type == 1 ? 8 : 4;
          if (n > left) return Malformed();
          left -= n;
          if (keep) {
            out += tag_bytes;
            if (!source_.Read(n, out)) return Malformed();
          } else if (!source_.Skip(n)) {
            return Malformed();
          }
          break;
        }
        case 2: {  // length-delimited
          uint64_t n = 0;
          std::string length_bytes;
          CG_RETURN_IF_ERROR(Varint(left, n, &length_bytes));
          if (n > left) return Malformed();
          left -= n;
          Kind child;
          if (!keep) {
            if (!source_.Skip(n)) return Malformed();
          } else if (SubMessage(kind, field, child)) {
            std::string inner;
            CG_RETURN_IF_ERROR(Message(n, child, depth + (child == Kind::kGraph ? 1 : 0), inner));
            out += tag_bytes;
            AppendVarint(inner.size(), out);
            out += inner;
          } else {
            out += tag_bytes + length_bytes;
            if (!source_.Read(n, out)) return Malformed();
          }
          break;
        }
        default: return Malformed();  // groups, or not a wire type
      }
    }
    return Status::Ok();
  }

  Status Malformed() const {
    return Status::InvalidArgument(
        "'" + origin_ +
        "' is not an ONNX model (protobuf could not read a ModelProto: truncated or corrupted?)");
  }

 private:
  // Reads a varint of at most 10 bytes within `left`, keeping its bytes in `raw`.
  Status Varint(uint64_t& left, uint64_t& value, std::string* raw) {
    value = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      uint8_t byte = 0;
      if (left == 0 || !source_.ReadByte(byte)) return Malformed();
      --left;
      raw->push_back(static_cast<char>(byte));
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return Status::Ok();
    }
    return Malformed();
  }

  Source& source_;
  const std::string& origin_;
};

}  // namespace

StatusOr<std::string> ReadModelStructure(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found)
    return Status::NotFound("model '" + path + "' does not exist");
  if (fs::is_directory(st))
    return Status::InvalidArgument("model '" + path + "' is a directory, not a file");
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return Status::IOError("cannot read the size of model '" + path + "': " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot open model '" + path + "'");
  FileSource source(in);
  Walker walker(source, path);
  std::string out;
  if (Status s = walker.Message(size, Kind::kModel, 0, out); !s.ok()) {
    if (in.bad()) return Status::IOError("error while reading model '" + path + "'");
    return s;
  }
  return out;
}

StatusOr<std::string> ModelStructureOfBytes(std::string_view bytes, const std::string& origin) {
  BytesSource source(bytes);
  Walker walker(source, origin);
  std::string out;
  CG_RETURN_IF_ERROR(walker.Message(bytes.size(), Kind::kModel, 0, out));
  return out;
}

}  // namespace convguard::onnx_internal
