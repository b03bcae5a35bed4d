// The onnxruntime harness (scripts/ort_compare.py through tests/support/ort_runner.h) can
// fail: on tiny models written at test time by tests/ort/make_tiny_models.py under Debian's
// python3, an exact spatial split of a Conv agrees with it (within tolerance on random
// inputs, element for element on exact ones), the same split with one halo row missing does
// not, and every kind of bad input is exit status 2 with one line saying what. Tests skip,
// with the reason, where onnxruntime or Debian's onnx does not import.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "support/cli_runner.h"
#include "support/ort_runner.h"

namespace convguard {
namespace {

using namespace testing_support;

// Debian's interpreter by name: the first python3 on PATH may be another one, without
// python3-onnx.
constexpr char kSystemPython[] = "/usr/bin/python3";

// What make_tiny_models.py writes: Y is [1, 4, 12, 10]; the missing halo spoils output row
// 6 only, that is at most 4 channels x 10 columns.
const std::vector<int64_t> kOutputShape = {1, 4, 12, 10};
constexpr int64_t kOneRow = 4 * 10;

std::string Describe(const CliResult& r) {
  return "exit " + std::to_string(r.exit_code) + (r.exited ? "" : " (did not exit)") +
         "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

// The models, made once per process: conv.onnx (float weights) and its variants, its
// integer-weight copy conv.exact.onnx (ort_compare.py --make-exact) and that copy's variants
// (what a fixer would make of it), other_shape.onnx, and garbage.onnx (not a model).
struct TinyModels {
  std::string dir;
  std::string error;  // non-empty when making them failed
  std::string Path(const std::string& name) const { return dir + "/" + name; }
};

const TinyModels& Models() {
  static const TinyModels models = [] {
    TinyModels m;
    m.dir = MakeTempDir("ort-models");
    const std::string generator = SourceDir() + "/tests/ort/make_tiny_models.py";
    CliResult r = RunProgram({kSystemPython, generator, m.dir});
    if (!r.exited || r.exit_code != 0) {
      m.error = "make_tiny_models.py: " + Describe(r);
      return m;
    }
    r = MakeExactCopy(m.Path("conv.onnx"), m.Path("conv.exact.onnx"));
    if (!r.exited || r.exit_code != 0) {
      m.error = "ort_compare.py --make-exact: " + Describe(r);
      return m;
    }
    r = RunProgram({kSystemPython, generator, "--variants-of", m.Path("conv.exact.onnx"), m.dir});
    if (!r.exited || r.exit_code != 0) {
      m.error = "make_tiny_models.py --variants-of: " + Describe(r);
      return m;
    }
    WriteFile(m.Path("garbage.onnx"), "this is not an ONNX model\n");
    return m;
  }();
  return models;
}

class OrtHarness : public ::testing::Test {
 protected:
  void SetUp() override {
    CONVGUARD_REQUIRE_ORT();
    const CliResult onnx = RunProgram({kSystemPython, "-c", "import onnx"});
    if (!onnx.exited || onnx.exit_code != 0) {
      GTEST_SKIP() << kSystemPython << " cannot import onnx (Debian's python3-onnx): " << onnx.err;
    }
    ASSERT_EQ(Models().error, "");
  }
};

// ---- comparisons: agree and differ -----------------------------------------------------

struct CompareCase {
  std::string name;
  std::string original;  // files in the models' directory
  std::string fixed;
  std::string inputs;  // random | exact | both
  int exit_code;       // 0 agree, 1 differ
  std::optional<double> tolerance = std::nullopt;
};
void PrintTo(const CompareCase& c, std::ostream* os) { *os << c.name; }

class OrtCompare : public OrtHarness, public ::testing::WithParamInterface<CompareCase> {};

TEST_P(OrtCompare, ExitStatusAndReportTellWhetherTheModelsAgree) {
  const CompareCase& tc = GetParam();
  OrtCompareOptions options;
  options.inputs = tc.inputs;
  options.tolerance = tc.tolerance;
  const OrtComparison c =
      CompareWithOrt(Models().Path(tc.original), Models().Path(tc.fixed), options);
  ASSERT_TRUE(c.process.exited) << Describe(c.process);
  ASSERT_EQ(c.process.exit_code, tc.exit_code) << Describe(c.process);
  ASSERT_TRUE(c.parsed) << c.parse_error;
  EXPECT_EQ(c.agree, tc.exit_code == 0);
  EXPECT_FALSE(c.onnxruntime_version.empty());
  EXPECT_EQ(c.input_mode, tc.inputs);
  ASSERT_EQ(c.runs.size(), tc.inputs == "both" ? 2u : 1u);
  for (const OrtRun& run : c.runs) {
    SCOPED_TRACE(run.inputs + " inputs, " + run.criterion);
    ASSERT_EQ(run.outputs.size(), 1u);
    const OrtOutputComparison& y = run.outputs[0];
    EXPECT_EQ(y.name, "Y");
    EXPECT_EQ(y.shape, kOutputShape);
    EXPECT_EQ(y.elements, 480);
    if (tc.exit_code == 0) {
      EXPECT_TRUE(run.agree);
      EXPECT_LE(y.max_rel, tc.tolerance.value_or(1e-4));
      if (run.inputs == "exact" && !tc.tolerance) {
        // Integer data: every sum is exact in float32, so an exact rewrite gives the same
        // bits whatever order the runtime sums in.
        EXPECT_EQ(y.mismatches, 0);
        EXPECT_EQ(y.max_abs, 0.0);
        EXPECT_TRUE(y.bit_equal);
      }
    } else {
      EXPECT_FALSE(run.agree);
      EXPECT_FALSE(y.agree);
      EXPECT_FALSE(y.bit_equal);
      EXPECT_GT(y.mismatches, 0);
      EXPECT_LE(y.mismatches, kOneRow) << "only output row 6 reads the missing halo row";
      EXPECT_GT(y.max_rel, 1e-4);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    TinyModels, OrtCompare,
    ::testing::Values(
        CompareCase{"SplitRandomInputs", "conv.onnx", "conv.split.onnx", "random", 0},
        CompareCase{"SplitExactInputs", "conv.exact.onnx", "conv.exact.split.onnx", "exact", 0},
        CompareCase{"SplitBoth", "conv.exact.onnx", "conv.exact.split.onnx", "both", 0},
        CompareCase{"PadThenConvRandomInputs", "conv.onnx", "conv.pad_conv.onnx", "random", 0},
        CompareCase{"PadThenConvExactInputs", "conv.exact.onnx", "conv.exact.pad_conv.onnx",
                    "exact", 0},
        // --tolerance lifts the integer-weights rule: exact inputs, float weights.
        CompareCase{"SplitFloatWeightsExactInputsWithTolerance", "conv.onnx", "conv.split.onnx",
                    "exact", 0, 1e-5},
        CompareCase{"MissingHaloRandomInputs", "conv.onnx", "conv.wrong_halo.onnx", "random", 1},
        CompareCase{"MissingHaloExactInputs", "conv.exact.onnx", "conv.exact.wrong_halo.onnx",
                    "exact", 1},
        CompareCase{"MissingHaloBoth", "conv.exact.onnx", "conv.exact.wrong_halo.onnx", "both", 1},
        // A looser tolerance still catches it: a missing halo is wrong by the size of the
        // output, not by rounding.
        CompareCase{"MissingHaloWithTolerance", "conv.onnx", "conv.wrong_halo.onnx", "random", 1,
                    1e-3}),
    [](const ::testing::TestParamInfo<CompareCase>& info) { return info.param.name; });

// ---- bad input: exit status 2, one line ------------------------------------------------

struct BadInputCase {
  std::string name;
  std::string original;
  std::string fixed;
  std::string inputs;
  std::vector<std::string> message_parts;
};
void PrintTo(const BadInputCase& c, std::ostream* os) { *os << c.name; }

class OrtBadInput : public OrtHarness, public ::testing::WithParamInterface<BadInputCase> {};

TEST_P(OrtBadInput, IsExitStatusTwoWithOneLineSayingWhat) {
  const BadInputCase& tc = GetParam();
  OrtCompareOptions options;
  options.inputs = tc.inputs;
  const OrtComparison c =
      CompareWithOrt(Models().Path(tc.original), Models().Path(tc.fixed), options);
  ASSERT_TRUE(c.process.exited) << Describe(c.process);
  EXPECT_EQ(c.process.exit_code, 2) << Describe(c.process);
  EXPECT_EQ(c.process.out, "");
  ASSERT_FALSE(c.process.err.empty());
  EXPECT_EQ(c.process.err.find('\n'), c.process.err.size() - 1) << c.process.err;
  EXPECT_EQ(c.process.err.rfind("ort_compare: ", 0), 0u) << c.process.err;
  for (const std::string& part : tc.message_parts) {
    EXPECT_NE(c.process.err.find(part), std::string::npos)
        << "missing '" << part << "' in: " << c.process.err;
  }
}

INSTANTIATE_TEST_SUITE_P(
    TinyModels, OrtBadInput,
    ::testing::Values(
        BadInputCase{"MissingFile",
                     "conv.onnx",
                     "absent.onnx",
                     "random",
                     {"the fixed model ", "absent.onnx: no such file"}},
        BadInputCase{"NotAModel",
                     "garbage.onnx",
                     "conv.onnx",
                     "random",
                     {"cannot load the original model ", "garbage.onnx", "INVALID_PROTOBUF"}},
        BadInputCase{"OtherInputShape",
                     "conv.onnx",
                     "other_shape.onnx",
                     "random",
                     {"input 'X' is tensor(float) [1, 3, 12, 10] in the original model but "
                      "tensor(float) [1, 3, 12, 11] in the fixed model"}},
        // Exact inputs prove nothing with float weights: the harness says how to get
        // integer ones instead of comparing.
        BadInputCase{"FloatWeightsWithExactInputs",
                     "conv.onnx",
                     "conv.split.onnx",
                     "exact",
                     {"initializer 'W' of the original model", "--make-exact ORIGINAL OUT"}}),
    [](const ::testing::TestParamInfo<BadInputCase>& info) { return info.param.name; });

// ---- the graphs the runtime really runs ------------------------------------------------

int CountConvs(const std::map<std::string, int>& nodes) {
  int n = 0;
  for (const auto& [op, count] : nodes) {
    // "Conv", or a layout-specific one such as "com.microsoft.nchwc.Conv".
    if (op == "Conv" || op.ends_with(".Conv")) n += count;
  }
  return n;
}

int Count(const std::map<std::string, int>& nodes, const std::string& op) {
  auto it = nodes.find(op);
  return it == nodes.end() ? 0 : it->second;
}

OrtComparison CompareSavingOptimized(const std::string& original, const std::string& fixed,
                                     const std::string& dir) {
  OrtCompareOptions options;
  options.save_optimized_dir = dir;
  return CompareWithOrt(Models().Path(original), Models().Path(fixed), options);
}

TEST_F(OrtHarness, SaveOptimizedWritesBothGraphsAndTheSplitSurvivesInThem) {
  const std::string dir = MakeTempDir("ort-optimized");
  const OrtComparison c = CompareSavingOptimized("conv.onnx", "conv.split.onnx", dir);
  ASSERT_EQ(c.process.exit_code, 0) << Describe(c.process);
  ASSERT_TRUE(c.parsed) << c.parse_error;
  ASSERT_EQ(c.optimized.size(), 2u);
  EXPECT_EQ(c.optimized.at("original").path, dir + "/conv.optimized.onnx");
  EXPECT_EQ(c.optimized.at("fixed").path, dir + "/conv.split.optimized.onnx");
  for (const auto& [role, graph] : c.optimized) {
    ASSERT_TRUE(std::filesystem::exists(graph.path)) << role << ": " << graph.path;
    EXPECT_GT(std::filesystem::file_size(graph.path), 0u) << graph.path;
  }
  EXPECT_EQ(CountConvs(c.optimized.at("original").nodes), 1);
  // The runtime runs the two tiles as two convolutions: it did not merge them back.
  const std::map<std::string, int>& fixed = c.optimized.at("fixed").nodes;
  EXPECT_EQ(CountConvs(fixed), 2);
  EXPECT_EQ(Count(fixed, "Slice"), 2);
  EXPECT_EQ(Count(fixed, "Concat"), 1);
}

// Why the harness saves optimized graphs: the model on disk has a Pad, the graph the runtime
// runs does not (onnxruntime 1.32 fuses a constant zero Pad into the next Conv's pads). A
// rewrite that avoids a Conv's padding by an explicit Pad would be undone the same way, and
// only a scan of the optimized graph shows it.
TEST_F(OrtHarness, SaveOptimizedShowsTheRuntimeFusingAZeroPadIntoTheConv) {
  const std::string dir = MakeTempDir("ort-optimized");
  const OrtComparison c = CompareSavingOptimized("conv.onnx", "conv.pad_conv.onnx", dir);
  ASSERT_EQ(c.process.exit_code, 0) << Describe(c.process);
  ASSERT_TRUE(c.parsed) << c.parse_error;
  const std::map<std::string, int>& fixed = c.optimized.at("fixed").nodes;
  EXPECT_EQ(Count(fixed, "Pad"), 0) << c.process.out;
  EXPECT_EQ(CountConvs(fixed), 1) << c.process.out;
}

TEST_F(OrtHarness, SaveOptimizedKeepsModelsWithTheSameFileNameApart) {
  const std::string dir = MakeTempDir("ort-optimized");
  const OrtComparison c = CompareSavingOptimized("conv.onnx", "conv.onnx", dir);
  ASSERT_EQ(c.process.exit_code, 0) << Describe(c.process);
  ASSERT_TRUE(c.parsed) << c.parse_error;
  EXPECT_EQ(c.optimized.at("original").path, dir + "/original.conv.optimized.onnx");
  EXPECT_EQ(c.optimized.at("fixed").path, dir + "/fixed.conv.optimized.onnx");
  EXPECT_TRUE(std::filesystem::exists(c.optimized.at("original").path));
  EXPECT_TRUE(std::filesystem::exists(c.optimized.at("fixed").path));
}

// ---- the skip reason ---------------------------------------------------------------------

// Tests skip with the interpreter tried and why it failed; this needs no onnxruntime.
TEST(OrtAvailability, ReasonNamesTheInterpreterAndWhatWentWrong) {
  std::string why;
  EXPECT_FALSE(OrtImportsUnder("/nonexistent/bin/python", &why));
  EXPECT_NE(why.find("/nonexistent/bin/python cannot import onnxruntime: "), std::string::npos)
      << why;
  EXPECT_FALSE(OrtImportsUnder("/bin/false", &why));
  EXPECT_EQ(why, "/bin/false cannot import onnxruntime: exit status 1");
}

}  // namespace
}  // namespace convguard
