// Tests for MIOpenDriver command lines: the canonical spelling, the spellings MIOpen logs
// (program path, long flags, -m conv ... -t 1), MIOpenDriver's defaults for absent flags,
// and errors that name the flag.
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "convguard/text_forms.h"

namespace convguard {
namespace {

Problem Seed(int64_t c, int64_t k, int64_t hw) {
  Problem p;
  p.n = 1;
  p.c = c;
  p.k = k;
  p.h = p.w = hw;
  p.r = p.s = 3;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
  return p;
}

template <typename Fn>
Problem Make(Problem p, Fn edit) {
  edit(p);
  return p;
}

template <typename T>
std::string CaseName(const testing::TestParamInfo<T>& info) {
  return info.param.name;
}

// What MIOpenDriver runs when no size flag is given (AddCmdLineArgs defaults):
// -n 100 -c 3 -H 32 -W 32 -k 32 -y 3 -x 3, no padding, stride 1, dilation 1, 1 group.
Problem DriverDefaults() {
  Problem p;
  p.n = 100;
  p.c = 3;
  p.h = p.w = 32;
  p.k = 32;
  p.r = p.s = 3;
  return p;
}

const char* const kSeed64 =
    "conv -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -g 1 -F 1";

// ---- printing (and reading back what is printed) ---------------------------------------

struct PrintCase {
  std::string name;
  Problem problem;
  std::string text;
};

// gtest prints a failing case's parameter; its name is what a reader needs.
void PrintTo(const PrintCase& c, std::ostream* os) { *os << c.name; }

class MiopenDriverPrintTest : public testing::TestWithParam<PrintCase> {};

TEST_P(MiopenDriverPrintTest, PrintsExactly) {
  const PrintCase& c = GetParam();
  StatusOr<std::string> got = ToMiopenDriver(c.problem);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, c.text);
  StatusOr<std::string> via_dispatch = PrintProblem(c.problem, TextForm::kMiopenDriver);
  ASSERT_TRUE(via_dispatch.ok()) << via_dispatch.status().ToString();
  EXPECT_EQ(*via_dispatch, c.text);
}

TEST_P(MiopenDriverPrintTest, ParsesBack) {
  const PrintCase& c = GetParam();
  StatusOr<Problem> got = ParseProblem(c.text, TextForm::kMiopenDriver);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, c.problem) << ToCanonical(*got);
}

INSTANTIATE_TEST_SUITE_P(
    MiopenDriver, MiopenDriverPrintTest,
    testing::Values(
        PrintCase{"Seed16to32At32", Seed(16, 32, 32),
                  "conv -n 1 -c 16 -H 32 -W 32 -k 32 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -g 1 "
                  "-F 1"},
        PrintCase{"Seed16to32At48", Seed(16, 32, 48),
                  "conv -n 1 -c 16 -H 48 -W 48 -k 32 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -g 1 "
                  "-F 1"},
        PrintCase{"Seed16to32At64", Seed(16, 32, 64), kSeed64},
        PrintCase{"Seed3to16At64", Seed(3, 16, 64),
                  "conv -n 1 -c 3 -H 64 -W 64 -k 16 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -g 1 "
                  "-F 1"},
        PrintCase{"NhwcFp16BiasGroupsBackwardWeights",
                  Make(Problem{},
                       [](Problem& p) {
                         p.n = 2;
                         p.c = 16;
                         p.h = 8;
                         p.w = 10;
                         p.k = 32;
                         p.r = 3;
                         p.s = 1;
                         p.pad_top = p.pad_bottom = 1;
                         p.groups = 4;
                         p.bias = true;
                         p.dtype = DataType::kF16;
                         p.layout = Layout::kNHWC;
                         p.direction = Direction::kBackwardWeights;
                       }),
                  "convfp16 -n 2 -c 16 -H 8 -W 10 -k 32 -y 3 -x 1 -p 1 -q 0 -u 1 -v 1 -l 1 -j 1 "
                  "-g 4 -F 4 -b 1 -I NHWC -O NHWC -f NHWC"},
        PrintCase{"Bf16BackwardDataStridedDilated",
                  Make(Problem{},
                       [](Problem& p) {
                         p.c = p.k = 8;
                         p.h = p.w = 32;
                         p.r = p.s = 3;
                         p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 2;
                         p.stride_h = 2;
                         p.dilation_h = 2;
                         p.dtype = DataType::kBF16;
                         p.direction = Direction::kBackwardData;
                       }),
                  "convbfp16 -n 1 -c 8 -H 32 -W 32 -k 8 -y 3 -x 3 -p 2 -q 2 -u 2 -v 1 -l 2 -j 1 "
                  "-g 1 -F 2"}),
    CaseName<PrintCase>);

