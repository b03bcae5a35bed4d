// MIOpen logs: every form MIOpen prints a command in, the lines around them, what is
// counted, what is reported unread, and bytes that are no text at all.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/problem.h"
#include "convguard/problem_source.h"
#include "convguard/text_forms.h"

namespace convguard {

// Failures print a Problem in its canonical form rather than as raw bytes.
static void PrintTo(const Problem& p, std::ostream* os) { *os << ToCanonical(p); }

namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;

struct Shape {
  int64_t n = 1, c = 16, h = 64, w = 64, k = 32, r = 3, pad = 1, stride = 1;
  Direction dir = Direction::kForward;
  DataType dtype = DataType::kF32;
  Layout layout = Layout::kNCHW;
};

Problem Conv(const Shape& s) {
  Problem p;
  p.n = s.n;
  p.c = s.c;
  p.h = s.h;
  p.w = s.w;
  p.k = s.k;
  p.r = p.s = s.r;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = s.pad;
  p.stride_h = p.stride_w = s.stride;
  p.direction = s.dir;
  p.dtype = s.dtype;
  p.layout = s.layout;
  return p;
}

// The seed report's hanging problem, as MIOpen logs it.
const std::string kSeedArgs =
    "conv -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -m conv -g 1 -F 1 "
    "-t 1";
const Problem kSeed = Conv({});
const std::string kHip = "MIOpen(HIP): Command [LogCmdConvolution] ./bin/MIOpenDriver ";
const std::string kHipFind = "MIOpen(HIP): Command [LogCmdFindConvolution] ./bin/MIOpenDriver ";

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

bool IsPrintableAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) return false;
  }
  return true;
}

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

// What must hold for any log the reader returns, whatever bytes it came from (the fuzz
// target in tests/fuzz/miopen_log_fuzz.cc checks the same).
void ExpectConsistent(const MiopenLog& log) {
  EXPECT_EQ(log.lines,
            static_cast<int64_t>(log.calls.size() + log.unread.size()) + log.skipped_lines);
  EXPECT_LE(log.other_driver_commands, log.skipped_lines);
  int64_t counted = 0;
  std::set<std::string> distinct;
  for (const LoggedProblem& lp : log.problems) {
    EXPECT_TRUE(Validate(lp.problem).ok()) << ToCanonical(lp.problem);
    EXPECT_TRUE(distinct.insert(ToCanonical(lp.problem)).second) << ToCanonical(lp.problem);
    StatusOr<Problem> back = ParseProblem(ToCanonical(lp.problem));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, lp.problem);
    StatusOr<Problem> args = ParseProblem(lp.driver_args, TextForm::kMiopenDriver);
    ASSERT_TRUE(args.ok()) << lp.driver_args << ": " << args.status().ToString();
    EXPECT_EQ(*args, lp.problem);
    EXPECT_TRUE(IsPrintableAscii(lp.driver_args)) << lp.driver_args;
    EXPECT_GE(lp.find_lines + lp.run_lines, 1);
    counted += lp.find_lines + lp.run_lines;
  }
  EXPECT_EQ(counted, static_cast<int64_t>(log.calls.size()));
  int64_t previous = 0;
  for (const LoggedCall& call : log.calls) {
    ASSERT_LT(call.problem, log.problems.size());
    EXPECT_GT(call.line, previous);
    EXPECT_GE(call.line, log.problems[call.problem].first_line);
    previous = call.line;
  }
  for (const LogUnreadLine& u : log.unread) {
    EXPECT_NE(u.code, StatusCode::kOk);
    EXPECT_LE(u.text.size(), kMaxLogTextBytes);
    EXPECT_LE(u.reason.size(), kMaxLogTextBytes);
    EXPECT_TRUE(IsPrintableAscii(u.text)) << u.text;
    EXPECT_TRUE(IsPrintableAscii(u.reason)) << u.reason;
    EXPECT_FALSE(u.reason.empty());
  }
}

// ---- every form a command is logged in ----

struct FormCase {
  std::string name;
  std::string line;  // one log line, without its '\n'
  Problem expected;
  bool find;
  std::string driver_args;
};
// Failures name the case, not its bytes.
void PrintTo(const FormCase& c, std::ostream* os) { *os << c.name; }

class LogFormTest : public ::testing::TestWithParam<FormCase> {};

TEST_P(LogFormTest, ReadsTheCommand) {
  const FormCase& tc = GetParam();
  StatusOr<MiopenLog> log = ParseMiopenLog(tc.line + "\n", "forms.log");
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ExpectConsistent(*log);
  EXPECT_EQ(log->origin, "forms.log");
  EXPECT_EQ(log->lines, 1);
  EXPECT_EQ(log->skipped_lines, 0);
  ASSERT_TRUE(log->unread.empty()) << log->unread[0].reason;
  ASSERT_EQ(log->problems.size(), 1u);
  const LoggedProblem& lp = log->problems[0];
  EXPECT_EQ(lp.problem, tc.expected);
  EXPECT_EQ(lp.driver_args, tc.driver_args);
  EXPECT_EQ(lp.first_line, 1);
  EXPECT_EQ(lp.find_lines, tc.find ? 1 : 0);
  EXPECT_EQ(lp.run_lines, tc.find ? 0 : 1);
  ASSERT_EQ(log->calls.size(), 1u);
  EXPECT_EQ(log->calls[0].problem, 0u);
  EXPECT_EQ(log->calls[0].line, 1);
  EXPECT_EQ(log->calls[0].find, tc.find);
  EXPECT_TRUE(LooksLikeMiopenLog(tc.line));
}

