#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "convguard/problem.h"
#include "convguard/problem_source.h"
#include "convguard/text_forms.h"

namespace convguard {

// Failures print a Problem in its canonical form rather than as raw bytes. Internal
// linkage, and found by argument-dependent lookup from inside GoogleTest.
static void PrintTo(const Problem& p, std::ostream* os) { *os << ToCanonical(p); }

namespace {

namespace fs = std::filesystem;

Problem Conv(int64_t c, int64_t k, int64_t hw, int64_t r, int64_t pad, int64_t stride = 1) {
  Problem p;
  p.c = c;
  p.k = k;
  p.h = p.w = hw;
  p.r = p.s = r;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = pad;
  p.stride_h = p.stride_w = stride;
  return p;
}

std::vector<int64_t> Channels(const std::vector<ListedProblem>& list) {
  std::vector<int64_t> out;
  for (const ListedProblem& lp : list) out.push_back(lp.problem.c);
  return out;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// tests/inputs, from the environment ctest sets (see tests/CMakeLists.txt) or, for a
// test binary run by hand, from the build's compile definition.
std::string InputsDir() {
  if (const char* root = std::getenv("CONVGUARD_SOURCE_DIR")) {
    return std::string(root) + "/tests/inputs";
  }
#ifdef CONVGUARD_TEST_INPUTS_DIR
  return CONVGUARD_TEST_INPUTS_DIR;
#else
  return "";
#endif
}

// Writes lists into a fresh directory of its own under the test temp dir.
class ListFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           (std::string("convguard_lists_") + info->test_suite_name() + "_" + info->name());
    std::error_code ec;
    fs::remove_all(dir_, ec);
    fs::create_directories(dir_, ec);
    ASSERT_FALSE(ec) << ec.message();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string Write(const std::string& relative, const std::string& text) {
    const fs::path path = dir_ / relative;
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  fs::path dir_;
};

TEST(ProblemListTextTest, CommentsBlankLinesAndForms) {
  const std::string text =
      "# a header comment\n"
      "\n"
      "n1_c16_h32_w32_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd   # trailing comment\n"
      "   \t\n"
      "  16-48-48-3x3-32-48-48-1-1x1-1x1-1x1-0-NCHW-FP32-F\n"
      "conv -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -g 1 -F 1#x\n"
      "    # an indented comment\n"
      "c16_h8_k32_r3_p1";  // no final newline
  StatusOr<std::vector<ListedProblem>> list = ParseProblemListText(text, "mem.list");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 4u);
  EXPECT_EQ((*list)[0].problem, Conv(16, 32, 32, 3, 1));
  EXPECT_EQ((*list)[1].problem, Conv(16, 32, 48, 3, 1));
  EXPECT_EQ((*list)[2].problem, Conv(16, 32, 64, 3, 1));
  EXPECT_EQ((*list)[3].problem, Conv(16, 32, 8, 3, 1));
  EXPECT_EQ((*list)[0].source, "mem.list:3");
  EXPECT_EQ((*list)[1].source, "mem.list:5");
  EXPECT_EQ((*list)[2].source, "mem.list:6");
  EXPECT_EQ((*list)[3].source, "mem.list:8");
  EXPECT_EQ((*list)[0].text, "n1_c16_h32_w32_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd");
  EXPECT_EQ((*list)[1].text, "16-48-48-3x3-32-48-48-1-1x1-1x1-1x1-0-NCHW-FP32-F");
  EXPECT_EQ((*list)[2].text,
            "conv -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -g 1 -F 1");
}

TEST(ProblemListTextTest, EmptyListAndCrlfAndByteOrderMark) {
  StatusOr<std::vector<ListedProblem>> empty = ParseProblemListText("# nothing\n\n", "e.list");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->empty());

