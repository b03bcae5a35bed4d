// Writing a fixed ONNX model (convguard/onnx.h): each bad Conv becomes its plan in
// standard operators, following the rewrites' forward pieces (src/rewrite/rewrite.h).
//
// A plan step translates into nodes that read one tensor (the step's input, NCHW) and
// write one (its output):
//   leaf      one Conv with the leaf problem's pads, strides, dilations and groups, its
//             weights and bias as new float32 initializers;
//   rewrite   per forward piece: a Slice of the input box (omitted when it is the whole
//             input), a Pad of zero channels when the child has more input channels, the
//             child step, a Slice of the first k channels when the child has more output
//             channels; then the pieces' outputs are concatenated by their output boxes
//             (batch, channels, rows, columns). A piece without a child (a tile whose
//             window is all padding) is a constant of bias values.
// Spatial windows come only from Slice with explicit halos, so no spatial Pad exists for
// a runtime to fuse back into a Conv's pads. Weights are cut and zero-extended here, in
// the initializers, from the original node's float32 initializers.
#include <onnx/checker.h>

#include <cctype>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "convguard/onnx.h"
#include "convguard/text_forms.h"
#include "onnx/onnx_model.h"
#include "plan/internal.h"
#include "rewrite/rewrite.h"

namespace convguard {
namespace {

namespace fs = std::filesystem;
using ONNX_NAMESPACE::AttributeProto;
using ONNX_NAMESPACE::GraphProto;
using ONNX_NAMESPACE::NodeProto;
using ONNX_NAMESPACE::TensorProto;

// Weights of one step's problem: filters k, c/groups columns, r, s (ONNX's OIHW).
struct Filters {
  std::vector<float> weight;
  std::vector<float> bias;  // empty when the problem has no bias
};

StatusOr<std::vector<float>> FloatData(const TensorProto& t, const std::string& node) {
  if (t.data_type() != TensorProto::FLOAT) {
    return Status::Unsupported("node '" + node + "': initializer '" +
                               onnx_internal::Printable(t.name()) +
                               "' is not float32; fix writes float32 weights only");
  }
  if (t.data_location() == TensorProto::EXTERNAL) {
    return Status::Unsupported("node '" + node + "': initializer '" +
                               onnx_internal::Printable(t.name()) +
                               "' keeps its data outside the model; fix needs it inside");
  }
  int64_t count = 1;
  for (int64_t d : t.dims()) count *= d;
  std::vector<float> out(static_cast<size_t>(count));
  if (!t.raw_data().empty()) {
    if (t.raw_data().size() != out.size() * sizeof(float)) {
      return Status::InvalidArgument("initializer '" + onnx_internal::Printable(t.name()) +
                                     "' holds " + std::to_string(t.raw_data().size()) +
                                     " bytes, not " + std::to_string(out.size() * sizeof(float)));
    }
    std::memcpy(out.data(), t.raw_data().data(),
                t.raw_data().size());  // little-endian, as ONNX stores it
  } else {
    if (t.float_data_size() != count) {
      return Status::InvalidArgument("initializer '" + onnx_internal::Printable(t.name()) +
                                     "' holds " + std::to_string(t.float_data_size()) +
                                     " values, not " + std::to_string(count));
    }
    std::copy(t.float_data().begin(), t.float_data().end(), out.begin());
  }
  return out;
}

// The constant tensor a value holds: an initializer, or one reached through Identity nodes
// (exporters route shared biases through them) or produced by a Constant node; null when
// the value is computed.
const TensorProto* ConstantValue(const GraphProto& graph,
                                 const std::map<std::string, const TensorProto*>& initializers,
                                 const std::string& name, int depth = 0) {
  if (auto it = initializers.find(name); it != initializers.end()) return it->second;
  if (depth > 16) return nullptr;
  for (const NodeProto& n : graph.node()) {
    if (n.output_size() == 0 || n.output(0) != name) continue;
    if (n.op_type() == "Identity" && n.input_size() == 1) {
      return ConstantValue(graph, initializers, n.input(0), depth + 1);
    }
    if (n.op_type() == "Constant") {
      for (const AttributeProto& a : n.attribute()) {
        if (a.name() == "value" && a.has_t()) return &a.t();
      }
    }
    return nullptr;
  }
  return nullptr;
}

// A legal, readable prefix for the names a fix adds.
std::string NamePrefix(const std::string& node_name) {
  std::string out;
  for (char ch : node_name)
    out += std::isalnum(static_cast<unsigned char>(ch)) || ch == '/' || ch == '_' ? ch : '_';
  return out + "/convguard";
}

// Builds the nodes and initializers of one fix.
class Emitter {
 public:
  explicit Emitter(std::string prefix) : prefix_(std::move(prefix)) {}