const std::string kFp16BwdArgs =
    "convfp16 -n 2 -c 16 -H 48 -W 48 -k 32 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -m conv -g 1 "
    "-F 2 -t 1";
const Problem kFp16Bwd =
    Conv({.n = 2, .h = 48, .w = 48, .dir = Direction::kBackwardData, .dtype = DataType::kF16});
const std::string kBf16WrwArgs =
    "convbfp16 -n 4 -c 8 -H 20 -W 24 -k 8 -y 1 -x 1 -p 0 -q 0 -u 1 -v 1 -l 1 -j 1 -m conv -g 1 -F "
    "4 "
    "-t 1";
const Problem kBf16Wrw = Conv({.n = 4,
                               .c = 8,
                               .h = 20,
                               .w = 24,
                               .k = 8,
                               .r = 1,
                               .pad = 0,
                               .dir = Direction::kBackwardWeights,
                               .dtype = DataType::kBF16});
const std::string kNhwcArgs =
    "convfp16 -n 8 -c 3 -H 48 -W 64 -k 16 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 --in_layout "
    "NHWC --fil_layout NHWC --out_layout NHWC -m conv -g 1 -F 1 -t 1";
// -H/-W/-c are the logical NCHW sizes whatever the layout: h 48, w 64, c 3.
const Problem kNhwc = Conv(
    {.n = 8, .c = 3, .h = 48, .w = 64, .k = 16, .dtype = DataType::kF16, .layout = Layout::kNHWC});

INSTANTIATE_TEST_SUITE_P(
    Forms, LogFormTest,
    ::testing::Values(
        FormCase{"HipExecution", kHip + kSeedArgs, kSeed, false, kSeedArgs},
        FormCase{"HipFind", kHipFind + kSeedArgs, kSeed, true, kSeedArgs},
        FormCase{"PlainPrefixFp16Find",
                 "MIOpen: Command [LogCmdFindConvolution] ./bin/MIOpenDriver " + kFp16BwdArgs,
                 kFp16Bwd, true, kFp16BwdArgs},
        FormCase{"OpenClBuild",
                 "MIOpen(OpenCL): Command [LogCmdConvolution] ./bin/MIOpenDriver " + kSeedArgs,
                 kSeed, false, kSeedArgs},
        FormCase{"ElapsedTime",
                 "MIOpen(HIP)   6.425: Command [LogCmdConvolution] ./bin/MIOpenDriver " + kSeedArgs,
                 kSeed, false, kSeedArgs},
        FormCase{"HostProcessElapsedAndDate",
                 "gpu-node-3 4711 4712 MIOpen(HIP)  12.001 (2025-11-08 12:00:00.123): Command "
                 "[LogCmdFindConvolution] ./bin/MIOpenDriver " +
                     kSeedArgs,
                 kSeed, true, kSeedArgs},
        FormCase{"WindowsExe",
                 "MIOpen(HIP): Command [LogCmdConvolution] MIOpenDriver.exe " + kBf16WrwArgs,
                 kBf16Wrw, false, kBf16WrwArgs},
        FormCase{"WindowsBackslashPath",
                 "MIOpen(HIP): Command [LogCmdFindConvolution] "
                 "C:\\Program Files\\AMD\\ROCm\\6.1\\bin\\MIOpenDriver.exe " +
                     kSeedArgs,
                 kSeed, true, kSeedArgs},
        FormCase{"WindowsQuotedPath",
                 "\"C:\\Program Files\\AMD\\ROCm\\6.1\\bin\\MIOpenDriver.EXE\" " + kSeedArgs, kSeed,
                 false, kSeedArgs},
        FormCase{"OlderBuildExecution", "miopenConvolutionForward: ./bin/MIOpenDriver " + kSeedArgs,
                 kSeed, false, kSeedArgs},
        FormCase{"OlderBuildFind",
                 "miopenFindConvolutionForwardAlgorithm: ./bin/MIOpenDriver " + kSeedArgs, kSeed,
                 true, kSeedArgs},
        FormCase{"Bare", "MIOpenDriver " + kSeedArgs, kSeed, false, kSeedArgs},
        FormCase{"InstalledPath", "/opt/rocm/bin/MIOpenDriver " + kSeedArgs, kSeed, false,
                 kSeedArgs},
        FormCase{"AfterEnvironment", "MIOPEN_FIND_MODE=1 ./bin/MIOpenDriver " + kSeedArgs, kSeed,
                 false, kSeedArgs},
        FormCase{"AfterProgressBar",
                 "\rEpoch 1:  33%|\xE2\x96\x88\xE2\x96\x88\xE2\x96\x88\xE2\x96\x8E      | 1/3 "
                 "[00:06<00:12,  6.02s/it]" +
                     kHip + kSeedArgs,
                 kSeed, false, kSeedArgs},
        FormCase{"AfterBinaryGarbage", "\x00\xFF\xFE\x1B[0m\x00"s + kHipFind + kSeedArgs, kSeed,
                 true, kSeedArgs},
        FormCase{"CrlfLineEnd", kHip + kSeedArgs + "\r", kSeed, false, kSeedArgs},
        FormCase{
            "TabsAndTrailingBlanks",
            "MIOpen(HIP): Command [LogCmdConvolution] ./bin/MIOpenDriver\tconv\t-n 1 -c 16 -H 64 "
            "-W 64 -k 32 -p 1 -q 1 -F 1 \t ",
            kSeed, false, "conv -n 1 -c 16 -H 64 -W 64 -k 32 -p 1 -q 1 -F 1"},
        FormCase{"NhwcReadsLogicalSizes", kHip + kNhwcArgs, kNhwc, false, kNhwcArgs},
        FormCase{"ImmediateModeSolverId", kHip + kBf16WrwArgs + " -S 85", kBf16Wrw, false,
                 kBf16WrwArgs + " -S 85"},
        FormCase{"LongFlags",
                 "./bin/MIOpenDriver conv --batchsize 1 --in_channels 16 --in_h 64 --in_w 64 "
                 "--out_channels 32 --fil_h 3 --fil_w 3 --pad_h 1 --pad_w 1 --forw 1",
                 kSeed, false,
                 "conv --batchsize 1 --in_channels 16 --in_h 64 --in_w 64 --out_channels 32 "
                 "--fil_h 3 --fil_w 3 --pad_h 1 --pad_w 1 --forw 1"},
        FormCase{"ProseBeforeTheCommand", "see MIOpenDriver docs; repro: MIOpenDriver " + kSeedArgs,
                 kSeed, false, kSeedArgs}),
    [](const ::testing::TestParamInfo<FormCase>& info) { return info.param.name; });

