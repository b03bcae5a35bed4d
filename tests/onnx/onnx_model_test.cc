// Reading ONNX models: the zoo's convolutions against what PyTorch's forward hooks saw,
// and small models built here for every case the reader must get right or refuse.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convguard/onnx.h"
#include "convguard/text_forms.h"
#include "onnx/onnx_test_util.h"
#include "support/cli_runner.h"

namespace convguard {
namespace {

namespace fs = std::filesystem;
using onnx::ModelProto;
using onnx::NodeProto;
using onnx::TensorProto;
using testing_support::ExpectConvsMatchHooks;
using testing_support::Ints;
using testing_support::OneNodeModel;
using testing_support::Save;
using testing_support::Text;

TEST(OnnxModel, TheCommittedZooHasTheShapesPyTorchSaw) {
  const std::string dir = testing_support::SourceDir() + "/tests/inputs/zoo";
  int models = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string path = entry.path().string();
    if (!path.ends_with(".convs.json")) continue;
    const std::string onnx =
        path.substr(0, path.size() - std::string(".convs.json").size()) + ".onnx";
    SCOPED_TRACE(onnx);
    ExpectConvsMatchHooks(onnx, path);
    ++models;
  }
  EXPECT_GE(models, 6);
}

TEST(OnnxModel, ADynamicBatchIsTakenAsOneAndSaidOrSetWithAnInputShape) {
  const std::string path =
      testing_support::SourceDir() + "/tests/inputs/zoo/small-cnn-dynamic.onnx";
  StatusOr<ModelConvs> convs = ReadOnnxModel(path);
  ASSERT_TRUE(convs.ok()) << convs.status().ToString();
  ASSERT_FALSE(convs->convs.empty());
  EXPECT_EQ(convs->convs.front().problem->n, 1);
  ASSERT_EQ(convs->notes.size(), 1u);
  EXPECT_NE(convs->notes[0].find("batch dimension 'batch' taken as 1"), std::string::npos)
      << convs->notes[0];

  OnnxReadOptions options;
  options.inputs.push_back(*ParseOnnxInputShape("input=4x3x32x32"));
  convs = ReadOnnxModel(path, options);
  ASSERT_TRUE(convs.ok()) << convs.status().ToString();
  for (const ModelConv& c : convs->convs) EXPECT_EQ(c.problem->n, 4) << c.name;
  EXPECT_TRUE(convs->notes.empty());

  // A fixed dimension cannot be changed, and an unknown input is named.
  options.inputs = {*ParseOnnxInputShape("input=4x3x64x64")};
  convs = ReadOnnxModel(path, options);
  ASSERT_FALSE(convs.ok());
  EXPECT_NE(convs.status().message().find("fixed at 32"), std::string::npos)
      << convs.status().message();
  options.inputs = {*ParseOnnxInputShape("image=1x3x32x32")};
  convs = ReadOnnxModel(path, options);
  ASSERT_FALSE(convs.ok());
  EXPECT_NE(convs.status().message().find("inputs: input"), std::string::npos)
      << convs.status().message();
}

TEST(OnnxModel, InputShapesParseOrSayWhatIsWrong) {
  StatusOr<OnnxInputShape> s = ParseOnnxInputShape("x=1x3x224x224");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->name, "x");
  EXPECT_EQ(s->dims, (std::vector<int64_t>{1, 3, 224, 224}));
  for (const char* bad : {"x", "=1x3", "x=", "x=1x0x2", "x=1xx2", "x=1x3x", "x=a"}) {
    StatusOr<OnnxInputShape> r = ParseOnnxInputShape(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos)
        << r.status().message();
  }
}

StatusOr<ModelConvs> ReadBuilt(const ModelProto& m, const std::string& name) {
  return ReadOnnxModel(Save(m, name));
}