  std::vector<NodeProto>& nodes() { return nodes_; }
  std::vector<TensorProto>& initializers() { return initializers_; }
  std::map<std::string, int64_t>& op_counts() { return op_counts_; }

  // `step` computes its problem's output from tensor `x` (the step's input) into
  // `into` (a fresh name when empty); returns the name written.
  StatusOr<std::string> Step(const PlanStep& step, const std::string& x, const Filters& f,
                             std::string into) {
    if (step.is_leaf()) return Leaf(step.problem, x, f, std::move(into));
    CG_ASSIGN_OR_RETURN(std::vector<rewrite::ForwardPiece> pieces, plan::ForwardPiecesOf(step));
    const Problem& p = step.problem;
    std::vector<std::pair<rewrite::ForwardPiece, std::string>> outputs;
    for (const rewrite::ForwardPiece& piece : pieces) {
      // The whole output from one piece goes straight into `into`.
      const bool whole = pieces.size() == 1;
      if (piece.slot < 0) {
        outputs.emplace_back(piece, BiasBox(p, piece, f));
        continue;
      }
      const PlanStep& child = step.children[static_cast<size_t>(piece.slot)];
      const Problem& cp = child.problem;
      std::string input = x;
      if (piece.n.size() != p.n || piece.c.size() != p.c || piece.h.size() != p.h ||
          piece.w.size() != p.w) {
        input = Slice(x, {piece.n.begin, piece.c.begin, piece.h.begin, piece.w.begin},
                      {piece.n.end, piece.c.end, piece.h.end, piece.w.end}, "");
      }
      if (cp.c > piece.c.size()) input = PadChannels(input, cp.c - piece.c.size());
      const bool keep_some = cp.k > piece.k.size();
      CG_ASSIGN_OR_RETURN(std::string y, Step(child, input, ChildFilters(p, piece, cp, f),
                                              whole && !keep_some ? into : std::string()));
      if (keep_some)
        y = Slice(y, {0, 0, 0, 0}, {cp.n, piece.k.size(), cp.out_h(), cp.out_w()},
                  whole ? into : "");
      outputs.emplace_back(piece, y);
    }
    std::string assembled = Assemble(outputs, 0, into);
    if (!into.empty() && assembled != into) assembled = Identity(assembled, into);
    return assembled;
  }

 private:
  std::string Fresh(const std::string& what) {
    return prefix_ + "/" + what + "_" + std::to_string(counter_++);
  }

  NodeProto& Node(const std::string& op, std::vector<std::string> inputs,
                  const std::string& output) {
    NodeProto& n = nodes_.emplace_back();
    n.set_op_type(op);
    n.set_name(Fresh(op));
    for (const std::string& i : inputs) n.add_input(i);
    n.add_output(output);
    ++op_counts_[op];
    return n;
  }

  std::string Int64s(const std::vector<int64_t>& values) {
    TensorProto& t = initializers_.emplace_back();
    t.set_name(Fresh("ints"));
    t.set_data_type(TensorProto::INT64);
    t.add_dims(static_cast<int64_t>(values.size()));
    for (int64_t v : values) t.add_int64_data(v);
    return t.name();
  }