// ---- convolution commands that cannot be read: reported, never misread ----

struct UnreadCase {
  std::string name;
  std::string line;
  StatusCode code;
  std::string reason_part;
  std::string text_part;
};
void PrintTo(const UnreadCase& c, std::ostream* os) { *os << c.name; }

class LogUnreadTest : public ::testing::TestWithParam<UnreadCase> {};

TEST_P(LogUnreadTest, ReportsTheLineWithTheParsersReason) {
  const UnreadCase& tc = GetParam();
  const std::string text = "chatter before\n" + tc.line + "\nchatter after\n";
  StatusOr<MiopenLog> log = ParseMiopenLog(text, "unread.log");
  ASSERT_TRUE(log.ok()) << log.status().ToString();  // a log, though nothing in it is read
  ExpectConsistent(*log);
  EXPECT_TRUE(log->problems.empty()) << ToCanonical(log->problems[0].problem);
  EXPECT_TRUE(log->calls.empty());
  EXPECT_EQ(log->lines, 3);
  EXPECT_EQ(log->skipped_lines, 2);
  ASSERT_EQ(log->unread.size(), 1u);
  const LogUnreadLine& u = log->unread[0];
  EXPECT_EQ(u.line, 2);
  EXPECT_EQ(u.code, tc.code) << u.reason;
  EXPECT_TRUE(Contains(u.reason, tc.reason_part))
      << "missing '" << tc.reason_part << "' in: " << u.reason;
  EXPECT_TRUE(Contains(u.text, tc.text_part)) << "missing '" << tc.text_part << "' in: " << u.text;
  EXPECT_TRUE(LooksLikeMiopenLog(text));
}

const std::string kConv3d =
    "conv -n 1 -c 4 --in_d 8 -H 16 -W 16 -k 8 --fil_d 3 -y 3 -x 3 --pad_d 1 -p 1 -q 1 "
    "--conv_stride_d 1 -u 1 -v 1 --dilation_d 1 -l 1 -j 1 --spatial_dim 3 -m conv -g 1 -F 1 -t 1";
const std::string kTrans =
    "convfp16 -n 8 -c 64 -H 12 -W 16 -k 32 -y 2 -x 2 -p 0 -q 0 -u 2 -v 2 -l 1 -j 1 -m trans -g 1 "
    "-F 1 -t 1";

