// Helpers of the ONNX tests: a model's convolutions against the zoo's hook records.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convguard/onnx.h"
#include "convguard/text_forms.h"

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

}  // namespace convguard::testing_support
