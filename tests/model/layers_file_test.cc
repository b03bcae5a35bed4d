// Layers files (convguard/problem_source.h, ReadLayersFile): what a framework saw, read
// strictly; every mistake named with the layer's index.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "convguard/problem_source.h"
#include "convguard/text_forms.h"
#include "support/cli_runner.h"

namespace convguard {
namespace {

using testing_support::MakeTempDir;
using testing_support::WriteFile;

TEST(LayersFile, ReadsLayersInOrderWithTheirProblemsAndReasons) {
  const std::string text = R"({"convguard_layers": 1, "origin": "tiny net", "notes": ["batch 2"],
    "layers": [
      {"name": "conv1", "op": "Conv2d", "problem": "n2_c3_h32_w32_k16_r3_s3_p1_u1_d1_g1_bias_f32_nchw_fwd"},
      {"name": "conv2", "op": "conv2d", "problem": "conv -n 2 -c 16 -H 32 -W 32 -k 32 -y 3 -x 3 -p 1 -q 1 -F 1", "calls": 3},
      {"name": "up", "op": "ConvTranspose2d", "unsupported": "transposed convolutions are not supported yet"}]})";
  StatusOr<ModelConvs> m = ParseLayers(text, "net.layers.json");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->format, "layers");
  EXPECT_EQ(m->origin, "tiny net");
  EXPECT_EQ(m->notes, std::vector<std::string>{"batch 2"});
  ASSERT_EQ(m->convs.size(), 3u);
  EXPECT_EQ(m->convs[0].name, "conv1");
  ASSERT_TRUE(m->convs[0].problem.has_value());
  EXPECT_EQ(ToCanonical(*m->convs[0].problem),
            "n2_c3_h32_w32_k16_r3_s3_p1_u1_d1_g1_bias_f32_nchw_fwd");
  EXPECT_EQ(m->convs[1].calls, 3);
  ASSERT_TRUE(m->convs[1].problem.has_value());
  EXPECT_EQ(m->convs[1].problem->k, 32);
  EXPECT_FALSE(m->convs[2].problem.has_value());
  EXPECT_EQ(m->convs[2].unsupported, "transposed convolutions are not supported yet");
  EXPECT_TRUE(LooksLikeLayers(text.substr(0, 40)));
  EXPECT_FALSE(LooksLikeLayers("MIOpen(HIP): Command [LogCmdConvolution] ./bin/MIOpenDriver conv"));
  EXPECT_FALSE(LooksLikeLayers(R"({"something": "else"})"));
}

TEST(LayersFile, EveryMistakeIsOneLineNamingTheLayer) {
  const std::string ok_layer =
      R"({"name": "a", "op": "Conv2d", "problem": "n1_c3_h8_w8_k4_r3_s3_p1"})";
  struct Case {
    std::string text, message;
  };
  const std::vector<Case> cases = {
      {"not json", "is not a JSON object"},
      {"[1, 2]", "is not a JSON object"},
      {R"({"layers": []})", "\"convguard_layers\" must be 1"},
      {R"({"convguard_layers": 2, "layers": []})", "\"convguard_layers\" must be 1"},
      {R"({"convguard_layers": 1})", "\"layers\" must be a list"},
      {R"({"convguard_layers": 1, "layers": [)" + ok_layer + R"(, 7]})",
       "layer 1: not a JSON object"},
      {R"({"convguard_layers": 1, "layers": [{"op": "Conv2d", "problem": "n1_c3_h8_w8_k4_r3_s3_p1"}]})",
       "layer 0: \"name\" must be a string"},
      {R"({"convguard_layers": 1, "layers": [{"name": "x", "op": "Conv2d"}]})",
       "layer 0 ('x'): give exactly one of \"problem\" and \"unsupported\""},
      {R"({"convguard_layers": 1, "layers": [{"name": "x", "op": "Conv2d", "problem": "n1_c3", "unsupported": "y"}]})",
       "give exactly one of"},
      {R"({"convguard_layers": 1, "layers": [{"name": "x", "op": "Conv2d", "problem": "n1_c3_h8_w8_k4_r9_s9_p0"}]})",
       "layer 0 ('x'): problem 'n1_c3_h8_w8_k4_r9_s9_p0'"},
      {R"({"convguard_layers": 1, "layers": [{"name": "x", "op": "Conv2d", "problem": "garbage"}]})",
       "layer 0 ('x'): problem 'garbage'"},
      {R"({"convguard_layers": 1, "layers": [{"name": "x", "op": "Conv2d", "problem": "n1_c3_h8_w8_k4_r3_s3_p1", "calls": 0}]})",
       "\"calls\" must be a whole number >= 1"},
      {R"({"convguard_layers": 1, "notes": "x", "layers": []})", "\"notes\" must be a list"},
      {"{\"convguard_layers\": 1, \"layers\": [{\"name\": \"a\\u0001b\", \"op\": \"C\"}]}",
       "layer 0 ('a?b')"},
  };
  for (const Case& c : cases) {
    StatusOr<ModelConvs> m = ParseLayers(c.text, "bad.json");
    ASSERT_FALSE(m.ok()) << c.text;
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(m.status().message().find(c.message), std::string::npos)
        << c.text << "\n  -> " << m.status().message();
    EXPECT_NE(m.status().message().find("layers file 'bad.json'"), std::string::npos);
    EXPECT_EQ(m.status().message().find('\n'), std::string::npos);
  }
}

TEST(LayersFile, FilesAreReadOrRefusedByName) {
  const std::string dir = MakeTempDir("layers");
  const std::string path = WriteFile(
      dir + "/net.json",
      R"({"convguard_layers": 1, "layers": [{"name": "a", "op": "Conv2d", "problem": "n1_c3_h8_w8_k4_r3_s3_p1"}]})");
  StatusOr<ModelConvs> m = ReadLayersFile(path);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->origin, path);
  EXPECT_EQ(ReadLayersFile(dir + "/missing.json").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadLayersFile(dir).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace convguard