std::string LongCommand() {
  std::string s = kHip + kSeedArgs;
  while (s.size() < 5000) s += " -t 1";
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Unread, LogUnreadTest,
    ::testing::Values(
        UnreadCase{"Transposed", kHip + kTrans, StatusCode::kUnsupported,
                   "flag '-m' = 'trans' is a transposed convolution", "convfp16 -n 8 -c 64"},
        UnreadCase{"ThreeDimensional", kHipFind + kConv3d, StatusCode::kUnsupported,
                   "flag '--spatial_dim' = 3 is a 3-D convolution", "conv -n 1 -c 4 --in_d 8"},
        UnreadCase{"Int8", kHip + "convint8 -n 1 -c 16 -H 8 -W 8 -k 16 -y 1 -x 1 -F 1 -t 1",
                   StatusCode::kUnsupported, "command 'convint8' uses a data type",
                   "convint8 -n 1"},
        UnreadCase{"InputLayoutOnly",
                   kHip + "conv -n 1 -c 16 -H 8 -W 8 -k 16 -y 1 -x 1 --in_layout NHWC -F 1",
                   StatusCode::kUnsupported, "mixed layouts", "--in_layout NHWC"},
        UnreadCase{"MalformedNumber", kHip + "conv -n x1 -c 16 -H 8 -W 8 -k 16 -y 1 -x 1 -F 1",
                   StatusCode::kInvalidArgument, "'x1' is not a decimal number", "-n x1"},
        UnreadCase{"NoDirection", kHip + "conv -n 1 -c 16 -H 8 -W 8 -k 16 -y 1 -x 1",
                   StatusCode::kInvalidArgument, "no -F flag", "conv -n 1"},
        UnreadCase{"AllDirections", kHip + "conv -n 1 -c 16 -H 8 -W 8 -k 16 -y 1 -x 1 -F 0",
                   StatusCode::kInvalidArgument, "selects several directions", "-F 0"},
        UnreadCase{"ZeroOutputChannels", kHip + "conv -n 1 -c 16 -H 8 -W 8 -k 0 -y 1 -x 1 -F 1",
                   StatusCode::kInvalidArgument, "k (output channels)", "-k 0"},
        UnreadCase{"HugeNumber", kHip + "conv -n 99999999999 -c 16 -H 8 -W 8 -k 16 -y 1 -x 1 -F 1",
                   StatusCode::kOutOfRange, "'99999999999' is too large", "-n 99999999999"},
        UnreadCase{"RepeatedFlag", kHip + "conv -n 1 -n 2 -c 16 -H 8 -W 8 -k 16 -F 1",
                   StatusCode::kInvalidArgument, "repeats", "-n 1 -n 2"},
        UnreadCase{"GarbageAfterTheCommand", kHip + kSeedArgs + " \x01\xFF",
                   StatusCode::kInvalidArgument, "unexpected argument '\\x01\\xff'",
                   "-t 1 \\x01\\xff"},
        UnreadCase{"NulInsideANumber", kHip + "conv -n 1 -c 1\x00"s + "6 -H 8 -W 8 -k 16 -F 1",
                   StatusCode::kInvalidArgument, "'1\\x006' is not a decimal number", "-c 1\\x006"},
        UnreadCase{"CommandTooLong", LongCommand(), StatusCode::kOutOfRange,
                   "more than the 4096 a convolution command is read to", "conv -n 1 -c 16"},
        UnreadCase{"LineTooLong", kHip + kSeedArgs + std::string(70000, ' ') + "x",
                   StatusCode::kOutOfRange, "the line is longer than 65536 bytes",
                   "conv -n 1 -c 16"}),
    [](const ::testing::TestParamInfo<UnreadCase>& info) { return info.param.name; });

TEST(LogUnreadTest, KeptTextIsCutAndSaysSo) {
  StatusOr<MiopenLog> log = ParseMiopenLog(LongCommand(), "long.log");
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_EQ(log->unread.size(), 1u);
  EXPECT_EQ(log->unread[0].text.size(), kMaxLogTextBytes);
  EXPECT_EQ(log->unread[0].text.substr(kMaxLogTextBytes - 3), "...");
  EXPECT_EQ(log->unread[0].text.substr(0, kSeedArgs.size()), kSeedArgs);
}

// ---- lines without a convolution command ----

struct SkipCase {
  std::string name;
  std::string line;
  bool other_command;  // counted in other_driver_commands
};
void PrintTo(const SkipCase& c, std::ostream* os) { *os << c.name; }

class LogSkipTest : public ::testing::TestWithParam<SkipCase> {};

TEST_P(LogSkipTest, CountsTheLineAndReadsNothingFromIt) {
  const SkipCase& tc = GetParam();
  StatusOr<MiopenLog> log = ParseMiopenLog(tc.line + "\n" + kHip + kSeedArgs + "\n", "skip.log");
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ExpectConsistent(*log);
  EXPECT_EQ(log->lines, 2);
  EXPECT_EQ(log->skipped_lines, 1);
  EXPECT_EQ(log->other_driver_commands, tc.other_command ? 1 : 0);
  EXPECT_TRUE(log->unread.empty()) << log->unread[0].reason;
  ASSERT_EQ(log->calls.size(), 1u);
  EXPECT_EQ(log->calls[0].line, 2);
  EXPECT_FALSE(LooksLikeMiopenLog(tc.line));
}