TEST(OnnxModel, AutoPadIsResolvedToExplicitAsymmetricPads) {
  struct Case {
    const char* mode;
    int64_t top, bottom;
  };
  // h = 6, stride 2, kernel 3: SAME keeps 3 rows, which needs one row of padding in all.
  for (const Case& c : {Case{"SAME_UPPER", 0, 1}, Case{"SAME_LOWER", 1, 0}, Case{"VALID", 0, 0}}) {
    StatusOr<ModelConvs> convs =
        ReadBuilt(OneNodeModel("Conv", {1, 2, 6, 9}, {4, 2, 3, 3},
                               {Text("auto_pad", c.mode), Ints("strides", {2, 1})}),
                  std::string(c.mode) + ".onnx");
    ASSERT_TRUE(convs.ok()) << convs.status().ToString();
    ASSERT_EQ(convs->convs.size(), 1u);
    const ModelConv& conv = convs->convs[0];
    ASSERT_TRUE(conv.problem) << conv.unsupported;
    EXPECT_EQ(conv.name, "the_conv");
    EXPECT_EQ(conv.problem->pad_top, c.top) << c.mode;
    EXPECT_EQ(conv.problem->pad_bottom, c.bottom) << c.mode;
    // Columns at stride 1: SAME pads the kernel's extent - 1 = 2 around them, VALID none.
    const int64_t around = std::string(c.mode) == "VALID" ? 0 : 1;
    EXPECT_EQ(conv.problem->pad_left, around) << c.mode;
    EXPECT_EQ(conv.problem->pad_right, around) << c.mode;
    if (std::string(c.mode) != "VALID") {
      EXPECT_EQ(conv.problem->out_h(), 3);
      EXPECT_EQ(conv.problem->out_w(), 9);
    }
  }
}

TEST(OnnxModel, ExplicitPadsStridesDilationsAndGroupsAreRead) {
  onnx::AttributeProto group;
  group.set_name("group");
  group.set_type(onnx::AttributeProto::INT);
  group.set_i(2);
  StatusOr<ModelConvs> convs = ReadBuilt(
      OneNodeModel(
          "Conv", {2, 4, 11, 13}, {6, 2, 3, 2},
          {Ints("pads", {1, 0, 2, 1}), Ints("strides", {2, 3}), Ints("dilations", {2, 1}), group}),
      "explicit.onnx");
  ASSERT_TRUE(convs.ok()) << convs.status().ToString();
  const Problem& p = *convs->convs.at(0).problem;
  EXPECT_EQ(ToCanonical(p), "n2_c4_h11_w13_k6_r3_s2_p1x0x2x1_u2x3_d2x1_g2_f32_nchw_fwd");
}

TEST(OnnxModel, WhatConvguardCannotExpressIsListedWithItsReason) {
  struct Case {
    std::string op;
    std::vector<int64_t> x, w;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"ConvTranspose", {1, 4, 8, 8}, {4, 2, 3, 3}, "transposed convolution: not yet supported"},
      {"Conv", {1, 4, 8}, {2, 4, 3}, "1-D convolution: not yet supported"},
      {"Conv", {1, 4, 8, 8, 8}, {2, 4, 3, 3, 3}, "3-D convolution: not yet supported"},
  };
  for (const Case& c : cases) {
    StatusOr<ModelConvs> convs = ReadBuilt(OneNodeModel(c.op, c.x, c.w, {}), "unsupported.onnx");
    ASSERT_TRUE(convs.ok()) << c.reason << ": " << convs.status().ToString();
    ASSERT_EQ(convs->convs.size(), 1u) << c.reason;
    EXPECT_FALSE(convs->convs[0].problem.has_value()) << c.reason;
    EXPECT_EQ(convs->convs[0].unsupported, c.reason);
    EXPECT_EQ(convs->convs[0].op, c.op);
  }
}