// ---- other accepted spellings ----------------------------------------------------------

struct ParseCase {
  std::string name;
  std::string text;
  Problem want;
};

// gtest prints a failing case's parameter; its name is what a reader needs.
void PrintTo(const ParseCase& c, std::ostream* os) { *os << c.name; }

class MiopenDriverParseTest : public testing::TestWithParam<ParseCase> {};

TEST_P(MiopenDriverParseTest, Parses) {
  const ParseCase& c = GetParam();
  StatusOr<Problem> got = ParseProblem(c.text, TextForm::kMiopenDriver);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, c.want) << "got " << ToCanonical(*got) << ", want " << ToCanonical(c.want);
}

INSTANTIATE_TEST_SUITE_P(
    MiopenDriver, MiopenDriverParseTest,
    testing::Values(
        // What MIOPEN_ENABLE_LOGGING_CMD prints (ConvArgsForMIOpenDriver).
        ParseCase{"AsLoggedByMiopen",
                  "./bin/MIOpenDriver conv -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -p 1 -q 1 -u 1 "
                  "-v 1 -l 1 -j 1 -m conv -g 1 -F 1 -t 1",
                  Seed(16, 32, 64)},
        ParseCase{"ProgramName", std::string("MIOpenDriver ") + kSeed64, Seed(16, 32, 64)},
        ParseCase{"LongFlags",
                  "conv --batchsize 1 --in_channels 16 --in_h 64 --in_w 64 --out_channels 32 "
                  "--fil_h 3 --fil_w 3 --pad_h 1 --pad_w 1 --conv_stride_h 1 --conv_stride_w 1 "
                  "--dilation_h 1 --dilation_w 1 --group_count 1 --forw 1",
                  Seed(16, 32, 64)},
        ParseCase{"OldStrideNames",
                  "conv -n 1 -c 16 -H 64 -W 64 -k 32 -p 1 -q 1 "
                  "--conv_stride_0 2 --conv_stride_1 2 -F 1",
                  Make(Seed(16, 32, 64), [](Problem& p) { p.stride_h = p.stride_w = 2; })},
        ParseCase{"AllDefaults", "conv -F 1", DriverDefaults()},
        ParseCase{"SomeDefaults", "conv -c 16 -H 64 -W 48 -F 1",
                  Make(DriverDefaults(),
                       [](Problem& p) {
                         p.c = 16;
                         p.h = 64;
                         p.w = 48;
                       })},
        ParseCase{"IgnoredFlags",
                  std::string(kSeed64) +
                      " -i 10 -V 0 -t 1 -w 1 -s 0 -S -1 -r 0 -G 1 -P 1 -o 0 -C /tmp/cache "
                      "--in_d 7 --fil_d 5 -Y 1 -X 1",
                  Seed(16, 32, 64)},
        ParseCase{"DefaultsSpelledOut",
                  std::string(kSeed64) +
                      " -b 0 -m conv -z default --spatial_dim 2 -Z 0 -L 1 -U -1 -T -1 -R -1 "
                      "-I NCHW -O NCHW -f NCHW",
                  Seed(16, 32, 64)},
        ParseCase{"LongLayoutFlags",
                  std::string(kSeed64) + " --in_layout NHWC --fil_layout NHWC --out_layout NHWC",
                  Make(Seed(16, 32, 64), [](Problem& p) { p.layout = Layout::kNHWC; })},
        ParseCase{"BiasFlag", std::string(kSeed64) + " -b 1",
                  Make(Seed(16, 32, 64), [](Problem& p) { p.bias = true; })},
        ParseCase{"Fp16Command", "convfp16 -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -p 1 -q 1 -F 2",
                  Make(Seed(16, 32, 64),
                       [](Problem& p) {
                         p.dtype = DataType::kF16;
                         p.direction = Direction::kBackwardData;
                       })},
        ParseCase{"ExtraWhitespace",
                  "  conv\t-n 1  -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -p 1 -q 1 -F 1\n",
                  Seed(16, 32, 64)}),
    CaseName<ParseCase>);