INSTANTIATE_TEST_SUITE_P(
    Skipped, LogSkipTest,
    ::testing::Values(
        SkipCase{"BatchNorm",
                 "MIOpen(HIP): Command [LogCmdBNorm] ./bin/MIOpenDriver bnorm -n 8 -c 16 -H 32 -W "
                 "32 -m 1 --forw 1 -b 0 -r 1 -s 1",
                 true},
        SkipCase{"BatchNormFp16",
                 "MIOpen(HIP): Command [LogCmdBNorm] ./bin/MIOpenDriver bnormfp16 -n 8 -c 16 -H 48 "
                 "-W 64 -m 1 --forw 2 -b 0 -s 1",
                 true},
        SkipCase{"Fusion",
                 "MIOpen(HIP): Command [LogCmdFusion] ./bin/MIOpenDriver CBAInfer -F 4 -n 128 -c 3 "
                 "-H 32 -W 32 -k 64 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1",
                 true},
        SkipCase{"PoolWithDefaults", "./bin/MIOpenDriver pool", true},
        SkipCase{"WindowsGemm", "MIOpenDriver.exe gemm -m 64 -n 64 -k 64", true},
        SkipCase{"MIOpenChatter",
                 "MIOpen(HIP): Warning [SQLiteBase] Missing system database file: gfx1010_20.kdb "
                 "Performance may degrade.",
                 false},
        SkipCase{"BuildOutput", "[100%] Built target MIOpenDriver", false},
        SkipCase{"ProseMention", "run MIOpenDriver to reproduce the problem", false},
        SkipCase{"ConvolutionInProse", "MIOpenDriver convolution tests passed", false},
        SkipCase{"LongerIdentifier",
                 "libMIOpenDriver conv -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -F 1", false},
        SkipCase{"LongerName", "MIOpenDriverX conv -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -F 1",
                 false},
        SkipCase{"HelpRequest", "./bin/MIOpenDriver --help", false},
        SkipCase{"ArgumentsWithoutTheDriver", kSeedArgs, false},
        SkipCase{"PythonTraceback", "Traceback (most recent call last):", false},
        SkipCase{"BlankLine", "", false}, SkipCase{"NulBytes", "\x00\x00\x00"s, false},
        SkipCase{"InvalidUtf8", "\xFF\xFE\xC3\x28\x80 MIOpen\xC0", false}),
    [](const ::testing::TestParamInfo<SkipCase>& info) { return info.param.name; });

// ---- counts: Find against execution, repeats, order ----

TEST(LogCountsTest, FindAndExecutionLinesPerDistinctProblem) {
  const std::string a = kSeedArgs;
  const std::string b = "conv -n 1 -c 3 -H 32 -W 32 -k 16 -y 3 -x 3 -p 1 -q 1 -F 1 -t 1";
  // The same problem as a, spelled differently: the first spelling is kept.
  const std::string a_again =
      "conv --batchsize 1 -c 16 -H 64 -W 64 -k 32 -p 1 -q 1 -F 1 -i 10 -V 0";
  const std::string text =
      "start\n" +                                                             // 1
      kHipFind + a + "\n" +                                                   // 2  a find
      kHip + a + "\n" +                                                       // 3  a run
      "step 1 loss 2.3\n" +                                                   // 4
      kHip + b + "\n" +                                                       // 5  b run
      kHip + a_again + "\n" +                                                 // 6  a run
      kHipFind + b + "\n" +                                                   // 7  b find
      kHip + kFp16BwdArgs + "\n" +                                            // 8  c run
      "MIOpen(HIP): Command [LogCmdBNorm] ./bin/MIOpenDriver bnorm -n 1\n" +  // 9
      kHip + a;  // 10 a run, no final newline
  StatusOr<MiopenLog> log = ParseMiopenLog(text, "counts.log");
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ExpectConsistent(*log);
  EXPECT_EQ(log->lines, 10);
  EXPECT_EQ(log->skipped_lines, 3);
  EXPECT_EQ(log->other_driver_commands, 1);
  EXPECT_TRUE(log->unread.empty());
  ASSERT_EQ(log->problems.size(), 3u);
  EXPECT_EQ(log->problems[0].problem, kSeed);
  EXPECT_EQ(log->problems[0].driver_args, a);
  EXPECT_EQ(log->problems[0].first_line, 2);
  EXPECT_EQ(log->problems[0].find_lines, 1);
  EXPECT_EQ(log->problems[0].run_lines, 3);
  EXPECT_EQ(log->problems[1].problem, Conv({.c = 3, .h = 32, .w = 32, .k = 16}));
  EXPECT_EQ(log->problems[1].first_line, 5);
  EXPECT_EQ(log->problems[1].find_lines, 1);
  EXPECT_EQ(log->problems[1].run_lines, 1);
  EXPECT_EQ(log->problems[2].problem, kFp16Bwd);
  EXPECT_EQ(log->problems[2].first_line, 8);
  EXPECT_EQ(log->problems[2].find_lines, 0);
  EXPECT_EQ(log->problems[2].run_lines, 1);

  struct Call {
    size_t problem;
    int64_t line;
    bool find;
  };
  const std::vector<Call> expected = {{0, 2, true}, {0, 3, false}, {1, 5, false}, {0, 6, false},
                                      {1, 7, true}, {2, 8, false}, {0, 10, false}};
  ASSERT_EQ(log->calls.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(log->calls[i].problem, expected[i].problem) << "call " << i;
    EXPECT_EQ(log->calls[i].line, expected[i].line) << "call " << i;
    EXPECT_EQ(log->calls[i].find, expected[i].find) << "call " << i;
  }
}