  StatusOr<std::vector<ListedProblem>> crlf =
      ParseProblemListText("\xEF\xBB\xBF# bom\r\nc16_h8_k32_r3\r\n\r\nc3_h8_k16_r3\r\n", "w.list");
  ASSERT_TRUE(crlf.ok()) << crlf.status().ToString();
  ASSERT_EQ(crlf->size(), 2u);
  EXPECT_EQ((*crlf)[1].source, "w.list:4");
  EXPECT_EQ((*crlf)[1].text, "c3_h8_k16_r3");
}

TEST(ProblemListTextTest, MiopenCommandLogExtractsDriverCommands) {
  const std::string log =
      "MIOpen(HIP): Info [GetForwardSolutions] ...\n"
      "MIOpen(HIP): Command [LogCmdConvolution] ./bin/MIOpenDriver conv -n 1 -c 16 -H 48 -W 48 "
      "-k 32 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -m conv -g 1 -F 1 -t 1\n"
      "MIOpen(HIP): Command [LogCmdBNorm] ./bin/MIOpenDriver bnormfp16 -n 1 -c 32 -H 48 -W 48 "
      "-m 1 --forw 1 -b 0 -r 1 -s 1\n"
      "MIOpen(HIP): Command [LogCmdConvolution] ./bin/MIOpenDriver convfp16 -n 2 -c 16 -H 48 "
      "-W 48 -k 32 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -m conv -g 1 -F 2 -t 1\n"
      "MIOpen: Warning [something] unrelated chatter\n"
      "[2025-11-08 12:00:00] MIOpenDriver conv -n 1 -c 3 -H 64 -W 64 -k 16 -y 3 -x 3 -p 1 -q 1 -F "
      "1\n";
  StatusOr<std::vector<ListedProblem>> list = ParseProblemListText(log, "miopen.log");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].problem, Conv(16, 32, 48, 3, 1));
  EXPECT_EQ((*list)[0].source, "miopen.log:2");
  EXPECT_EQ((*list)[0].text.substr(0, 10), "conv -n 1 ");
  Problem bwd = Conv(16, 32, 48, 3, 1);
  bwd.n = 2;
  bwd.dtype = DataType::kF16;
  bwd.direction = Direction::kBackwardData;
  EXPECT_EQ((*list)[1].problem, bwd);
  EXPECT_EQ((*list)[1].source, "miopen.log:4");
  EXPECT_EQ((*list)[2].problem, Conv(3, 16, 64, 3, 1));
  EXPECT_EQ((*list)[2].source, "miopen.log:6");
}

struct LineErrorCase {
  std::string name;
  std::string text;
  StatusCode code;
  std::vector<std::string> message_parts;
};

class ProblemListLineErrorTest : public ::testing::TestWithParam<LineErrorCase> {};

TEST_P(ProblemListLineErrorTest, NamesFileAndLine) {
  const LineErrorCase& tc = GetParam();
  StatusOr<std::vector<ListedProblem>> list = ParseProblemListText(tc.text, "bad.list");
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), tc.code) << list.status().ToString();
  for (const std::string& part : tc.message_parts) {
    EXPECT_TRUE(Contains(list.status().message(), part))
        << "missing '" << part << "' in: " << list.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Errors, ProblemListLineErrorTest,
    ::testing::Values(LineErrorCase{"UnknownCanonicalField",
                                    "c16_h32_k32_r3\n# comment\n\nc16_h32_k32_r3_z9\n",
                                    StatusCode::kInvalidArgument,
                                    {"bad.list:4: ", "'z9'"}},
                      LineErrorCase{"InvalidShape",
                                    "c16_h2_k32_r3   # kernel larger than the input\n",
                                    StatusCode::kInvalidArgument,
                                    {"bad.list:1: ", "exceeds padded input height"}},
                      LineErrorCase{"CrlfLineNumbers",
                                    "c16_h32_k32_r3\r\nc16_h32_k0_r3\r\n",
                                    StatusCode::kInvalidArgument,
                                    {"bad.list:2: ", "k (output channels)"}},
                      LineErrorCase{
                          "BadLoggedCommand",
                          "MIOpen(HIP): Command [LogCmdConvolution] ./bin/MIOpenDriver conv -n 1 "
                          "-c 16 -H 64 -W 64 -k 0 -y 3 -x 3 -F 1\n",
                          StatusCode::kInvalidArgument,
                          {"bad.list:1: ", "k (output channels)"}},
                      LineErrorCase{"EmptyInclude",
                                    "c16_h32_k32_r3\ninclude   # nothing\n",
                                    StatusCode::kInvalidArgument,
                                    {"bad.list:2: include needs a file name"}},
                      LineErrorCase{"EmptyBatch",
                                    "--batch=\n",
                                    StatusCode::kInvalidArgument,
                                    {"bad.list:1: include needs a file name"}}),
    [](const ::testing::TestParamInfo<LineErrorCase>& info) { return info.param.name; });