// ---- errors ---------------------------------------------------------------------------

struct ErrorCase {
  std::string name;
  std::string text;
  StatusCode code;
  std::string message_part;
};

// gtest prints a failing case's parameter; its name is what a reader needs.
void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class MiopenDriverErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(MiopenDriverErrorTest, Rejects) {
  const ErrorCase& c = GetParam();
  StatusOr<Problem> got = ParseProblem(c.text, TextForm::kMiopenDriver);
  ASSERT_FALSE(got.ok()) << "parsed as " << ToCanonical(*got);
  EXPECT_EQ(got.status().code(), c.code) << got.status().ToString();
  EXPECT_NE(got.status().message().find(c.message_part), std::string::npos)
      << "message: " << got.status().message() << "\nwanted part: " << c.message_part;
  EXPECT_EQ(got.status().message().rfind("miopen-driver: ", 0), 0u) << got.status().message();
}

std::string Seed64With(const std::string& extra) { return std::string(kSeed64) + " " + extra; }

INSTANTIATE_TEST_SUITE_P(
    MiopenDriver, MiopenDriverErrorTest,
    testing::Values(
        ErrorCase{"UnknownShortFlag", Seed64With("-K 3"), StatusCode::kInvalidArgument,
                  "unknown flag '-K' (allowed: -n -c -H -W -k -y -x"},
        ErrorCase{"UnknownLongFlag", Seed64With("--kernel 3"), StatusCode::kInvalidArgument,
                  "unknown flag '--kernel' (allowed: --batchsize --in_channels"},
        ErrorCase{"NoDirection", "conv -n 1 -c 16 -H 64 -W 64 -k 32", StatusCode::kInvalidArgument,
                  "no -F flag: MIOpenDriver's default -F 0 runs forward, backward data and "
                  "backward weights; convguard probes one direction per problem"},
        ErrorCase{"AllDirections", "conv -n 1 -c 16 -F 0", StatusCode::kInvalidArgument,
                  "flag '-F' = 0 selects several directions"},
        ErrorCase{"TwoDirections", "conv -n 1 -c 16 --forw 3", StatusCode::kInvalidArgument,
                  "flag '--forw' = 3 selects several directions"},
        ErrorCase{"NotADirection", "conv -n 1 -c 16 -F 8", StatusCode::kInvalidArgument,
                  "flag '-F' = 8 is not a direction"},
        ErrorCase{"TransposedMode", Seed64With("-m trans"), StatusCode::kUnsupported,
                  "flag '-m' = 'trans' is a transposed convolution"},
        ErrorCase{"UnknownMode", Seed64With("-m deconv"), StatusCode::kInvalidArgument,
                  "flag '-m' = 'deconv' (allowed: conv, trans)"},
        ErrorCase{"SamePadMode", Seed64With("-z same"), StatusCode::kUnsupported,
                  "flag '-z' = 'same' lets MIOpen compute the padding"},
        ErrorCase{"UnknownPadMode", Seed64With("--pad_mode full"), StatusCode::kInvalidArgument,
                  "flag '--pad_mode' = 'full' (allowed: default, same, valid)"},
        ErrorCase{"OnlyInputNhwc", Seed64With("-I NHWC"), StatusCode::kUnsupported,
                  "mixed layouts: input 'NHWC', filter 'NCHW', output 'NCHW'"},
        ErrorCase{"ChwnLayout", Seed64With("-I CHWN -O CHWN -f CHWN"), StatusCode::kUnsupported,
                  "flag '-I' = 'CHWN' is a layout convguard does not run"},
        ErrorCase{"UnknownLayout", Seed64With("-I NCWH"), StatusCode::kInvalidArgument,
                  "flag '-I' = 'NCWH' is not a layout (allowed: NCHW NHWC)"},
        ErrorCase{"MissingValue", Seed64With("-n"), StatusCode::kInvalidArgument,
                  "flag '-n' has no value"},
        ErrorCase{"RepeatedFlag", Seed64With("-n 2"), StatusCode::kInvalidArgument,
                  "flag '-n' repeats '-n' (each flag may appear once)"},
        ErrorCase{"RepeatedAsLongFlag", Seed64With("--batchsize 2"), StatusCode::kInvalidArgument,
                  "flag '--batchsize' repeats '-n'"},
        ErrorCase{"RepeatedIgnoredFlag", Seed64With("-t 1 -t 0"), StatusCode::kInvalidArgument,
                  "flag '-t' repeats '-t'"},
        ErrorCase{"NegativeValue", "conv -n -1 -F 1", StatusCode::kInvalidArgument,
                  "flag '-n': negative number '-1' is not allowed"},
        ErrorCase{"TrailingGarbage", "conv -c 16x -F 1", StatusCode::kInvalidArgument,
                  "flag '-c': '16x' is not a decimal number"},
        ErrorCase{"Overflow", "conv -H 99999999999 -F 1", StatusCode::kOutOfRange,
                  "flag '-H': '99999999999' is too large"},
        ErrorCase{"Int8Command", "convint8 -n 1 -F 1", StatusCode::kUnsupported,
                  "command 'convint8' uses a data type convguard does not run"},
        ErrorCase{"NotAConvolution", "pool -n 1 -F 1", StatusCode::kInvalidArgument,
                  "command 'pool' is not a convolution"},
        ErrorCase{"ThreeDimensional", Seed64With("--spatial_dim 3"), StatusCode::kUnsupported,
                  "flag '--spatial_dim' = 3 is a 3-D convolution"},
        ErrorCase{"FourDimensional", Seed64With("-_ 4"), StatusCode::kInvalidArgument,
                  "flag '-_' = 4 (allowed: 2, or 3 for 3-D)"},
        ErrorCase{"BiasTwo", Seed64With("-b 2"), StatusCode::kInvalidArgument,
                  "flag '-b' = '2' (allowed: 0 or 1)"},
        ErrorCase{"CastType", Seed64With("-U fp16"), StatusCode::kUnsupported,
                  "flag '-U' = 'fp16' casts a tensor"},
        ErrorCase{"Vectorized", Seed64With("-Z 1 -L 4"), StatusCode::kUnsupported,
                  "vectorized tensors"},
        ErrorCase{"StrayArgument", "conv 16 -F 1", StatusCode::kInvalidArgument,
                  "unexpected argument '16' where a flag was expected"},
        ErrorCase{"GluedValue", "conv -n1 -F 1", StatusCode::kInvalidArgument,
                  "flag '-n1' is not one letter"},
        ErrorCase{"LongFlagWithEquals", "conv --batchsize=1 -F 1", StatusCode::kInvalidArgument,
                  "flag '--batchsize=1': MIOpenDriver takes the value as the next word (write "
                  "'--batchsize 1')"},
        ErrorCase{"Help", "conv -h", StatusCode::kInvalidArgument,
                  "flag '-h' asks MIOpenDriver for help"},
        ErrorCase{"Empty", "  ", StatusCode::kInvalidArgument, "no command"},
        ErrorCase{"OnlyProgramName", "/opt/rocm/bin/MIOpenDriver", StatusCode::kInvalidArgument,
                  "no command"},
        ErrorCase{"GroupsDoNotDivide", "conv -n 1 -c 16 -H 64 -W 64 -k 32 -g 3 -F 1",
                  StatusCode::kInvalidArgument,
                  "miopen-driver: c = 16 must be divisible by groups = 3"},
        ErrorCase{"KernelLargerThanInput", "conv -n 1 -c 1 -H 2 -W 2 -k 1 -y 5 -x 5 -F 1",
                  StatusCode::kInvalidArgument, "dilated kernel height"}),
    CaseName<ErrorCase>);

TEST(MiopenDriverPrint, AsymmetricPadsAreUnsupported) {
  Problem p = Seed(16, 32, 64);
  p.pad_right = 0;
  StatusOr<std::string> got = ToMiopenDriver(p);
  ASSERT_FALSE(got.ok()) << *got;
  EXPECT_EQ(got.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(
      got.status().message().find("miopen-driver: MIOpen has one padding value per dimension"),
      std::string::npos)
      << got.status().message();
}

TEST(MiopenDriverPrint, InvalidProblemIsRejectedNotPrinted) {
  Problem p = Seed(16, 32, 64);
  p.groups = 3;
  StatusOr<std::string> got = ToMiopenDriver(p);
  ASSERT_FALSE(got.ok()) << *got;
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace convguard