TEST(LogCountsTest, UnreadRepeatsAreEachReported) {
  const std::string text = kHipFind + kTrans + "\n" + kHip + kTrans + "\n" + kHip + kSeedArgs +
                           "\n" + kHip + kTrans + "\n";
  StatusOr<MiopenLog> log = ParseMiopenLog(text, "repeats.log");
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ExpectConsistent(*log);
  ASSERT_EQ(log->unread.size(), 3u);
  EXPECT_EQ(log->unread[0].line, 1);
  EXPECT_EQ(log->unread[1].line, 2);
  EXPECT_EQ(log->unread[2].line, 4);
  EXPECT_EQ(log->unread[0].text, kTrans);
  ASSERT_EQ(log->problems.size(), 1u);
  EXPECT_EQ(log->problems[0].first_line, 3);
}

// ---- garbage ----

TEST(LogGarbageTest, LongLinesAreCutBeforeTheyAreLookedAt) {
  const std::string noise(size_t{1} << 20, 'x');
  // A command after 1 MiB of noise on the same line is past the cut: the line is skipped.
  const std::string text = noise + "\n" + noise + " " + kHip + kSeedArgs + "\n" + kHip + kSeedArgs;
  StatusOr<MiopenLog> log = ParseMiopenLog(text, "long.log");
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ExpectConsistent(*log);
  EXPECT_EQ(log->lines, 3);
  EXPECT_EQ(log->skipped_lines, 2);
  ASSERT_EQ(log->calls.size(), 1u);
  EXPECT_EQ(log->calls[0].line, 3);
}

TEST(LogGarbageTest, RandomBytesAroundCommandsKeepEveryInvariant) {
  // Pieces that make the reader work: commands, near-commands, separators, bytes.
  const std::vector<std::string> pieces = {
      kHip,           kHipFind,       kSeedArgs, kTrans,  kConv3d,
      "\n",           "\r\n",         "\r",      " ",     "\t",
      "-F",           " 2",           " -n ",    "\x00"s, "\xFF",
      "\xE2\x96\x88", "MIOpenDriver", ".exe",    "conv",  "convfp16 ",
      "bnorm -n 1",   "-m trans",     "#",       "\""};
  std::mt19937 rng(20251108);
  for (int round = 0; round < 500; ++round) {
    std::string text;
    const int count = static_cast<int>(rng() % 40);
    for (int i = 0; i < count; ++i) {
      if (rng() % 4 == 0) {
        text += static_cast<char>(rng() % 256);
      } else {
        text += pieces[rng() % pieces.size()];
      }
    }
    StatusOr<MiopenLog> log = ParseMiopenLog(text, "random.log");
    EXPECT_EQ(log.ok(), LooksLikeMiopenLog(text)) << "round " << round;
    if (!log.ok()) {
      EXPECT_EQ(log.status().code(), StatusCode::kInvalidArgument);
      continue;
    }
    ExpectConsistent(*log);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "round " << round;
      return;
    }
  }
}

// ---- logs with no convolution command ----

struct EmptyCase {
  std::string name;
  std::string text;
  std::string message;  // the whole message
};
void PrintTo(const EmptyCase& c, std::ostream* os) { *os << c.name; }

class LogWithoutCommandsTest : public ::testing::TestWithParam<EmptyCase> {};

TEST_P(LogWithoutCommandsTest, IsInvalidWithOneClearMessage) {
  const EmptyCase& tc = GetParam();
  StatusOr<MiopenLog> log = ParseMiopenLog(tc.text, "run.log");
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log.status().message(), tc.message);
  EXPECT_FALSE(LooksLikeMiopenLog(tc.text));
}

const std::string kLookedFor =
    " read (looked for 'MIOpenDriver conv', 'convfp16' or 'convbfp16' as MIOpen logs them with "
    "MIOPEN_ENABLE_LOGGING_CMD=1)";

INSTANTIATE_TEST_SUITE_P(
    Empty, LogWithoutCommandsTest,
    ::testing::Values(
        EmptyCase{"Empty", "",
                  "run.log: no MIOpenDriver convolution command in 0 lines" + kLookedFor},
        EmptyCase{"OneBlankLine", "\n",
                  "run.log: no MIOpenDriver convolution command in 1 line" + kLookedFor},
        EmptyCase{"Chatter", "hello\r\nworld\x00\xFF\r\n"s,
                  "run.log: no MIOpenDriver convolution command in 2 lines" + kLookedFor},
        EmptyCase{"ProblemList", "c16_h32_k32_r3\n" + kSeedArgs + "\n",
                  "run.log: no MIOpenDriver convolution command in 2 lines" + kLookedFor},
        EmptyCase{"OnlyOtherCommands",
                  "MIOpen(HIP): Command [LogCmdBNorm] ./bin/MIOpenDriver bnorm -n 8 -c 16\n"
                  "x\n"
                  "./bin/MIOpenDriver pool\n",
                  "run.log: no MIOpenDriver convolution command in 3 lines" + kLookedFor +
                      "; 2 lines hold other MIOpenDriver commands (bnorm, pool, ...), which are "
                      "not convolutions"}),
    [](const ::testing::TestParamInfo<EmptyCase>& info) { return info.param.name; });

// ---- detection ----

struct DetectCase {
  std::string name;
  std::string text;
  bool is_log;
};
void PrintTo(const DetectCase& c, std::ostream* os) { *os << c.name; }

class LooksLikeMiopenLogTest : public ::testing::TestWithParam<DetectCase> {};