  std::string Floats(const std::string& what, const std::vector<int64_t>& dims,
                     const std::vector<float>& values) {
    TensorProto& t = initializers_.emplace_back();
    t.set_name(Fresh(what));
    t.set_data_type(TensorProto::FLOAT);
    for (int64_t d : dims) t.add_dims(d);
    t.set_raw_data(
        std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
    return t.name();
  }

  static void IntsAttribute(NodeProto& n, const char* name, const std::vector<int64_t>& values) {
    AttributeProto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  }

  static void IntAttribute(NodeProto& n, const char* name, int64_t value) {
    AttributeProto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(AttributeProto::INT);
    a->set_i(value);
  }

  std::string Output(std::string into, const char* what) {
    return into.empty() ? Fresh(what) : std::move(into);
  }

  std::string Slice(const std::string& x, const std::vector<int64_t>& starts,
                    const std::vector<int64_t>& ends, std::string into) {
    const std::string out = Output(std::move(into), "slice");
    Node("Slice", {x, Int64s(starts), Int64s(ends), Int64s({0, 1, 2, 3})}, out);
    return out;
  }

  // Zero channels after the existing ones: a Pad on the channel axis only, which no
  // runtime folds into a Conv (Conv has no channel pads).
  std::string PadChannels(const std::string& x, int64_t extra) {
    const std::string out = Fresh("padded");
    Node("Pad", {x, Int64s({0, 0, 0, 0, 0, extra, 0, 0})}, out);
    return out;
  }

  std::string Identity(const std::string& x, const std::string& into) {
    Node("Identity", {x}, into);
    return into;
  }

  StatusOr<std::string> Leaf(const Problem& p, const std::string& x, const Filters& f,
                             std::string into) {
    const std::string out = Output(std::move(into), "conv_out");
    std::vector<std::string> inputs = {x,
                                       Floats("weight", {p.k, p.c / p.groups, p.r, p.s}, f.weight)};
    if (p.bias) inputs.push_back(Floats("bias", {p.k}, f.bias));
    NodeProto& n = Node("Conv", inputs, out);
    IntsAttribute(n, "kernel_shape", {p.r, p.s});
    IntsAttribute(n, "strides", {p.stride_h, p.stride_w});
    IntsAttribute(n, "dilations", {p.dilation_h, p.dilation_w});
    IntsAttribute(n, "pads", {p.pad_top, p.pad_left, p.pad_bottom, p.pad_right});
    IntAttribute(n, "group", p.groups);
    return out;
  }

  // P's filters k of a piece, zero-extended to the child's filter shape.
  static Filters ChildFilters(const Problem& p, const rewrite::ForwardPiece& piece,
                              const Problem& cp, const Filters& f) {
    Filters out;
    const int64_t columns = p.c / p.groups, child_columns = cp.c / cp.groups, taps = p.r * p.s;
    out.weight.assign(static_cast<size_t>(cp.k * child_columns * taps), 0.0f);
    for (int64_t k = 0; k < piece.k.size(); ++k) {
      for (int64_t c = 0; c < columns; ++c) {
        const float* from =
            &f.weight[static_cast<size_t>(((piece.k.begin + k) * columns + c) * taps)];
        std::copy(from, from + taps,
                  &out.weight[static_cast<size_t>((k * child_columns + c) * taps)]);
      }
    }
    if (p.bias) {
      out.bias.assign(static_cast<size_t>(cp.k), 0.0f);
      std::copy(f.bias.begin() + piece.k.begin, f.bias.begin() + piece.k.end, out.bias.begin());
    }
    return out;
  }

  // The output box of a piece without a child: the bias of its channels, or zeros.
  std::string BiasBox(const Problem& p, const rewrite::ForwardPiece& piece, const Filters& f) {
    const int64_t plane = piece.out_h.size() * piece.out_w.size();
    std::vector<float> values(static_cast<size_t>(piece.out_n.size() * piece.k.size() * plane),
                              0.0f);
    if (p.bias) {
      for (int64_t n = 0; n < piece.out_n.size(); ++n) {
        for (int64_t k = 0; k < piece.k.size(); ++k) {
          const auto at = static_cast<size_t>((n * piece.k.size() + k) * plane);
          std::fill_n(values.begin() + static_cast<std::ptrdiff_t>(at), plane,
                      f.bias[static_cast<size_t>(piece.k.begin + k)]);
        }
      }
    }
    return Floats("bias_box",
                  {piece.out_n.size(), piece.k.size(), piece.out_h.size(), piece.out_w.size()},
                  values);
  }

  static rewrite::Span OutputSpan(const rewrite::ForwardPiece& piece, int axis) {
    switch (axis) {
      case 0: return piece.out_n;
      case 1: return piece.k;
      case 2: return piece.out_h;
      default: return piece.out_w;
    }
  }

  // Concatenates pieces whose output boxes tile a box: along the first axis where they
  // start at different places, each group assembled on the axes after it.
  std::string Assemble(const std::vector<std::pair<rewrite::ForwardPiece, std::string>>& items,
                       int axis, const std::string& into) {
    if (items.size() == 1) return items.front().second;
    for (int a = axis; a < 4; ++a) {
      std::map<int64_t, std::vector<std::pair<rewrite::ForwardPiece, std::string>>> groups;
      for (const auto& item : items) groups[OutputSpan(item.first, a).begin].push_back(item);
      if (groups.size() == 1) continue;
      std::vector<std::string> parts;
      for (const auto& [begin, group] : groups) parts.push_back(Assemble(group, a + 1, ""));
      const std::string out = Output(into, "concat");
      IntAttribute(Node("Concat", parts, out), "axis", a);
      return out;
    }
    return items.front().second;  // unreachable for pieces that partition a box
  }

  std::string prefix_;
  int64_t counter_ = 0;
  std::vector<NodeProto> nodes_;
  std::vector<TensorProto> initializers_;
  std::map<std::string, int64_t> op_counts_;
};

Status CheckLeaves(const PlanStep& step, const std::string& node) {
  if (!step.is_leaf()) {
    for (const PlanStep& child : step.children) CG_RETURN_IF_ERROR(CheckLeaves(child, node));
    return Status::Ok();
  }
  if (step.kind != StepKind::kNative) {
    return Status::InvalidArgument(
        "the plan of node '" + node + "' runs " + ToCanonical(step.problem) + " as " +
        std::string(StepKindName(step)) +
        ", which an ONNX model cannot express (it has no algorithms or backends)");
  }
  return Status::Ok();
}

std::string CountsText(const std::map<std::string, int64_t>& counts) {
  std::string out;
  for (const char* op : {"Conv", "Pad", "Slice", "Concat"}) {
    const auto it = counts.find(op);
    out +=
        (out.empty() ? "" : ", ") + std::to_string(it == counts.end() ? 0 : it->second) + " " + op;
  }
  return out;
}

Status WriteAtomically(const std::string& bytes, const std::string& out) {
  const std::string temp = out + ".convguard-tmp";
  {
    std::ofstream file(temp, std::ios::binary | std::ios::trunc);
    if (!file) return Status::IOError("cannot write '" + temp + "'");
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!file) {
      std::error_code ignored;
      fs::remove(temp, ignored);
      return Status::IOError("error while writing '" + temp + "'");
    }
  }
  std::error_code ec;
  fs::rename(temp, out, ec);
  if (ec) {
    fs::remove(temp, ec);
    return Status::IOError("cannot move the fixed model to '" + out + "'");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<OnnxFixReport> WriteFixedOnnxModel(const std::string& in, const OnnxReadOptions& options,
                                            const std::vector<OnnxConvFix>& fixes,
                                            const std::string& out) {
  std::error_code ec;
  if (fs::exists(out, ec) && fs::equivalent(in, out, ec)) {
    return Status::InvalidArgument("the fixed model must not overwrite the original '" + in + "'");
  }
  CG_ASSIGN_OR_RETURN(onnx_internal::LoadedModel m, onnx_internal::LoadModel(in, options));
  int64_t opset = 0;
  for (const auto& o : m.model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  }
  if (opset < 11) {
    return Status::Unsupported(
        "fix writes Pad and Slice with tensor inputs, which need opset 11 or newer; '" + in +
        "' imports opset " + std::to_string(opset) + " (export it again with a newer opset)");
  }
  GraphProto& graph = *m.model.mutable_graph();
  std::map<std::string, const TensorProto*> initializers;
  for (const TensorProto& t : graph.initializer()) initializers[t.name()] = &t;

  OnnxFixReport report;
  std::map<int64_t, Emitter> replacements;
  std::set<std::string> replaced_initializers;
  for (const OnnxConvFix& fix : fixes) {
    if (fix.node < 0 || fix.node >= graph.node_size() || replacements.count(fix.node) != 0) {
      return Status::InvalidArgument("fix names node " + std::to_string(fix.node) +
                                     ", which is not a node of '" + in + "' or is named twice");
    }
    const ModelConv conv = onnx_internal::ConvOfNode(m, fix.node);
    if (!conv.problem || !(*conv.problem == fix.plan.root.problem)) {
      return Status::InvalidArgument(
          "the plan for node '" + conv.name + "' is for " + ToCanonical(fix.plan.root.problem) +
          ", but the node computes " +
          (conv.problem ? ToCanonical(*conv.problem) : conv.unsupported));
    }
    CG_RETURN_IF_ERROR(CheckLeaves(fix.plan.root, conv.name));
    const NodeProto& node = graph.node(static_cast<int>(fix.node));
    Filters filters;
    const TensorProto* weight = ConstantValue(graph, initializers, node.input(1));
    if (weight == nullptr) {
      return Status::Unsupported(
          "node '" + conv.name + "': its weights '" + onnx_internal::Printable(node.input(1)) +
          "' are not constants of the model (an initializer, or a Constant or Identity of "
          "one), so fix cannot cut and pad them; export the model with its weights");
    }
    CG_ASSIGN_OR_RETURN(filters.weight, FloatData(*weight, conv.name));
    replaced_initializers.insert(weight->name());
    if (conv.problem->bias) {
      const TensorProto* bias = ConstantValue(graph, initializers, node.input(2));
      if (bias == nullptr) {
        return Status::Unsupported("node '" + conv.name + "': its bias '" +
                                   onnx_internal::Printable(node.input(2)) + "' is not a constant");
      }
      CG_ASSIGN_OR_RETURN(filters.bias, FloatData(*bias, conv.name));
      replaced_initializers.insert(bias->name());
    }
    Emitter& emitter = replacements.emplace(fix.node, Emitter(NamePrefix(conv.name))).first->second;
    CG_ASSIGN_OR_RETURN(std::string written,
                        emitter.Step(fix.plan.root, node.input(0), filters, node.output(0)));
    (void)written;
    report.nodes_removed += 1;
    report.nodes_added += static_cast<int64_t>(emitter.nodes().size());
    report.initializers_added += static_cast<int64_t>(emitter.initializers().size());
    std::string rewrites;
    for (const PlanStep* s = &fix.plan.root; !s->is_leaf(); s = &s->children.front()) {
      rewrites += (rewrites.empty() ? "" : " then ") + s->rewrite + " " + s->parameters;
    }
    report.changes.push_back("node '" + conv.name + "' (" + ToCanonical(*conv.problem) +
                             "): " + rewrites + "; " + CountsText(emitter.op_counts()));
  }

  // The new graph: every node in order, each fixed one replaced in place (its new nodes
  // read only its inputs and write its output, so the order stays topological).
  google::protobuf::RepeatedPtrField<NodeProto> nodes;
  for (int i = 0; i < graph.node_size(); ++i) {
    auto r = replacements.find(i);
    if (r == replacements.end()) {
      *nodes.Add() = graph.node(i);
      continue;
    }
    for (NodeProto& n : r->second.nodes()) *nodes.Add() = std::move(n);
  }
  graph.mutable_node()->Swap(&nodes);
  // Initializers the fixed nodes alone used go; the new ones join.
  std::set<std::string> still_used;
  for (const NodeProto& n : graph.node()) still_used.insert(n.input().begin(), n.input().end());
  for (const auto& o : graph.output()) still_used.insert(o.name());
  google::protobuf::RepeatedPtrField<TensorProto> kept;
  for (TensorProto& t : *graph.mutable_initializer()) {
    if (replaced_initializers.count(t.name()) == 0 || still_used.count(t.name()) != 0)
      *kept.Add() = std::move(t);
  }
  for (auto& [index, emitter] : replacements) {
    for (TensorProto& t : emitter.initializers()) *kept.Add() = std::move(t);
  }
  graph.mutable_initializer()->Swap(&kept);
  // Graph inputs that named a removed initializer (older exporters list them) go too.
  google::protobuf::RepeatedPtrField<ONNX_NAMESPACE::ValueInfoProto> inputs;
  for (auto& v : *graph.mutable_input()) {
    if (replaced_initializers.count(v.name()) == 0 || still_used.count(v.name()) != 0)
      *inputs.Add() = std::move(v);
  }
  graph.mutable_input()->Swap(&inputs);
  // The inferred shapes describe the old graph's intermediate values: drop them, the
  // runtime infers its own.
  graph.clear_value_info();

  try {
    ONNX_NAMESPACE::checker::check_model(m.model);
  } catch (const std::exception& e) {
    return Status::Internal("the fixed model fails the ONNX checker: " + std::string(e.what()));
  }
  std::string bytes;
  if (!m.model.SerializeToString(&bytes))
    return Status::Internal("the fixed model could not be serialised");
  CG_RETURN_IF_ERROR(WriteAtomically(bytes, out));
  return report;
}

}  // namespace convguard
