// `convguard scan` and `convguard fix` end to end: the real binary, real workers probing
// on the emulated RDNA1 stack (or under injected rules), a real SQLite store, fixed models
// checked by the ONNX checker (inside fix) and run by onnxruntime against the original.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "onnx/onnx_test_util.h"
#include "support/cli_runner.h"
#include "support/ort_runner.h"

namespace convguard {
namespace {

namespace fs = std::filesystem;
using namespace testing_support;

const std::vector<std::string> kQuick = {"--deadline-floor", "300", "--confirm-floor", "800",
                                         "--quiet"};

std::vector<std::string> Args(std::vector<std::string> head,
                              const std::vector<std::string>& tail = kQuick) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

// One Conv with seeded integer weights and bias in [-2, 2], so that a fixed model's output
// is exact in float32 on integer inputs and onnxruntime can be asked for equality.
std::string IntegerConvModel(const std::string& name, const std::vector<int64_t>& x,
                             const std::vector<int64_t>& w,
                             const std::vector<onnx::AttributeProto>& attributes) {
  onnx::ModelProto m = OneNodeModel("Conv", x, w, attributes);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> small(-2, 2);
  onnx::TensorProto* weights = m.mutable_graph()->mutable_initializer(0);
  for (int i = 0; i < weights->float_data_size(); ++i)
    weights->set_float_data(i, static_cast<float>(small(rng)));
  onnx::TensorProto* bias = m.mutable_graph()->add_initializer();
  bias->set_name("b");
  bias->set_data_type(onnx::TensorProto::FLOAT);
  bias->add_dims(w[0]);
  for (int64_t k = 0; k < w[0]; ++k) bias->add_float_data(static_cast<float>(small(rng)));
  m.mutable_graph()->mutable_node(0)->add_input("b");
  return Save(m, name);
}

// The seed report's layer: nn.Conv2d(16, 32, 3, padding=1) on 1x16x64x64.
std::string SeedLayerModel() {
  return IntegerConvModel("seed-layer.onnx", {1, 16, 64, 64}, {32, 16, 3, 3},
                          {Ints("pads", {1, 1, 1, 1})});
}

TEST(ModelCli, TheSeedLayerIsFixedAndComputesTheSameFunction) {
  const std::string model = SeedLayerModel();
  const std::string dir = MakeTempDir("model-seed");
  const std::string db = dir + "/v.sqlite";
  const std::string fixed = dir + "/fixed.onnx";

  CliResult scan =
      RunConvguard(Args({"scan", model, "--backend", "emulated-rdna1", "--db", db, "--probe"}));
  EXPECT_EQ(scan.exit_code, 21) << scan.out << scan.err;  // works with exact rewrites
  EXPECT_NE(scan.out.find("HANG -> "), std::string::npos) << scan.out;
  EXPECT_NE(scan.out.find("16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-1-NCHW-FP32-F"), std::string::npos)
      << scan.out;
  EXPECT_NE(scan.out.find("answer (EMULATED stack): works with exact rewrites: 1 of 1 layer"),
            std::string::npos)
      << scan.out;

  CliResult fix =
      RunConvguard(Args({"fix", model, "-o", fixed, "--backend", "emulated-rdna1", "--db", db}));
  ASSERT_EQ(fix.exit_code, 0) << fix.out << fix.err;
  EXPECT_NE(fix.out.find("fixed node 'the_conv' (n1_c16_h64_w64_k32_r3_s3_p1"), std::string::npos)
      << fix.out;
  EXPECT_NE(fix.out.find("wrote " + fixed), std::string::npos) << fix.out;
  ASSERT_TRUE(fs::exists(fixed));

  // The fixed model runs as is on the same stack, probed afresh.
  CliResult rescan =
      RunConvguard(Args({"scan", fixed, "--backend", "emulated-rdna1", "--db", db, "--probe"}));
  EXPECT_EQ(rescan.exit_code, 0) << rescan.out << rescan.err;
  EXPECT_NE(rescan.out.find("works: all"), std::string::npos) << rescan.out;

  // Nothing a user stored is overwritten: not the fixed model, never the original.
  CliResult again =
      RunConvguard(Args({"fix", model, "-o", fixed, "--backend", "emulated-rdna1", "--db", db}));
  EXPECT_EQ(again.exit_code, 2) << again.out << again.err;
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
  CliResult itself = RunConvguard(
      Args({"fix", model, "-o", model, "--force", "--backend", "emulated-rdna1", "--db", db}));
  EXPECT_EQ(itself.exit_code, 2) << itself.out << itself.err;
  EXPECT_NE(itself.err.find("never overwritten"), std::string::npos) << itself.err;

  CONVGUARD_REQUIRE_ORT();
  OrtComparison random = CompareWithOrt(model, fixed);
  ASSERT_TRUE(random.parsed) << random.parse_error << random.process.err;
  EXPECT_TRUE(random.agree) << random.process.out;
  OrtCompareOptions exact;
  exact.inputs = "exact";
  OrtComparison equal = CompareWithOrt(model, fixed, exact);
  ASSERT_TRUE(equal.parsed) << equal.parse_error << equal.process.err;
  ASSERT_EQ(equal.runs.size(), 1u);
  ASSERT_EQ(equal.runs[0].outputs.size(), 1u);
  EXPECT_TRUE(equal.runs[0].outputs[0].bit_equal) << equal.process.out;
}

// Under a rule that hangs every convolution taller than 24 rows, only spatial tiles help;
// the fixed model cuts them with Slices, which onnxruntime's optimizer cannot fold into a
// Conv's pads the way it folds a zero spatial Pad: the graph the runtime really runs
// scans clean.
TEST(ModelCli, SpatialTilesSurviveTheRuntimesGraphOptimizer) {
  const std::string dir = MakeTempDir("model-tiles");
  const std::string rules =
      WriteFile(dir + "/tall.rules", "spin when direction == fwd && h > 24\n");
  const std::string model =
      IntegerConvModel("tall.onnx", {1, 8, 40, 40}, {8, 8, 3, 3}, {Ints("pads", {1, 1, 1, 1})});
  const std::string db = dir + "/v.sqlite";
  const std::string fixed = dir + "/fixed.onnx";
  const std::vector<std::string> stack = {"--backend", "reference", "--inject", rules, "--db", db};
  CliResult fix = RunConvguard(Args(Args({"fix", model, "-o", fixed, "--probe"}, stack)));
  ASSERT_EQ(fix.exit_code, 0) << fix.out << fix.err;
  EXPECT_NE(fix.out.find("spatial-tiling"), std::string::npos) << fix.out;
  EXPECT_NE(fix.out.find(" Conv, 0 Pad, "), std::string::npos)
      << "no channel padding is needed here: " << fix.out;

  CONVGUARD_REQUIRE_ORT();
  OrtCompareOptions options;
  options.inputs = "exact";
  options.save_optimized_dir = dir + "/optimized";
  options.optimization = "basic";  // standard operators only, with the pad fusion
  fs::create_directories(options.save_optimized_dir);
  OrtComparison compared = CompareWithOrt(model, fixed, options);
  ASSERT_TRUE(compared.parsed) << compared.parse_error << compared.process.err;
  EXPECT_TRUE(compared.agree) << compared.process.out;
  ASSERT_EQ(compared.optimized.count("fixed"), 1u);
  const OrtOptimizedGraph& ran = compared.optimized["fixed"];
  EXPECT_GE(ran.nodes.at("Conv"), 2) << "the tiles are still separate convolutions";
  EXPECT_GE(ran.nodes.at("Slice"), 2);
  CliResult rescan = RunConvguard(Args(Args({"scan", ran.path, "--probe"}, stack)));
  EXPECT_EQ(rescan.exit_code, 0) << rescan.out << rescan.err;
  EXPECT_EQ(rescan.out.find("HANG"), std::string::npos) << rescan.out;
}

TEST(ModelCli, AModelThatRunsAsIsIsNotRewritten) {
  const std::string dir = MakeTempDir("model-fine");
  const std::string fixed = dir + "/fixed.onnx";
  CliResult fix =
      RunConvguard(Args({"fix", SourceDir() + "/tests/inputs/zoo/small-cnn.onnx", "-o", fixed,
                         "--backend", "emulated-rdna1", "--db", dir + "/v.sqlite", "--probe"}));
  EXPECT_EQ(fix.exit_code, 0) << fix.out << fix.err;
  EXPECT_NE(fix.out.find("nothing to fix: works: all 7 layers run as is"), std::string::npos)
      << fix.out;
  EXPECT_NE(fix.out.find("no file written"), std::string::npos) << fix.out;
  EXPECT_FALSE(fs::exists(fixed));
}

TEST(ModelCli, TrainingAddsEveryLayersBackwardProblems) {
  CliResult scan = RunConvguard(Args({"scan", SeedLayerModel(), "--training", "--backend",
                                      "emulated-rdna1", "--no-store", "--probe"}));
  EXPECT_EQ(scan.exit_code, 21) << scan.out << scan.err;
  EXPECT_NE(scan.out.find("3 distinct problems (forward and backward: --training)"),
            std::string::npos)
      << scan.out;
  EXPECT_NE(scan.out.find("bwd-data"), std::string::npos) << scan.out;
  EXPECT_NE(scan.out.find("n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_bias_f32_nchw_bwd-weights"),
            std::string::npos)
      << scan.out;
}

// A layer whose forward runs but whose backward-data hangs: for training, the layer's plan
// is a forward plan whose leaves' backward problems run too, and the fixed model is the
// one that trains (a rewrite of the forward is differentiated into rewrites of both
// backward problems).
TEST(ModelCli, ForTrainingABackwardHangIsFixedThroughTheForwardPlan) {
  const std::string dir = MakeTempDir("model-train");
  const std::string rules =
      WriteFile(dir + "/bwd.rules", "spin when direction == bwd_data && c == 16 && k == 32\n");
  const std::string model = SeedLayerModel();
  const std::vector<std::string> stack = {"--backend", "reference", "--inject",
                                          rules,       "--db",      dir + "/v.sqlite"};
  CliResult scan =
      RunConvguard(Args(Args({"scan", model, "--training", "--probe", "--json"}, stack)));
  EXPECT_EQ(scan.exit_code, 21) << scan.out << scan.err;
  EXPECT_NE(scan.out.find("\"by_forward_plan\": true"), std::string::npos) << scan.out;

  CliResult text = RunConvguard(Args(Args({"scan", model, "--training"}, stack)));
  EXPECT_EQ(text.exit_code, 21) << text.out << text.err;
  EXPECT_NE(text.out.find("HANG -> runs as the forward plan's leaves"), std::string::npos)
      << text.out;

  // Without --training nothing is wrong: the forward runs as is.
  CliResult inference = RunConvguard(Args(Args({"scan", model, "--probe"}, stack)));
  EXPECT_EQ(inference.exit_code, 0) << inference.out << inference.err;

  const std::string fixed = dir + "/fixed.onnx";
  CliResult fix = RunConvguard(Args(Args({"fix", model, "-o", fixed, "--training"}, stack)));
  ASSERT_EQ(fix.exit_code, 0) << fix.out << fix.err;
  ASSERT_TRUE(fs::exists(fixed));
  CliResult rescan = RunConvguard(Args(Args({"scan", fixed, "--training", "--probe"}, stack)));
  EXPECT_EQ(rescan.exit_code, 0) << rescan.out << rescan.err;
  EXPECT_EQ(rescan.out.find("HANG"), std::string::npos) << rescan.out;
}

TEST(ModelCli, AnApplicationsLogIsScannedLayerByLayer) {
  const std::string log = SourceDir() + "/tests/inputs/miopen/pytorch_tinynet_train.log";
  CliResult scan = RunConvguard(
      Args({"scan", log, "--backend", "reference", "--no-store", "--probe", "--json"}));
  ASSERT_TRUE(scan.exit_code == 0) << scan.out << scan.err;
  const nlohmann::json report = nlohmann::json::parse(scan.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << scan.out;
  EXPECT_EQ(report["format"], "miopen-log");
  EXPECT_EQ(report["outcome"], "works");
  int unsupported = 0, checked = 0;
  for (const auto& layer : report["layers"]) {
    if (layer["state"] == "UNSUPPORTED") {
      ++unsupported;
      EXPECT_FALSE(layer["unsupported"].get<std::string>().empty());
    } else {
      ++checked;
      EXPECT_EQ(layer["state"], "OK") << layer.dump();
    }
  }
  EXPECT_EQ(checked, 11);     // the distinct problems of the log
  EXPECT_EQ(unsupported, 5);  // its unread lines, each with its reason
  EXPECT_NE(report["notes"][0].get<std::string>().find(
                "41 convolution commands (11 from Find, 30 executions)"),
            std::string::npos)
      << report["notes"];
}

TEST(ModelCli, BadInputIsOneLineExitTwoAndNothingWritten) {
  const std::string dir = MakeTempDir("model-bad");
  const std::string out = dir + "/out.onnx";
  {
    std::ifstream in(SourceDir() + "/tests/inputs/zoo/small-cnn.onnx", std::ios::binary);
    std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::ofstream(dir + "/truncated.onnx", std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  }
  std::ofstream(dir + "/empty.log").close();
  std::ofstream(dir + "/noise.txt", std::ios::binary)
      << std::string("\x01\x02garbage\n\xff\xfe", 12);
  std::ofstream(dir + "/plain.log") << "epoch 1 loss 0.3\nepoch 2 loss 0.2\n";
  const std::string log = SourceDir() + "/tests/inputs/miopen/pytorch_tinynet_train.log";
  const std::string small = SourceDir() + "/tests/inputs/zoo/small-cnn-dynamic.onnx";
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"scan", dir + "/truncated.onnx"}, "is not an ONNX model"},
      {{"fix", dir + "/truncated.onnx", "-o", out}, "is not an ONNX model"},
      {{"scan", dir + "/empty.log"}, "is neither an ONNX model"},
      {{"scan", dir + "/noise.txt"}, "is neither an ONNX model"},
      {{"scan", dir + "/plain.log", "--format", "log"},
       "no MIOpenDriver convolution command in 2 lines"},
      {{"scan", dir + "/missing.onnx"}, "does not exist"},
      {{"scan"}, "no MODEL given"},
      {{"scan", small, "--input", "input=4x3"}, "has 2 dimensions"},
      {{"scan", small, "--input", "input=4xx3"}, "is not a dimension"},
      {{"scan", small, "--format", "tflite"},
       "--format 'tflite' is unknown (allowed: auto, onnx, log, layers)"},
      {{"fix", log, "-o", out}, "fix writes ONNX models"},
      {{"fix", small}, "no --output FILE given"},
      {{"scan", small, "--json", "--markdown"}, "exclude each other"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.insert(args.end(), {"--backend", "emulated-rdna1", "--no-store"});
    CliResult r = RunConvguard(args);
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << " " << c.says << ": " << r.out << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(out)) << c.says;
  }
}

}  // namespace
}  // namespace convguard
