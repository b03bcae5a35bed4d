// Helpers of the ONNX tests: a model's convolutions against the zoo's hook records.
#pragma once

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convguard/onnx.h"
#include "convguard/text_forms.h"
#include "support/cli_runner.h"

namespace convguard::testing_support {

using nlohmann::json;

inline json ReadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

// Compares a model's convolutions with the hooks' record, in order.
inline void ExpectConvsMatchHooks(const std::string& onnx_path, const std::string& json_path) {
  const json record = ReadJson(json_path);
  ASSERT_TRUE(record.is_object()) << json_path;
  StatusOr<ModelConvs> convs = ReadOnnxModel(onnx_path);
  ASSERT_TRUE(convs.ok()) << convs.status().ToString();
  const json& hooks = record["convs"];
  ASSERT_EQ(convs->convs.size(), hooks.size()) << onnx_path;
  for (size_t i = 0; i < hooks.size(); ++i) {
    const json& h = hooks[i];
    const ModelConv& c = convs->convs[i];
    ASSERT_TRUE(c.problem.has_value()) << c.name << ": " << c.unsupported;
    const Problem& p = *c.problem;
    const std::string where = onnx_path + " conv " + std::to_string(i) + " (" +
                              h["module"].get<std::string>() + ", node " + c.name +
                              "): " + ToCanonical(p);
    EXPECT_EQ(c.op, "Conv") << where;
    EXPECT_EQ(std::vector<int64_t>({p.n, p.c, p.h, p.w}), h["input"].get<std::vector<int64_t>>())
        << where;
    EXPECT_EQ(std::vector<int64_t>({p.k, p.c / p.groups, p.r, p.s}),
              h["weight"].get<std::vector<int64_t>>())
        << where;
    EXPECT_EQ(std::vector<int64_t>({p.n, p.k, p.out_h(), p.out_w()}),
              h["output"].get<std::vector<int64_t>>())
        << where;
    EXPECT_EQ(std::vector<int64_t>({p.stride_h, p.stride_w}),
              h["stride"].get<std::vector<int64_t>>())
        << where;
    EXPECT_EQ(std::vector<int64_t>({p.pad_top, p.pad_left}),
              h["padding"].get<std::vector<int64_t>>())
        << where;
    EXPECT_EQ(std::vector<int64_t>({p.pad_bottom, p.pad_right}),
              h["padding"].get<std::vector<int64_t>>())
        << where;
    EXPECT_EQ(std::vector<int64_t>({p.dilation_h, p.dilation_w}),
              h["dilation"].get<std::vector<int64_t>>())
        << where;
    EXPECT_EQ(p.groups, h["groups"].get<int64_t>()) << where;
    // Exporters fold BatchNorm into the conv before it, which gains a bias.
    if (h["bias"].get<bool>()) {
      EXPECT_TRUE(p.bias) << where;
    }
    EXPECT_EQ(p.direction, Direction::kForward);
    EXPECT_EQ(p.layout, Layout::kNCHW);
  }
}

// ---- small models built by tests ----

inline void SetShape(onnx::ValueInfoProto* v, const std::string& name,
                     const std::vector<int64_t>& dims,
                     const std::vector<std::string>& params = {}) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = t->mutable_shape();
  for (size_t i = 0; i < dims.size(); ++i) {
    auto* d = shape->add_dim();
    if (i < params.size() && !params[i].empty()) {
      d->set_dim_param(params[i]);
    } else {
      d->set_dim_value(dims[i]);
    }
  }
}

// A model of one convolution-like node `op` reading input x (dims, optionally symbolic)
// with weights w (initializer) and attributes `attributes`.
inline onnx::ModelProto OneNodeModel(const std::string& op, const std::vector<int64_t>& x,
                                     const std::vector<int64_t>& w,
                                     const std::vector<onnx::AttributeProto>& attributes,
                                     int64_t opset = 13,
                                     const std::vector<std::string>& x_params = {}) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("convguard-test");
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("g");
  SetShape(g->add_input(), "x", x, x_params);
  onnx::TensorProto* weights = g->add_initializer();
  weights->set_name("w");
  weights->set_data_type(onnx::TensorProto::FLOAT);
  int64_t count = 1;
  for (int64_t d : w) {
    weights->add_dims(d);
    count *= d;
  }
  for (int64_t i = 0; i < count; ++i) weights->add_float_data(1.0f);
  onnx::NodeProto* n = g->add_node();
  n->set_op_type(op);
  n->set_name("the_conv");
  n->add_input("x");
  n->add_input("w");
  n->add_output("y");
  for (const auto& a : attributes) *n->add_attribute() = a;
  auto* y = g->add_output();
  y->set_name("y");
  y->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  return m;
}

inline onnx::AttributeProto Ints(const char* name, std::vector<int64_t> values) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a.add_ints(v);
  return a;
}

inline onnx::AttributeProto Text(const char* name, const std::string& value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::STRING);
  a.set_s(value);
  return a;
}

inline std::string Save(const onnx::ModelProto& m, const std::string& name) {
  const std::string path = testing_support::MakeTempDir("onnx-model") + "/" + name;
  std::ofstream out(path, std::ios::binary);
  m.SerializeToOstream(&out);
  return path;
}

}  // namespace convguard::testing_support