TEST_P(LooksLikeMiopenLogTest, AgreesWithTheReader) {
  const DetectCase& tc = GetParam();
  EXPECT_EQ(LooksLikeMiopenLog(tc.text), tc.is_log);
  EXPECT_EQ(ParseMiopenLog(tc.text, "detect.log").ok(), tc.is_log);
}

INSTANTIATE_TEST_SUITE_P(
    Detect, LooksLikeMiopenLogTest,
    ::testing::Values(
        DetectCase{"Empty", "", false},
        DetectCase{"ProblemList", "# a list\nc16_h32_k32_r3\n" + kSeedArgs + "\n", false},
        DetectCase{"LoggedCommand", "x\n" + kHip + kSeedArgs + "\ny\n", true},
        DetectCase{"UnreadCommandOnly", kHip + kTrans, true},
        DetectCase{"OnlyBatchNorm", "./bin/MIOpenDriver bnorm -n 1 -c 16\n", false},
        DetectCase{"CommandAfterLongLine", std::string(70000, 'x') + "\n" + kHip + kSeedArgs, true},
        DetectCase{"CommandPastTheCut", std::string(70000, 'x') + kHip + kSeedArgs, false},
        DetectCase{"ListWithALoggedLine",
                   "c16_h32_k32_r3\n" + kHip + kSeedArgs + "   # from a log\n", true}),
    [](const ::testing::TestParamInfo<DetectCase>& info) { return info.param.name; });

// ---- files ----

class LogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / (std::string("convguard_logs_") + info->name());
    std::error_code ec;
    fs::remove_all(dir_, ec);
    fs::create_directories(dir_, ec);
    ASSERT_FALSE(ec) << ec.message();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  fs::path dir_;
};

TEST_F(LogFileTest, MissingFileIsNotFound) {
  const std::string path = (dir_ / "absent.log").string();
  StatusOr<MiopenLog> log = ReadMiopenLog(path);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(log.status().message(), "MIOpen log '" + path + "' does not exist");
}

TEST_F(LogFileTest, DirectoryIsNotALog) {
  StatusOr<MiopenLog> log = ReadMiopenLog(dir_.string());
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(log.status().message(), "is a directory")) << log.status().message();
}

TEST_F(LogFileTest, EmptyFileNamesItsPath) {
  const std::string path = Write("empty.log", "");
  StatusOr<MiopenLog> log = ReadMiopenLog(path);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log.status().message(),
            path + ": no MIOpenDriver convolution command in 0 lines" + kLookedFor);
}

