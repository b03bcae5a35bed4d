// Loading an ONNX model and reading its convolutions.
#include "onnx/onnx_model.h"

#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <set>
#include <tuple>

#include "convguard/text_forms.h"

namespace convguard::onnx_internal {
namespace {

namespace fs = std::filesystem;
using ONNX_NAMESPACE::AttributeProto;
using ONNX_NAMESPACE::GraphProto;
using ONNX_NAMESPACE::ModelProto;
using ONNX_NAMESPACE::NodeProto;
using ONNX_NAMESPACE::TensorProto;
using ONNX_NAMESPACE::TensorShapeProto;
using ONNX_NAMESPACE::ValueInfoProto;

bool IsDefaultDomain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

StatusOr<std::string> ReadBytes(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found)
    return Status::NotFound("model '" + path + "' does not exist");
  if (fs::is_directory(st))
    return Status::InvalidArgument("model '" + path + "' is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot open model '" + path + "'");
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return Status::IOError("error while reading model '" + path + "'");
  return bytes;
}

// The opset the model imports for `domain`; 0 when it imports none.
int64_t ImportedOpset(const ModelProto& m, const std::string& domain) {
  for (const auto& opset : m.opset_import()) {
    if (opset.domain() == domain || (IsDefaultDomain(opset.domain()) && IsDefaultDomain(domain))) {
      return opset.version();
    }
  }
  return 0;
}

// Only the opsets of domains the graph's nodes use matter: runtimes list every domain they
// know when they save a model, used or not.
Status CheckOpsets(const ModelProto& m, const std::string& origin) {
  const auto& ranges = ONNX_NAMESPACE::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  std::set<std::string> used;
  for (const NodeProto& node : m.graph().node())
    used.insert(IsDefaultDomain(node.domain()) ? "" : node.domain());
  for (const auto& opset : m.opset_import()) {
    const std::string domain = IsDefaultDomain(opset.domain()) ? "" : opset.domain();
    if (used.count(domain) == 0) continue;
    const auto it = ranges.find(domain);
    if (it == ranges.end()) continue;  // a custom domain: its ops are checked one by one
    if (opset.version() > it->second.second) {
      return Status::InvalidArgument(
          "model '" + origin + "' uses opset " + std::to_string(opset.version()) + " of " +
          (domain.empty() ? std::string("ai.onnx") : domain) + "; this build reads opsets up to " +
          std::to_string(it->second.second) + " (ONNX 1.12)");
    }
  }
  return Status::Ok();
}

Status CheckOpsKnown(const ModelProto& m, const std::string& origin) {
  const GraphProto& g = m.graph();
  for (int i = 0; i < g.node_size(); ++i) {
    const NodeProto& node = g.node(i);
    const std::string domain = IsDefaultDomain(node.domain()) ? "" : node.domain();
    const int64_t version = ImportedOpset(m, domain);
    if (ONNX_NAMESPACE::OpSchemaRegistry::Schema(node.op_type(), static_cast<int>(version),
                                                 domain) == nullptr) {
      return Status::InvalidArgument(
          "model '" + origin + "': node '" + NodeName(g, i) + "' uses op '" +
          Printable((domain.empty() ? "" : domain + "::") + node.op_type()) + "', which no " +
          "ONNX 1.12 schema of opset " + std::to_string(version) + " describes");
    }
  }
  return Status::Ok();
}

Status CheckExternalData(const ModelProto& m, const std::string& origin) {
  const fs::path dir = fs::path(origin).parent_path();
  for (const TensorProto& t : m.graph().initializer()) {
    if (t.data_location() != TensorProto::EXTERNAL) continue;
    std::string location;
    for (const auto& entry : t.external_data()) {
      if (entry.key() == "location") location = entry.value();
    }
    std::error_code ec;
    if (location.empty() || !fs::exists(dir / location, ec)) {
      return Status::InvalidArgument("model '" + origin + "': initializer '" + Printable(t.name()) +
                                     "' keeps its data in '" + location +
                                     "', which does not exist next to the model");
    }
  }
  return Status::Ok();
}

std::string DimsText(const std::vector<int64_t>& dims) {
  std::string out;
  for (int64_t d : dims) out += (out.empty() ? "" : "x") + std::to_string(d);
  return out;
}

// Fixes the graph inputs' dynamic dimensions from `options`, or a dynamic batch to 1.
Status FixInputShapes(ModelProto& m, const OnnxReadOptions& options, const std::string& origin,
                      std::vector<std::string>& notes) {
  GraphProto& g = *m.mutable_graph();
  std::set<std::string> initializers;
  for (const TensorProto& t : g.initializer()) initializers.insert(t.name());
  std::set<std::string> used;
  std::string input_names;
  for (ValueInfoProto& input : *g.mutable_input()) {
    if (initializers.count(input.name()) != 0) continue;
    input_names += (input_names.empty() ? "" : ", ") + Printable(input.name());
    if (!input.type().has_tensor_type()) continue;
    TensorShapeProto* shape = input.mutable_type()->mutable_tensor_type()->mutable_shape();
    const auto given =
        std::find_if(options.inputs.begin(), options.inputs.end(),
                     [&](const OnnxInputShape& s) { return s.name == input.name(); });
    if (given != options.inputs.end()) {
      used.insert(given->name);
      if (static_cast<int>(given->dims.size()) != shape->dim_size()) {
        return Status::InvalidArgument("--input " + given->name + "=" + DimsText(given->dims) +
                                       " has " + std::to_string(given->dims.size()) +
                                       " dimensions; input '" + Printable(input.name()) + "' of '" +
                                       origin + "' has " + std::to_string(shape->dim_size()));
      }
      for (int d = 0; d < shape->dim_size(); ++d) {
        auto* dim = shape->mutable_dim(d);
        if (dim->has_dim_value() && dim->dim_value() != given->dims[static_cast<size_t>(d)]) {
          return Status::InvalidArgument("--input " + given->name + "=" + DimsText(given->dims) +
                                         ": dimension " + std::to_string(d) + " of input '" +
                                         Printable(input.name()) + "' is fixed at " +
                                         std::to_string(dim->dim_value()) + " in the model");
        }
        dim->set_dim_value(given->dims[static_cast<size_t>(d)]);
      }
      continue;
    }
    for (int d = 0; d < shape->dim_size(); ++d) {
      auto* dim = shape->mutable_dim(d);
      if (dim->has_dim_value()) continue;
      const std::string what =
          dim->has_dim_param() ? "'" + Printable(dim->dim_param()) + "'" : "an unnamed dimension";
      if (d == 0) {
        dim->set_dim_value(1);
        notes.push_back("input '" + Printable(input.name()) + "': batch dimension " + what +
                        " taken as 1 (set it with --input " + Printable(input.name()) +
                        "=NxCxHxW)");
        continue;
      }
      return Status::InvalidArgument("model '" + origin + "': input '" + Printable(input.name()) +
                                     "' has a dynamic dimension " + what + " (dimension " +
                                     std::to_string(d) + "); give its shape with --input " +
                                     Printable(input.name()) + "=1x3x224x224 (its real sizes)");
    }
  }
  for (const OnnxInputShape& s : options.inputs) {
    if (used.count(s.name) == 0) {
      return Status::InvalidArgument("--input names '" + s.name + "', which is not an input of '" +
                                     origin + "' (inputs: " + input_names + ")");
    }
  }
  return Status::Ok();
}

const AttributeProto* FindAttribute(const NodeProto& node, const char* name) {
  for (const AttributeProto& a : node.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

// ONNX 1.12's shape inference for convolutions takes the kernel's extent from the weights'
// dimensions when kernel_shape is absent, and then indexes the input's dimensions by it
// without checking that their ranks agree: weights of another rank than the input read
// past the shape and crash the process (found by tests/fuzz/onnx_fuzz.cc). With
// kernel_shape present it checks the ranks and fails cleanly. So every convolution whose
// weights are a constant of known shape gets kernel_shape from them before inference
// (the same value the runtime would take), and one whose weights' rank is below 3 is
// refused here. Convolutions whose weights are computed keep the library's behaviour.
Status AddKernelShapes(ModelProto& m, const std::string& origin) {
  GraphProto& g = *m.mutable_graph();
  std::map<std::string, const TensorProto*> constants;
  for (const TensorProto& t : g.initializer()) constants[t.name()] = &t;
  std::map<std::string, std::string> identity_of;
  for (const NodeProto& n : g.node()) {
    if (n.op_type() == "Identity" && n.input_size() == 1 && n.output_size() == 1)
      identity_of[n.output(0)] = n.input(0);
    if (n.op_type() == "Constant" && n.output_size() == 1) {
      for (const AttributeProto& a : n.attribute()) {
        if (a.name() == "value" && a.has_t()) constants[n.output(0)] = &a.t();
      }
    }
  }
  const auto weights_of = [&](std::string name) -> const TensorProto* {
    for (int hops = 0; hops < 16; ++hops) {
      if (auto c = constants.find(name); c != constants.end()) return c->second;
      auto i = identity_of.find(name);
      if (i == identity_of.end()) return nullptr;
      name = i->second;
    }
    return nullptr;
  };
  for (int i = 0; i < g.node_size(); ++i) {
    NodeProto& node = *g.mutable_node(i);
    if (!IsDefaultDomain(node.domain())) continue;
    const int weight_input = node.op_type() == "QLinearConv" ? 3
                             : (node.op_type() == "Conv" || node.op_type() == "ConvInteger" ||
                                node.op_type() == "ConvTranspose")
                                 ? 1
                                 : -1;
    if (weight_input < 0 || node.input_size() <= weight_input) continue;
    bool has_kernel_shape = false;
    for (const AttributeProto& a : node.attribute()) has_kernel_shape |= a.name() == "kernel_shape";
    if (has_kernel_shape) continue;
    const TensorProto* w = weights_of(node.input(weight_input));
    if (w == nullptr) continue;
    if (w->dims_size() < 3) {
      return Status::InvalidArgument("model '" + origin + "': node '" + NodeName(g, i) +
                                     "' has weights '" + Printable(w->name()) + "' of rank " +
                                     std::to_string(w->dims_size()) +
                                     "; a convolution's weights have at least 3 dimensions");
    }
    AttributeProto* kernel = node.add_attribute();
    kernel->set_name("kernel_shape");
    kernel->set_type(AttributeProto::INTS);
    for (int d = 2; d < w->dims_size(); ++d) kernel->add_ints(w->dims(d));
  }
  return Status::Ok();
}

// The window attributes of convolutions and pools, checked before ONNX 1.12's shape
// inference divides by strides and sizes buffers by their lengths without checking them
// (a zero stride raised SIGFPE under tests/fuzz/onnx_fuzz.cc).
Status CheckWindowAttributes(const ModelProto& m, const std::string& origin) {
  static const std::set<std::string> kWindowed = {
      "Conv", "ConvInteger", "QLinearConv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool"};
  const GraphProto& g = m.graph();
  for (int i = 0; i < g.node_size(); ++i) {
    const NodeProto& node = g.node(i);
    if (!IsDefaultDomain(node.domain()) || kWindowed.count(node.op_type()) == 0) continue;
    const auto bad = [&](const std::string& what) {
      return Status::InvalidArgument("model '" + origin + "': node '" + NodeName(g, i) +
                                     "': " + what);
    };
    int64_t axes = -1;  // spatial axes, from the first attribute that says
    for (const char* name : {"kernel_shape", "strides", "dilations", "pads"}) {
      const AttributeProto* a = FindAttribute(node, name);
      if (a == nullptr) continue;
      const bool pads = std::string(name) == "pads";
      for (int64_t v : a->ints()) {
        if (pads ? v < 0 : v < 1) {
          return bad("attribute " + std::string(name) + " holds " + std::to_string(v) +
                     " (each must be " + (pads ? ">= 0" : ">= 1") + ")");
        }
      }
      const int64_t n = pads ? a->ints_size() / 2 : a->ints_size();
      if ((pads && a->ints_size() % 2 != 0) || (axes >= 0 && n != axes) || n == 0) {
        return bad("attribute " + std::string(name) + " has " + std::to_string(a->ints_size()) +
                   " values, which does not fit the other window attributes");
      }
      axes = n;
    }
  }
  return Status::Ok();
}

void RecordShape(const ValueInfoProto& v, LoadedModel& out) {
  if (!v.type().has_tensor_type()) return;
  const auto& tensor = v.type().tensor_type();
  out.element_types[v.name()] = tensor.elem_type();
  if (!tensor.has_shape()) return;
  std::vector<int64_t> dims;
  for (const auto& dim : tensor.shape().dim()) {
    if (!dim.has_dim_value()) return;
    dims.push_back(dim.dim_value());
  }
  out.shapes[v.name()] = dims;
}

std::vector<int64_t> Ints(const NodeProto& node, const char* name, std::vector<int64_t> fallback) {
  const AttributeProto* a = FindAttribute(node, name);
  if (a == nullptr || a->ints_size() == 0) return fallback;
  return {a->ints().begin(), a->ints().end()};
}

std::optional<DataType> DataTypeOf(int32_t element_type) {
  switch (element_type) {
    case TensorProto::FLOAT: return DataType::kF32;
    case TensorProto::FLOAT16: return DataType::kF16;
    case TensorProto::BFLOAT16: return DataType::kBF16;
    default: return std::nullopt;
  }
}

// The pads auto_pad asks for on one axis: SAME keeps ceil(in / stride) outputs, with the
// odd unit at the end (SAME_UPPER) or the beginning (SAME_LOWER).
std::pair<int64_t, int64_t> AutoPads(const std::string& mode, int64_t in, int64_t stride,
                                     int64_t effective) {
  if (mode == "VALID") return {0, 0};
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>(0, (out - 1) * stride + effective - in);
  const int64_t small = total / 2;
  return mode == "SAME_UPPER" ? std::pair{small, total - small} : std::pair{total - small, small};
}

}  // namespace

std::string Printable(std::string_view text) {
  constexpr size_t kMax = 120;
  std::string out;
  for (unsigned char ch : text) {
    if (out.size() >= kMax) return out + "...";
    if (ch >= 0x20 && ch < 0x7f) {
      out += static_cast<char>(ch);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", ch);
      out += hex;
    }
  }
  return out;
}

std::string NodeName(const GraphProto& graph, int64_t index) {
  const NodeProto& node = graph.node(static_cast<int>(index));
  return Printable(node.name().empty() ? node.op_type() + "#" + std::to_string(index)
                                       : node.name());
}

bool IsConvolution(const NodeProto& node) {
  static const std::set<std::string> kOps = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv"};
  return IsDefaultDomain(node.domain()) && kOps.count(node.op_type()) != 0;
}

ModelConv ConvOfNode(const LoadedModel& m, int64_t index) {
  const GraphProto& g = m.model.graph();
  const NodeProto& node = g.node(static_cast<int>(index));
  ModelConv conv;
  conv.name = NodeName(g, index);
  conv.op = node.op_type();
  conv.node = index;
  const auto unsupported = [&](std::string why) {
    conv.unsupported = std::move(why);
    return conv;
  };
  if (node.op_type() == "ConvTranspose")
    return unsupported("transposed convolution: not yet supported");
  if (node.op_type() != "Conv")
    return unsupported("quantized convolution (" + Printable(node.op_type()) +
                       "): not yet supported");
  if (node.input_size() < 2) return unsupported("a Conv without weights");
  const auto x = m.shapes.find(node.input(0));
  const auto w = m.shapes.find(node.input(1));
  if (x == m.shapes.end())
    return unsupported("the shape of its input '" + Printable(node.input(0)) +
                       "' could not be inferred");
  if (w == m.shapes.end())
    return unsupported("the shape of its weights '" + Printable(node.input(1)) + "' is not known");
  if (x->second.size() == 3) return unsupported("1-D convolution: not yet supported");
  if (x->second.size() == 5) return unsupported("3-D convolution: not yet supported");
  if (x->second.size() != 4 || w->second.size() != 4) {
    return unsupported("a " + std::to_string(x->second.size()) +
                       "-dimensional input: not a 2-D convolution");
  }
  const auto type = m.element_types.find(node.input(0));
  const std::optional<DataType> dtype =
      type == m.element_types.end() ? std::nullopt : DataTypeOf(type->second);
  if (!dtype) return unsupported("its input is not float32, float16 or bfloat16");

  const std::vector<int64_t>& xs = x->second;
  const std::vector<int64_t>& ws = w->second;
  Problem p;
  p.n = xs[0];
  p.c = xs[1];
  p.h = xs[2];
  p.w = xs[3];
  p.k = ws[0];
  p.r = ws[2];
  p.s = ws[3];
  p.dtype = *dtype;
  p.layout = Layout::kNCHW;  // ONNX Conv is NCHW
  p.direction = Direction::kForward;
  if (const AttributeProto* group = FindAttribute(node, "group"); group != nullptr)
    p.groups = group->i();
  const std::vector<int64_t> strides = Ints(node, "strides", {1, 1});
  const std::vector<int64_t> dilations = Ints(node, "dilations", {1, 1});
  const std::vector<int64_t> kernel = Ints(node, "kernel_shape", {p.r, p.s});
  if (strides.size() != 2 || dilations.size() != 2 || kernel.size() != 2) {
    return unsupported("strides, dilations or kernel_shape do not have two values");
  }
  if (kernel[0] != p.r || kernel[1] != p.s)
    return unsupported("kernel_shape does not match the weights");
  p.stride_h = strides[0];
  p.stride_w = strides[1];
  p.dilation_h = dilations[0];
  p.dilation_w = dilations[1];
  p.bias = node.input_size() >= 3 && !node.input(2).empty();
  const AttributeProto* auto_pad = FindAttribute(node, "auto_pad");
  const std::string mode = auto_pad == nullptr ? "NOTSET" : auto_pad->s();
  if (mode == "NOTSET") {
    const std::vector<int64_t> pads = Ints(node, "pads", {0, 0, 0, 0});
    if (pads.size() != 4) return unsupported("pads does not have four values");
    p.pad_top = pads[0];
    p.pad_left = pads[1];
    p.pad_bottom = pads[2];
    p.pad_right = pads[3];
  } else if (mode == "SAME_UPPER" || mode == "SAME_LOWER" || mode == "VALID") {
    std::tie(p.pad_top, p.pad_bottom) = AutoPads(mode, p.h, p.stride_h, p.effective_r());
    std::tie(p.pad_left, p.pad_right) = AutoPads(mode, p.w, p.stride_w, p.effective_s());
  } else {
    return unsupported("auto_pad '" + mode + "' is not one ONNX defines");
  }
  if (p.c != ws[1] * p.groups) {
    return unsupported("its weights have " + std::to_string(ws[1]) +
                       " input channels per group; the input has " + std::to_string(p.c) +
                       " channels in " + std::to_string(p.groups) + " groups");
  }
  if (Status s = Validate(p); !s.ok()) return unsupported(s.message());
  conv.problem = p;
  return conv;
}

StatusOr<LoadedModel> LoadModel(const std::string& path, const OnnxReadOptions& options) {
  CG_ASSIGN_OR_RETURN(std::string bytes, ReadBytes(path));
  return LoadModelBytes(bytes, path, options);
}

StatusOr<LoadedModel> LoadModelBytes(std::string_view bytes, const std::string& path,
                                     const OnnxReadOptions& options) {
  LoadedModel out;
  out.origin = path;
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return Status::OutOfRange("model '" + path +
                              "' is larger than protobuf reads (2 GiB); ONNX keeps the weights "
                              "of larger models in external-data files");
  }
  // protobuf reports a parse failure, never throws; ONNX's checks and inference throw.
  if (bytes.empty() || !out.model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) ||
      !out.model.has_graph() || out.model.ir_version() <= 0) {
    return Status::InvalidArgument(
        "'" + path + "' is not an ONNX model (" +
        (bytes.empty() ? std::string("the file is empty")
                       : "protobuf could not read a ModelProto: truncated or corrupted?") +
        ")");
  }
  CG_RETURN_IF_ERROR(CheckOpsets(out.model, path));
  CG_RETURN_IF_ERROR(CheckOpsKnown(out.model, path));
  CG_RETURN_IF_ERROR(CheckExternalData(out.model, path));
  CG_RETURN_IF_ERROR(FixInputShapes(out.model, options, path, out.notes));
  CG_RETURN_IF_ERROR(CheckWindowAttributes(out.model, path));
  CG_RETURN_IF_ERROR(AddKernelShapes(out.model, path));
  try {
    ONNX_NAMESPACE::ShapeInferenceOptions inference(/*check_type=*/false, /*error_mode=*/0,
                                                    /*data_propagation=*/true);
    ONNX_NAMESPACE::shape_inference::InferShapes(
        out.model, ONNX_NAMESPACE::OpSchemaRegistry::Instance(), inference);
  } catch (const std::exception& e) {
    return Status::InvalidArgument("model '" + path +
                                   "': shape inference failed: " + Printable(e.what()));
  }
  const GraphProto& g = out.model.graph();
  for (const ValueInfoProto& v : g.input()) RecordShape(v, out);
  for (const ValueInfoProto& v : g.value_info()) RecordShape(v, out);
  for (const ValueInfoProto& v : g.output()) RecordShape(v, out);
  for (const TensorProto& t : g.initializer()) {
    out.shapes[t.name()] = {t.dims().begin(), t.dims().end()};
    out.element_types[t.name()] = t.data_type();
  }
  return out;
}

}  // namespace convguard::onnx_internal
