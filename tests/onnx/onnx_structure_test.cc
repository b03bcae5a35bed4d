// The structure reader (src/onnx/onnx_structure.h): large tensors lose their values and
// nothing else changes; malformed bytes get the one-line refusal, never a crash.
#include "onnx/onnx_structure.h"

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "onnx/onnx_test_util.h"

namespace convguard {
namespace {

using onnx::ModelProto;
using onnx::TensorProto;
using onnx_internal::kLargeTensorBytes;
using onnx_internal::kMaxNesting;
using onnx_internal::ModelStructureOfBytes;
using onnx_internal::ReadModelStructure;
using testing_support::Ints;
using testing_support::OneNodeModel;
using testing_support::Save;

void ClearValues(TensorProto& t) {
  t.clear_float_data();
  t.clear_int32_data();
  t.clear_string_data();
  t.clear_int64_data();
  t.clear_raw_data();
  t.clear_double_data();
  t.clear_uint64_data();
}

TensorProto RawFloats(const std::string& name, std::vector<int64_t> dims) {
  TensorProto t;
  t.set_name(name);
  t.set_data_type(TensorProto::FLOAT);
  int64_t count = 1;
  for (int64_t d : dims) {
    t.add_dims(d);
    count *= d;
  }
  std::string raw(static_cast<size_t>(count) * sizeof(float), '\0');
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>(i * 7 + 1);
  t.set_raw_data(raw);
  return t;
}

// A model with large tensors everywhere one can be (an initializer as packed floats, one as
// raw bytes, a Constant node's value, an initializer of a graph inside an attribute) and
// small ones beside them.
ModelProto ModelWithTensorsEverywhere() {
  ModelProto m =
      OneNodeModel("Conv", {1, 64, 16, 16}, {64, 64, 3, 3}, {Ints("pads", {1, 1, 1, 1})});
  auto* g = m.mutable_graph();
  *g->add_initializer() = RawFloats("big_raw", {128, 256});
  TensorProto* shape = g->add_initializer();
  shape->set_name("small_shape");
  shape->set_data_type(TensorProto::INT64);
  shape->add_dims(3);
  for (int64_t v : {1, 64, 256}) shape->add_int64_data(v);

  auto* constant = g->add_node();
  constant->set_op_type("Constant");
  constant->add_output("c");
  auto* value = constant->add_attribute();
  value->set_name("value");
  value->set_type(onnx::AttributeProto::TENSOR);
  *value->mutable_t() = RawFloats("c_value", {100, 200});

  auto* body_holder = g->add_node();
  body_holder->set_op_type("If");
  auto* branch = body_holder->add_attribute();
  branch->set_name("then_branch");
  branch->set_type(onnx::AttributeProto::GRAPH);
  branch->mutable_g()->set_name("then");
  *branch->mutable_g()->add_initializer() = RawFloats("inner_big", {300, 100});
  *branch->mutable_g()->add_initializer() = RawFloats("inner_small", {2, 2});
  return m;
}

TEST(OnnxStructure, LargeTensorsLoseTheirValuesAndNothingElseChanges) {
  ModelProto original = ModelWithTensorsEverywhere();
  const std::string bytes = original.SerializeAsString();

  auto structure = ModelStructureOfBytes(bytes, "test.onnx");
  ASSERT_TRUE(structure.ok()) << structure.status().ToString();
  EXPECT_LT(structure.value().size() * 10, bytes.size()) << "the large values are gone";

  ModelProto read;
  ASSERT_TRUE(read.ParseFromString(structure.value()));
  // What the reader must give: the original with exactly its large tensors' values cleared.
  ModelProto expected = original;
  auto* g = expected.mutable_graph();
  for (TensorProto& t : *g->mutable_initializer()) {
    if (t.name() != "small_shape") ClearValues(t);  // w (147 KB), big_raw (128 KB)
  }
  ClearValues(*g->mutable_node(1)->mutable_attribute(0)->mutable_t());
  ClearValues(*g->mutable_node(2)->mutable_attribute(0)->mutable_g()->mutable_initializer(0));
  EXPECT_EQ(read.SerializeAsString(), expected.SerializeAsString());

  // The small ones kept their values, the large ones their shapes.
  EXPECT_EQ(read.graph().initializer(2).int64_data_size(), 3);
  EXPECT_EQ(read.graph().node(2).attribute(0).g().initializer(1).raw_data().size(), 16u);
  EXPECT_EQ(read.graph().initializer(1).dims(1), 256);
  EXPECT_TRUE(read.graph().initializer(1).raw_data().empty());
}

TEST(OnnxStructure, TheFileAndItsBytesGiveTheSameStructure) {
  const ModelProto m = ModelWithTensorsEverywhere();
  const std::string path = Save(m, "everywhere.onnx");
  auto from_file = ReadModelStructure(path);
  auto from_bytes = ModelStructureOfBytes(m.SerializeAsString(), path);
  ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
  ASSERT_TRUE(from_bytes.ok()) << from_bytes.status().ToString();
  EXPECT_EQ(from_file.value(), from_bytes.value());
}

TEST(OnnxStructure, ATensorAtTheLimitKeepsItsValues) {
  ModelProto m = OneNodeModel("Conv", {1, 1, 4, 4}, {1, 1, 1, 1}, {});
  // A raw tensor whose encoding is just at the limit: name, type, dims and raw_data's
  // tag and length take the rest.
  TensorProto t = RawFloats("edge", {1});
  const int64_t overhead = static_cast<int64_t>(t.ByteSizeLong()) - 4;
  t.set_raw_data(std::string(static_cast<size_t>(kLargeTensorBytes - overhead - 2), 'x'));
  ASSERT_EQ(static_cast<int64_t>(t.ByteSizeLong()), kLargeTensorBytes);
  *m.mutable_graph()->add_initializer() = t;
  auto kept = ModelStructureOfBytes(m.SerializeAsString(), "edge.onnx");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept.value(), m.SerializeAsString());