TEST_F(ListFilesTest, IncludesAreRelativeToTheIncludingFile) {
  const std::string top = Write("top.list",
                                "# top\n"
                                "c1_h8_k1_r1\n"
                                "include sub/mid.list\n"
                                "--batch=sub/mid.list   # a second time is fine\n"
                                "c2_h8_k1_r1\n");
  Write("sub/mid.list", "c3_h8_k1_r1\n--batch=../leaf.list\n");
  Write("leaf.list", "c4_h8_k1_r1\n");
  StatusOr<std::vector<ListedProblem>> list = ReadProblemList(top);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(Channels(*list), (std::vector<int64_t>{1, 3, 4, 3, 4, 2}));
  EXPECT_EQ((*list)[0].source, top + ":2");
  EXPECT_EQ((*list)[1].source, (dir_ / "sub" / "mid.list").string() + ":1");
  EXPECT_EQ((*list)[2].source, (dir_ / "leaf.list").string() + ":1");
  EXPECT_EQ((*list)[5].source, top + ":5");
}

TEST_F(ListFilesTest, AbsoluteIncludeAndInMemoryOrigin) {
  const std::string leaf = Write("leaf.list", "c4_h8_k1_r1\n");
  // An in-memory list resolves relative includes against its origin's directory.
  StatusOr<std::vector<ListedProblem>> list = ParseProblemListText(
      "include leaf.list\ninclude " + leaf + "\n", (dir_ / "virtual.list").string());
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(Channels(*list), (std::vector<int64_t>{4, 4}));
}

TEST_F(ListFilesTest, IncludeCycleIsAnError) {
  const std::string a = Write("a.list", "c1_h8_k1_r1\ninclude b.list\n");
  Write("b.list", "c2_h8_k1_r1\n\ninclude ./a.list\n");
  StatusOr<std::vector<ListedProblem>> list = ReadProblemList(a);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = list.status().message();
  EXPECT_TRUE(Contains(m, (dir_ / "b.list").string() + ":3: include cycle: " + a + " -> " +
                              (dir_ / "b.list").string() + " -> " + a))
      << m;
  EXPECT_TRUE(Contains(m, "(included from " + a + ":2)")) << m;
}

TEST_F(ListFilesTest, SelfIncludeIsACycle) {
  const std::string self = Write("self.list", "include self.list\n");
  StatusOr<std::vector<ListedProblem>> list = ReadProblemList(self);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(list.status().message(), self + ":1: include cycle"))
      << list.status().message();
}

TEST_F(ListFilesTest, ErrorInsideIncludedListNamesBothLines) {
  const std::string a = Write("a.list", "include b.list\n");
  Write("b.list", "c1_h8_k1_r1\nc1_h8_k1_r1_q7\n");
  StatusOr<std::vector<ListedProblem>> list = ReadProblemList(a);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = list.status().message();
  EXPECT_EQ(m.rfind((dir_ / "b.list").string() + ":2: ", 0), 0u) << m;
  EXPECT_TRUE(Contains(m, "'q7'")) << m;
  EXPECT_TRUE(Contains(m, "(included from " + a + ":1)")) << m;
}

TEST_F(ListFilesTest, MissingFileIsNotFound) {
  const std::string missing = (dir_ / "nope.list").string();
  StatusOr<std::vector<ListedProblem>> list = ReadProblemList(missing);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(list.status().message(), missing)) << list.status().message();
}

TEST_F(ListFilesTest, MissingIncludeIsNotFoundAtTheIncludeLine) {
  const std::string a = Write("a.list", "c1_h8_k1_r1\ninclude gone.list\n");
  StatusOr<std::vector<ListedProblem>> list = ReadProblemList(a);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(
      Contains(list.status().message(),
               a + ":2: problem list '" + (dir_ / "gone.list").string() + "' does not exist"))
      << list.status().message();
}

TEST_F(ListFilesTest, DirectoryIsNotAList) {
  StatusOr<std::vector<ListedProblem>> list = ReadProblemList(dir_.string());
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(list.status().message(), "is a directory")) << list.status().message();
}

// ---- the lists checked into tests/inputs ----

TEST(InputListsTest, SeedListIsTheSeedReportsProblemsInEveryForm) {
  const std::string dir = InputsDir();
  ASSERT_FALSE(dir.empty()) << "set CONVGUARD_SOURCE_DIR to the source tree";
  StatusOr<std::vector<ListedProblem>> list = ReadProblemList(dir + "/seed.list");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  std::vector<Problem> problems;
  std::set<TextForm> forms;
  for (const ListedProblem& lp : *list) {
    problems.push_back(lp.problem);
    forms.insert(DetectTextForm(lp.text));
  }
  const std::vector<Problem> expected = {Conv(16, 32, 32, 3, 1), Conv(16, 32, 48, 3, 1),
                                         Conv(16, 32, 64, 3, 1), Conv(3, 16, 32, 3, 1),
                                         Conv(3, 16, 64, 3, 1),  Conv(3, 16, 224, 3, 1)};
  EXPECT_EQ(problems, expected);
  EXPECT_EQ(forms, (std::set<TextForm>{TextForm::kCanonical, TextForm::kMiopenKey,
                                       TextForm::kMiopenDriver, TextForm::kBenchdnn}));
  // The hang pattern as a grid gives the same first three problems.
  StatusOr<GridExpansion> grid = ExpandGrid("c=16 k=32 hw=32,48,64 r=3 p=same");
  ASSERT_TRUE(grid.ok());
  EXPECT_EQ(grid->problems, std::vector<Problem>(expected.begin(), expected.begin() + 3));
}