TEST(OnnxModel, BadModelsAreRefusedWithOneLine) {
  const std::string dir = testing_support::MakeTempDir("onnx-bad");
  struct Case {
    std::string name;
    std::string path;
    std::string says;
  };
  std::vector<Case> cases;
  // Truncated: half of a real model.
  {
    std::ifstream in(testing_support::SourceDir() + "/tests/inputs/zoo/small-cnn.onnx",
                     std::ios::binary);
    std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::ofstream(dir + "/truncated.onnx", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    cases.push_back({"truncated", dir + "/truncated.onnx", "is not an ONNX model"});
  }
  std::ofstream(dir + "/empty.onnx").close();
  cases.push_back({"empty", dir + "/empty.onnx", "the file is empty"});
  std::ofstream(dir + "/text.onnx") << "this is not a model\n";
  cases.push_back({"text", dir + "/text.onnx", "is not an ONNX model"});
  cases.push_back({"newer opset",
                   Save(OneNodeModel("Conv", {1, 2, 8, 8}, {2, 2, 3, 3}, {}, 18), "opset18.onnx"),
                   "uses opset 18 of ai.onnx; this build reads opsets up to 17"});
  {
    ModelProto m = OneNodeModel("Conv", {1, 2, 8, 8}, {2, 2, 3, 3}, {});
    NodeProto* odd = m.mutable_graph()->add_node();
    odd->set_op_type("Frobnicate");
    odd->set_name("odd");
    odd->add_input("y");
    odd->add_output("z");
    cases.push_back({"unknown op", Save(m, "unknown-op.onnx"), "node 'odd' uses op 'Frobnicate'"});
  }
  {
    ModelProto m = OneNodeModel("Conv", {1, 2, 8, 8}, {2, 2, 3, 3}, {});
    TensorProto* w = m.mutable_graph()->mutable_initializer(0);
    w->clear_float_data();
    w->set_data_location(TensorProto::EXTERNAL);
    auto* entry = w->add_external_data();
    entry->set_key("location");
    entry->set_value("weights.bin");
    cases.push_back(
        {"missing external data", Save(m, "external.onnx"), "keeps its data in 'weights.bin'"});
  }
  cases.push_back(
      {"dynamic height",
       Save(OneNodeModel("Conv", {1, 2, 8, 8}, {2, 2, 3, 3}, {}, 13, {"", "", "height", ""}),
            "dynamic-h.onnx"),
       "dynamic dimension 'height' (dimension 2); give its shape with --input x="});
  cases.push_back({"missing", dir + "/nowhere.onnx", "does not exist"});
  for (const Case& c : cases) {
    StatusOr<ModelConvs> convs = ReadOnnxModel(c.path);
    ASSERT_FALSE(convs.ok()) << c.name;
    EXPECT_NE(convs.status().message().find(c.says), std::string::npos)
        << c.name << ": " << convs.status().message();
    EXPECT_EQ(convs.status().message().find('\n'), std::string::npos) << c.name;
    EXPECT_EQ(convs.status().code(),
              c.name == "missing" ? StatusCode::kNotFound : StatusCode::kInvalidArgument)
        << c.name;
  }
}

// Every seed of the ONNX fuzz target, the findings among them (regression-*: weights of
// another rank than the input crashed ONNX 1.12's shape inference, a zero stride divided
// by zero in it, a node name with a newline broke a message into two lines), is read or
// refused with one line, never a crash.
TEST(OnnxModel, EveryFuzzSeedIsReadOrRefusedWithOneLine) {
  int seeds = 0;
  for (const auto& entry :
       fs::directory_iterator(testing_support::SourceDir() + "/tests/fuzz/corpus/onnx")) {
    ++seeds;
    StatusOr<ModelConvs> convs = ReadOnnxModel(entry.path().string());
    if (!convs.ok()) {
      EXPECT_EQ(convs.status().code(), StatusCode::kInvalidArgument) << entry.path();
      EXPECT_EQ(convs.status().message().find('\n'), std::string::npos) << convs.status().message();
    }
  }
  EXPECT_GE(seeds, 9);
}

}  // namespace
}  // namespace convguard