// The file is streamed in 1 MiB chunks: lines that cross chunk boundaries, cut lines and
// a last line without '\n' must read exactly as the same bytes in memory do.
TEST_F(LogFileTest, StreamingReadsWhatParsingReads) {
  std::string text;
  std::mt19937 rng(7);
  int64_t i = 0;
  while (text.size() < (size_t{3} << 20) + 12345) {
    switch (rng() % 6) {
      case 0: text += kHip + kSeedArgs + "\n"; break;
      case 1: text += kHipFind + kFp16BwdArgs + "\r\n"; break;
      case 2: text += std::string(rng() % 90000, 'y') + "\n"; break;  // some cut
      case 3: text += kHip + kTrans + "\n"; break;
      case 4: text += kHip + kSeedArgs + std::string(70000, ' ') + "z\n"; break;  // cut: unread
      default: text += "epoch " + std::to_string(++i) + " \x00\xFF\n"s; break;
    }
  }
  text += kHip + kBf16WrwArgs;  // no final newline
  const std::string path = Write("big.log", text);
  StatusOr<MiopenLog> read = ReadMiopenLog(path);
  StatusOr<MiopenLog> parsed = ParseMiopenLog(text, path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ExpectConsistent(*read);
  EXPECT_EQ(read->origin, path);
  EXPECT_EQ(read->lines, parsed->lines);
  EXPECT_EQ(read->skipped_lines, parsed->skipped_lines);
  EXPECT_EQ(read->other_driver_commands, parsed->other_driver_commands);
  ASSERT_EQ(read->problems.size(), parsed->problems.size());
  for (size_t p = 0; p < read->problems.size(); ++p) {
    EXPECT_EQ(read->problems[p].problem, parsed->problems[p].problem);
    EXPECT_EQ(read->problems[p].driver_args, parsed->problems[p].driver_args);
    EXPECT_EQ(read->problems[p].first_line, parsed->problems[p].first_line);
    EXPECT_EQ(read->problems[p].find_lines, parsed->problems[p].find_lines);
    EXPECT_EQ(read->problems[p].run_lines, parsed->problems[p].run_lines);
  }
  ASSERT_EQ(read->calls.size(), parsed->calls.size());
  for (size_t c = 0; c < read->calls.size(); ++c) {
    EXPECT_EQ(read->calls[c].line, parsed->calls[c].line);
    EXPECT_EQ(read->calls[c].problem, parsed->calls[c].problem);
    EXPECT_EQ(read->calls[c].find, parsed->calls[c].find);
  }
  ASSERT_EQ(read->unread.size(), parsed->unread.size());
  for (size_t u = 0; u < read->unread.size(); ++u) {
    EXPECT_EQ(read->unread[u].line, parsed->unread[u].line);
    EXPECT_EQ(read->unread[u].code, parsed->unread[u].code);
    EXPECT_EQ(read->unread[u].text, parsed->unread[u].text);
    EXPECT_EQ(read->unread[u].reason, parsed->unread[u].reason);
  }
  // The last line, without its newline, is read.
  ASSERT_FALSE(read->calls.empty());
  EXPECT_EQ(read->calls.back().line, read->lines);
  EXPECT_EQ(read->problems[read->calls.back().problem].problem, kBf16Wrw);
}

// ---- a real run's output, kept as data ----

std::string RealisticLog() { return InputsDir() + "/miopen/pytorch_tinynet_train.log"; }

TEST(RealisticLogTest, PyTorchTrainingRunWithProgressBarsWarningsAndATraceback) {
  ASSERT_FALSE(InputsDir().empty()) << "set CONVGUARD_SOURCE_DIR to the source tree";
  StatusOr<MiopenLog> log = ReadMiopenLog(RealisticLog());
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ExpectConsistent(*log);
  EXPECT_EQ(log->lines, 82);
  EXPECT_EQ(log->calls.size(), 41u);
  EXPECT_EQ(log->unread.size(), 5u);
  EXPECT_EQ(log->skipped_lines, 36);
  EXPECT_EQ(log->other_driver_commands, 8);  // bnorm forward and backward, bnormfp16

  // Training (f32, NCHW, batch 8): conv1 3->16 at 32x32, conv2 16->32 and conv3 32->64 at
  // stride 2; conv1 has no backward-data (its input is the images). Evaluation (f16,
  // channels_last, 48x64): the three forwards.
  const Direction fwd = Direction::kForward;
  const Direction bwd = Direction::kBackwardData;
  const Direction wrw = Direction::kBackwardWeights;
  const Shape conv1{.n = 8, .c = 3, .h = 32, .w = 32, .k = 16};
  const Shape conv2{.n = 8, .c = 16, .h = 32, .w = 32, .k = 32, .stride = 2};
  const Shape conv3{.n = 8, .c = 32, .h = 16, .w = 16, .k = 64, .stride = 2};
  auto with = [](Shape s, Direction d) {
    s.dir = d;
    return Conv(s);
  };
  auto eval = [](Shape s, int64_t h, int64_t w) {
    s.h = h;
    s.w = w;
    s.dtype = DataType::kF16;
    s.layout = Layout::kNHWC;
    return Conv(s);
  };
  struct Expected {
    Problem problem;
    int64_t first_line;
    int64_t find_lines;
    int64_t run_lines;
  };
  const std::vector<Expected> expected = {
      {with(conv1, fwd), 19, 1, 3},    {with(conv2, fwd), 22, 1, 3},
      {with(conv3, fwd), 24, 1, 3},    {with(conv3, bwd), 26, 1, 3},
      {with(conv3, wrw), 28, 1, 3},    {with(conv2, bwd), 30, 1, 3},
      {with(conv2, wrw), 32, 1, 3},    {with(conv1, wrw), 35, 1, 3},
      {eval(conv1, 48, 64), 62, 1, 2}, {eval(conv2, 48, 64), 65, 1, 2},
      {eval(conv3, 24, 32), 67, 1, 2},
  };
  ASSERT_EQ(log->problems.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const LoggedProblem& lp = log->problems[i];
    EXPECT_EQ(lp.problem, expected[i].problem) << "problem " << i;
    EXPECT_EQ(lp.first_line, expected[i].first_line) << "problem " << i;
    EXPECT_EQ(lp.find_lines, expected[i].find_lines) << "problem " << i;
    EXPECT_EQ(lp.run_lines, expected[i].run_lines) << "problem " << i;
  }
  // The NHWC line is read with -H 48 -W 64 -c 3 as the logical sizes.
  EXPECT_EQ(log->problems[8].driver_args.rfind("convfp16 -n 8 -c 3 -H 48 -W 64 -k 16 ", 0), 0u)
      << log->problems[8].driver_args;

  struct Unread {
    int64_t line;
    std::string reason_part;
  };
  const std::vector<Unread> unread = {{16, "is a 3-D convolution"},
                                      {17, "is a 3-D convolution"},
                                      {69, "'trans' is a transposed convolution"},
                                      {70, "'trans' is a transposed convolution"},
                                      {75, "'trans' is a transposed convolution"}};
  for (size_t i = 0; i < unread.size(); ++i) {
    EXPECT_EQ(log->unread[i].line, unread[i].line) << "unread " << i;
    EXPECT_EQ(log->unread[i].code, StatusCode::kUnsupported) << "unread " << i;
    EXPECT_TRUE(Contains(log->unread[i].reason, unread[i].reason_part)) << log->unread[i].reason;
  }
}

TEST(RealisticLogTest, IsStillNotAProblemList) {
  // Problem lists keep refusing foreign lines: a typo in a list stays an error.
  ASSERT_FALSE(InputsDir().empty()) << "set CONVGUARD_SOURCE_DIR to the source tree";
  StatusOr<std::vector<ListedProblem>> list = ReadProblemList(RealisticLog());
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().message().rfind(RealisticLog() + ":1: ", 0), 0u)
      << list.status().message();
}

}  // namespace
}  // namespace convguard