// One conv layer of torchvision's ResNet-50, with the spatial sizes the architecture
// gives it (not computed from the convolution formula).
struct Layer {
  std::string name;
  Problem problem;
  int64_t out_size;
};

std::vector<Layer> ResNet50Layers() {
  std::vector<Layer> layers;
  layers.push_back({"conv1", Conv(3, 64, 224, 7, 3, 2), 112});
  struct Stage {
    int blocks;
    int64_t width;
    int64_t stride;
    int64_t out_size;
  };
  const Stage stages[] = {{3, 64, 1, 56}, {4, 128, 2, 28}, {6, 256, 2, 14}, {3, 512, 2, 7}};
  int64_t in_channels = 64;
  int64_t size = 56;  // after the stride-2 max pool
  int stage_no = 0;
  for (const Stage& st : stages) {
    ++stage_no;
    for (int b = 0; b < st.blocks; ++b) {
      const std::string prefix = "layer" + std::to_string(stage_no) + "." + std::to_string(b);
      const int64_t stride = b == 0 ? st.stride : 1;
      // v1.5: the stride sits on the 3x3 conv2.
      layers.push_back({prefix + ".conv1", Conv(in_channels, st.width, size, 1, 0), size});
      layers.push_back(
          {prefix + ".conv2", Conv(st.width, st.width, size, 3, 1, stride), st.out_size});
      layers.push_back(
          {prefix + ".conv3", Conv(st.width, 4 * st.width, st.out_size, 1, 0), st.out_size});
      if (b == 0) {
        layers.push_back({prefix + ".downsample.0",
                          Conv(in_channels, 4 * st.width, size, 1, 0, stride), st.out_size});
      }
      in_channels = 4 * st.width;
      size = st.out_size;
    }
  }
  return layers;
}

auto Key(const Problem& p) {
  return std::tuple(p.n, p.c, p.h, p.w, p.k, p.r, p.s, p.pad_top, p.pad_left, p.pad_bottom,
                    p.pad_right, p.stride_h, p.stride_w, p.dilation_h, p.dilation_w, p.groups,
                    p.bias, p.dtype, p.layout, p.direction);
}

TEST(InputListsTest, ResNet50ListIsEveryDistinctLayer) {
  const std::vector<Layer> layers = ResNet50Layers();
  ASSERT_EQ(layers.size(), 53u);  // 1 stem + 16 blocks x 3 + 4 downsamples

  const std::string dir = InputsDir();
  ASSERT_FALSE(dir.empty()) << "set CONVGUARD_SOURCE_DIR to the source tree";
  StatusOr<std::vector<ListedProblem>> list = ReadProblemList(dir + "/resnet50.list");
  ASSERT_TRUE(list.ok()) << list.status().ToString();

  std::set<decltype(Key(Problem{}))> expected;
  for (const Layer& l : layers) expected.insert(Key(l.problem));
  EXPECT_EQ(expected.size(), 23u);

  std::set<decltype(Key(Problem{}))> listed;
  for (const ListedProblem& lp : *list) {
    EXPECT_TRUE(listed.insert(Key(lp.problem)).second) << lp.source << " repeats a problem";
  }
  EXPECT_EQ(list->size(), 23u);
  EXPECT_EQ(listed, expected);

  const std::set<int64_t> stage_sizes = {112, 56, 28, 14, 7};
  for (const Layer& l : layers) {
    EXPECT_EQ(l.problem.out_h(), l.out_size) << l.name;
    EXPECT_EQ(l.problem.out_w(), l.out_size) << l.name;
  }
  for (const ListedProblem& lp : *list) {
    EXPECT_TRUE(stage_sizes.count(lp.problem.out_h())) << lp.source;
    // The architecture's output size for this problem, from any layer that has it.
    for (const Layer& l : layers) {
      if (l.problem == lp.problem) {
        EXPECT_EQ(lp.problem.out_h(), l.out_size) << lp.source << " is " << l.name;
      }
    }
  }
}

}  // namespace
}  // namespace convguard
