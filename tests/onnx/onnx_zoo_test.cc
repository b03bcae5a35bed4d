// The generated zoo (every model with its weights, tests/zoo/zoo.cmake), read back: every
// convolution has the shape PyTorch's forward hooks saw.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "onnx/onnx_test_util.h"
#include "support/cli_runner.h"
#include "support/ort_runner.h"

namespace convguard {
namespace {

namespace fs = std::filesystem;

// The zoo's folder, or empty (and the reason) when this run has none.
std::string ZooDir(std::string* why) {
  const char* dir = std::getenv("CONVGUARD_ZOO_DIR");
  if (dir == nullptr || !fs::exists(std::string(dir) + "/resnet50.onnx")) {
    *why =
        "no generated zoo (ctest's Zoo.Generate makes it in the build folder; it skips where "
        "/usr/bin/python3 "
        "cannot import torch and torchvision)";
    return "";
  }
  return dir;
}

TEST(OnnxZoo, EveryModelHasTheShapesPyTorchSaw) {
  std::string why;
  const std::string dir = ZooDir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  int models = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string path = entry.path().string();
    if (!path.ends_with(".convs.json")) continue;
    const std::string onnx =
        path.substr(0, path.size() - std::string(".convs.json").size()) + ".onnx";
    SCOPED_TRACE(onnx);
    testing_support::ExpectConvsMatchHooks(onnx, path);
    ++models;
  }
  EXPECT_GE(models, 6);
}

// The acceptance check: on the emulated RDNA1 stack, `fix` makes every zoo model
// scan clean, and onnxruntime agrees with the original within tolerance; a model whose
// every layer is fine is not rewritten.
TEST(OnnxZoo, FixMakesEveryModelScanCleanAndOnnxruntimeAgrees) {
  std::string why;
  const std::string dir = ZooDir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  const std::string work = testing_support::MakeTempDir("zoo-fix");
  const std::string db = work + "/v.sqlite";
  const std::vector<std::string> stack = {"--backend", "emulated-rdna1", "--db", db, "--quiet"};
  int fixed_models = 0, fine_models = 0;
  std::vector<std::pair<std::string, std::string>> to_compare;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string model = entry.path().string();
    if (!model.ends_with(".onnx")) continue;
    SCOPED_TRACE(model);
    const std::string fixed = work + "/" + entry.path().stem().string() + ".fixed.onnx";
    std::vector<std::string> args = {"fix", model, "-o", fixed, "--probe"};
    args.insert(args.end(), stack.begin(), stack.end());
    testing_support::CliResult fix = testing_support::RunConvguard(args, 600.0);
    ASSERT_EQ(fix.exit_code, 0) << fix.out << fix.err;
    if (fix.out.find("nothing to fix") != std::string::npos) {
      EXPECT_FALSE(fs::exists(fixed));
      ++fine_models;
      continue;
    }
    ASSERT_TRUE(fs::exists(fixed)) << fix.out;
    ++fixed_models;
    std::vector<std::string> rescan = {"scan", fixed, "--probe"};
    rescan.insert(rescan.end(), stack.begin(), stack.end());
    testing_support::CliResult scan = testing_support::RunConvguard(rescan, 600.0);
    EXPECT_EQ(scan.exit_code, 0) << scan.out << scan.err;
    EXPECT_NE(scan.out.find("works: all"), std::string::npos) << scan.out;
    to_compare.emplace_back(model, fixed);
  }
  EXPECT_GE(fixed_models, 2) << "the emulated stack hangs on ResNet-18 and ResNet-50";
  EXPECT_GE(fine_models, 3);
  CONVGUARD_REQUIRE_ORT();
  for (const auto& [model, fixed] : to_compare) {
    testing_support::OrtComparison compared = testing_support::CompareWithOrt(model, fixed);
    ASSERT_TRUE(compared.parsed) << model << ": " << compared.parse_error << compared.process.err;
    EXPECT_TRUE(compared.agree) << model << ": " << compared.process.out;
  }
}

}  // namespace
}  // namespace convguard
