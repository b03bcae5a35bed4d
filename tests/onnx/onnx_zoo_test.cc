// The generated zoo (every model with its weights, tests/zoo/zoo.cmake), read back: every
// convolution has the shape PyTorch's forward hooks saw.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "onnx/onnx_test_util.h"

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

}  // namespace
}  // namespace convguard