  m.mutable_graph()->mutable_initializer(1)->mutable_raw_data()->push_back('x');
  auto dropped = ModelStructureOfBytes(m.SerializeAsString(), "edge.onnx");
  ASSERT_TRUE(dropped.ok());
  EXPECT_LT(dropped.value().size() + kLargeTensorBytes / 2, m.SerializeAsString().size());
}

TEST(OnnxStructure, EveryTruncationIsReadOrRefusedInOneLine) {
  const std::string bytes =
      OneNodeModel("Conv", {1, 2, 8, 8}, {2, 2, 3, 3}, {}).SerializeAsString();
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto s = ModelStructureOfBytes(std::string_view(bytes).substr(0, n), "cut.onnx");
    if (s.ok()) continue;  // cut at a field boundary: a well-formed, smaller message
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find("'cut.onnx' is not an ONNX model"), std::string::npos)
        << s.status().message();
  }
}

TEST(OnnxStructure, MalformedWireDataIsRefused) {
  // Field 7 (graph) claiming more bytes than there are; a group (wire type 3); field 0;
  // a varint of 11 bytes.
  const std::vector<std::string> cases = {
      std::string("\x3a\x10\x0a\x00", 4),
      std::string("\x0b\x0c", 2),
      std::string("\x00\x01", 2),
      std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12),
  };
  for (const std::string& bytes : cases) {
    auto s = ModelStructureOfBytes(bytes, "bad.onnx");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.status().message().find('\n'), std::string::npos);
  }
}

TEST(OnnxStructure, GraphsNestedTooDeeplyAreRefused) {
  auto nested = [](int depth) {
    ModelProto m;
    m.set_ir_version(8);
    onnx::GraphProto* g = m.mutable_graph();
    for (int i = 0; i < depth; ++i) {
      auto* a = g->add_node()->add_attribute();
      a->set_name("body");
      a->set_type(onnx::AttributeProto::GRAPH);
      g = a->mutable_g();
    }
    return m.SerializeAsString();
  };
  EXPECT_TRUE(ModelStructureOfBytes(nested(kMaxNesting - 1), "deep.onnx").ok());
  auto too_deep = ModelStructureOfBytes(nested(kMaxNesting + 1), "deep.onnx");
  ASSERT_FALSE(too_deep.ok());
  EXPECT_NE(too_deep.status().message().find("nests graphs more than"), std::string::npos);
}

TEST(OnnxStructure, MissingFilesAndDirectoriesAreNamed) {
  auto missing = ReadModelStructure("/nonexistent/model.onnx");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto dir = ReadModelStructure(testing_support::MakeTempDir("onnx-structure"));
  EXPECT_EQ(dir.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dir.status().message().find("is a directory"), std::string::npos);
}

}  // namespace
}  // namespace convguard
