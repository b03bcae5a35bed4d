// Property tests over random valid problems, plus form detection.
//
// For every form that can express a problem p:
//   parse(print(p)) == p   and   print(parse(print(p))) == print(p),
// and DetectTextForm(print(p)) names that form. For the forms that refuse p, the refusal
// must be kUnsupported and for the documented reason only (asymmetric pads for MIOpen;
// backward-data bias or an end padding the output size cannot pin for benchdnn).
// The canonical parser must also read non-canonical spellings (shuffled tokens, omitted
// defaults, expanded pairs) as the same problem.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "convguard/text_forms.h"

namespace convguard {
namespace {

constexpr std::array<TextForm, 4> kForms = {TextForm::kCanonical, TextForm::kMiopenKey,
                                            TextForm::kMiopenDriver, TextForm::kBenchdnn};

class ProblemGenerator {
 public:
  explicit ProblemGenerator(uint64_t seed) : rng_(seed) {}

  // A random problem; may be invalid (the caller skips those).
  Problem Next() {
    Problem p;
    p.n = Uniform(1, 4);
    p.groups = Pick<int64_t>({1, 1, 1, 2, 3, 4});
    p.c = p.groups * Uniform(1, 6);
    p.k = p.groups * Uniform(1, 6);
    p.h = Uniform(1, 40);
    p.w = Chance(0.5) ? p.h : Uniform(1, 40);
    p.r = Uniform(1, 5);
    p.s = Chance(0.6) ? p.r : Uniform(1, 5);
    if (Chance(0.5)) {  // symmetric, often the most common spelling
      p.pad_top = p.pad_bottom = Uniform(0, 3);
      p.pad_left = p.pad_right = Chance(0.7) ? p.pad_top : Uniform(0, 3);
    } else {
      p.pad_top = Uniform(0, 3);
      p.pad_left = Uniform(0, 3);
      p.pad_bottom = Uniform(0, 3);
      p.pad_right = Uniform(0, 3);
    }
    p.stride_h = Uniform(1, 3);
    p.stride_w = Chance(0.6) ? p.stride_h : Uniform(1, 3);
    p.dilation_h = Chance(0.6) ? 1 : Uniform(1, 3);
    p.dilation_w = Chance(0.6) ? p.dilation_h : Uniform(1, 3);
    p.bias = Chance(0.3);
    p.dtype = Pick({DataType::kF32, DataType::kF16, DataType::kBF16});
    p.layout = Pick({Layout::kNCHW, Layout::kNHWC});
    p.direction =
        Pick({Direction::kForward, Direction::kBackwardData, Direction::kBackwardWeights});
    return p;
  }

  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  bool Chance(double probability) { return std::bernoulli_distribution(probability)(rng_); }
  template <typename T>
  T Pick(std::initializer_list<T> options) {
    const auto i = static_cast<size_t>(Uniform(0, static_cast<int64_t>(options.size()) - 1));
    return *(options.begin() + i);
  }
  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
};

// Why `form` may refuse to print `p`, or "" when it must print it.
std::string ExpectedRefusal(const Problem& p, TextForm form) {
  const bool symmetric = p.pad_top == p.pad_bottom && p.pad_left == p.pad_right;
  switch (form) {
    case TextForm::kCanonical: return "";
    case TextForm::kMiopenKey:
    case TextForm::kMiopenDriver: return symmetric ? "" : "asymmetric";
    case TextForm::kBenchdnn:
      if (p.bias && p.direction == Direction::kBackwardData) return "bias";
      // Symmetric pads are always expressible; asymmetric ones only sometimes.
      return symmetric ? "" : "maybe-padding";
  }
  return "";
}

std::string Describe(const Problem& p) { return ToCanonical(p); }

// A spelling of p in the canonical grammar that is not the canonical one: tokens shuffled,
// defaults dropped at random, pairs and pads written out in full at random.
std::string NonCanonicalSpelling(const Problem& p, ProblemGenerator& gen) {
  auto num = [](int64_t v) { return std::to_string(v); };
  std::vector<std::string> tokens;
  auto maybe_default = [&](bool is_default, std::string token) {
    if (!is_default || gen.Chance(0.5)) tokens.push_back(std::move(token));
  };
  maybe_default(p.n == 1, "n" + num(p.n));
  tokens.push_back("c" + num(p.c));
  tokens.push_back("h" + num(p.h));
  maybe_default(p.w == p.h, "w" + num(p.w));
  tokens.push_back("k" + num(p.k));
  tokens.push_back("r" + num(p.r));
  maybe_default(p.s == p.r, "s" + num(p.s));
  const bool no_pad = p.pad_top == 0 && p.pad_left == 0 && p.pad_bottom == 0 && p.pad_right == 0;
  const bool pads_per_dim = p.pad_top == p.pad_bottom && p.pad_left == p.pad_right;
  std::string pads = "p" + num(p.pad_top) + "x" + num(p.pad_left) + "x" + num(p.pad_bottom) + "x" +
                     num(p.pad_right);
  if (pads_per_dim && gen.Chance(0.5)) pads = "p" + num(p.pad_top) + "x" + num(p.pad_left);
  maybe_default(no_pad, pads);
  maybe_default(p.stride_h == 1 && p.stride_w == 1, "u" + num(p.stride_h) + "x" + num(p.stride_w));
  maybe_default(p.dilation_h == 1 && p.dilation_w == 1,
                "d" + num(p.dilation_h) + "x" + num(p.dilation_w));
  maybe_default(p.groups == 1, "g" + num(p.groups));
  if (p.bias) tokens.push_back("bias");
  maybe_default(p.dtype == DataType::kF32, std::string(DataTypeName(p.dtype)));
  maybe_default(p.layout == Layout::kNCHW, std::string(LayoutName(p.layout)));
  maybe_default(p.direction == Direction::kForward, std::string(DirectionName(p.direction)));
  std::shuffle(tokens.begin(), tokens.end(), gen.rng());
  std::string out;
  for (const std::string& t : tokens) {
    if (!out.empty()) out += '_';
    out += t;
  }
  return out;
}

TEST(TextFormRoundTrip, RandomValidProblems) {
  ProblemGenerator gen(0x5eed'c0de'2024ULL);
  constexpr int kWanted = 2000;
  int valid = 0;
  int attempts = 0;
  std::array<int, kForms.size()> printed{};
  std::array<int, kForms.size()> refused_asymmetric_pads{};

  while (valid < kWanted) {
    ASSERT_LT(++attempts, 20 * kWanted) << "the generator makes too few valid problems";
    const Problem p = gen.Next();
    if (!Validate(p).ok()) continue;
    ++valid;

    for (size_t f = 0; f < kForms.size(); ++f) {
      const TextForm form = kForms[f];
      const std::string form_name(TextFormName(form));
      StatusOr<std::string> text = PrintProblem(p, form);
      const std::string refusal = ExpectedRefusal(p, form);
      if (!text.ok()) {
        ASSERT_FALSE(refusal.empty())
            << form_name << " refused a problem it can express: " << Describe(p) << ": "
            << text.status().ToString();
        ASSERT_EQ(text.status().code(), StatusCode::kUnsupported)
            << form_name << " " << Describe(p) << ": " << text.status().ToString();
        if (refusal != "bias") ++refused_asymmetric_pads[f];
        continue;
      }
      ASSERT_TRUE(refusal.empty() || refusal == "maybe-padding")
          << form_name << " printed a problem it cannot express: " << Describe(p) << " as "
          << *text;
      ++printed[f];

      StatusOr<Problem> back = ParseProblem(*text, form);
      ASSERT_TRUE(back.ok()) << form_name << " cannot parse its own " << *text << " ("
                             << Describe(p) << "): " << back.status().ToString();
      ASSERT_EQ(*back, p) << form_name << ": " << *text << " parses as " << Describe(*back)
                          << ", printed from " << Describe(p);
      StatusOr<std::string> again = PrintProblem(*back, form);
      ASSERT_TRUE(again.ok()) << again.status().ToString();
      ASSERT_EQ(*again, *text);

      ASSERT_EQ(DetectTextForm(*text), form)
          << "detected " << TextFormName(DetectTextForm(*text)) << " for " << *text;
      StatusOr<Problem> detected = ParseProblem(*text);
      ASSERT_TRUE(detected.ok()) << *text << ": " << detected.status().ToString();
      ASSERT_EQ(*detected, p) << *text;
    }

    const std::string spelling = NonCanonicalSpelling(p, gen);
    StatusOr<Problem> reread = ParseProblem(spelling, TextForm::kCanonical);
    ASSERT_TRUE(reread.ok()) << spelling << ": " << reread.status().ToString();
    ASSERT_EQ(*reread, p) << spelling << " parses as " << Describe(*reread) << ", want "
                          << Describe(p);
    ASSERT_EQ(ToCanonical(*reread), ToCanonical(p));
  }

  // The property above is only as strong as the share of problems each form printed and
  // the share of refusals actually exercised.
  for (size_t f = 0; f < kForms.size(); ++f) {
    EXPECT_GT(printed[f], kWanted / 3) << TextFormName(kForms[f]);
  }
  EXPECT_EQ(printed[0], kWanted);  // canonical expresses everything
  EXPECT_GT(refused_asymmetric_pads[1], kWanted / 10);
  EXPECT_GT(refused_asymmetric_pads[2], kWanted / 10);
  EXPECT_GT(refused_asymmetric_pads[3], 0);
}

// Asymmetric pads that benchdnn prints must be pinned by the output size: every printed
// problem with asymmetric pads has to come back with exactly its pads.
TEST(TextFormRoundTrip, BenchdnnPrintsSomeAsymmetricPads) {
  ProblemGenerator gen(42);
  int asymmetric_printed = 0;
  for (int i = 0; i < 3000; ++i) {
    Problem p = gen.Next();
    if (p.pad_top == p.pad_bottom && p.pad_left == p.pad_right) continue;
    if (!Validate(p).ok()) continue;
    StatusOr<std::string> text = ToBenchdnn(p);
    if (!text.ok()) continue;
    ++asymmetric_printed;
    StatusOr<Problem> back = ParseProblem(*text, TextForm::kBenchdnn);
    ASSERT_TRUE(back.ok()) << *text << ": " << back.status().ToString();
    ASSERT_EQ(*back, p) << *text;
  }
  EXPECT_GT(asymmetric_printed, 100);
}

// Found by text_forms_fuzz (tests/fuzz/corpus/text_forms/regression-output-size-over-2-31):
// padding can make the output size of a valid problem exceed 2^31, the largest number the
// parsers read; the MIOpen key and benchdnn printers wrote that size, and their own parsers
// refused the text. They now refuse the problem instead, as a form that cannot express it.
TEST(TextFormRoundTrip, OutputSizeAboveTheNumberCeilingIsNotPrinted) {
  StatusOr<Problem> p = ParseProblem("n1_c1_h1_w1_k1_r1_s1_p2147483648x0_f16");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->out_h(), (int64_t{1} << 32) + 1);
  for (TextForm form : {TextForm::kMiopenKey, TextForm::kBenchdnn}) {
    StatusOr<std::string> printed = PrintProblem(*p, form);
    ASSERT_FALSE(printed.ok()) << *printed;
    EXPECT_EQ(printed.status().code(), StatusCode::kUnsupported);
    EXPECT_NE(printed.status().message().find("output size 4294967297x1 exceeds 2147483648"),
              std::string::npos)
        << printed.status().message();
  }
  // MIOpenDriver arguments carry no output size: they still print, and read back.
  StatusOr<std::string> driver = ToMiopenDriver(*p);
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  StatusOr<Problem> back = ParseProblem(*driver);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, *p);
}

// ---- detection ------------------------------------------------------------------------

struct DetectCase {
  std::string name;
  std::string text;
  TextForm form;
};

// gtest prints a failing case's parameter; its name is what a reader needs.
void PrintTo(const DetectCase& c, std::ostream* os) { *os << c.name; }

class DetectTextFormTest : public testing::TestWithParam<DetectCase> {};

TEST_P(DetectTextFormTest, Detects) {
  const DetectCase& c = GetParam();
  EXPECT_EQ(TextFormName(DetectTextForm(c.text)), TextFormName(c.form)) << c.text;
}

INSTANTIATE_TEST_SUITE_P(
    Detection, DetectTextFormTest,
    testing::Values(
        DetectCase{"CanonicalFull", "n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd",
                   TextForm::kCanonical},
        DetectCase{"CanonicalShort", "c16_h64_k32_r3", TextForm::kCanonical},
        DetectCase{"CanonicalDirectionFirst", "bwd-data_c16_h64_k32_r3", TextForm::kCanonical},
        DetectCase{"CanonicalWithOneTypo", "c16_h64_k32_r3_zz", TextForm::kCanonical},
        DetectCase{"MiopenKey", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F",
                   TextForm::kMiopenKey},
        DetectCase{"MiopenKeyGroups", "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-W_g2",
                   TextForm::kMiopenKey},
        DetectCase{"MiopenKeyTruncated", "16-64-64-3x3", TextForm::kMiopenKey},
        DetectCase{"MiopenDriver", "conv -n 1 -c 16 -F 1", TextForm::kMiopenDriver},
        DetectCase{"MiopenDriverFp16", "convfp16 -n 1", TextForm::kMiopenDriver},
        DetectCase{"MiopenDriverProgram", "./bin/MIOpenDriver conv -n 1", TextForm::kMiopenDriver},
        DetectCase{"BenchdnnBare", "mb2ic16ih64oc32oh64kh3ph1", TextForm::kBenchdnn},
        DetectCase{"BenchdnnGroups", "g2mb2ic16ih64oc32kh3", TextForm::kBenchdnn},
        DetectCase{"BenchdnnUnderscores", "g2_mb1_ic16ih64_oc32oh64_kh3ph1", TextForm::kBenchdnn},
        DetectCase{"BenchdnnKnobs", "--dir=FWD_D mb1ic16ih64oc32kh3", TextForm::kBenchdnn},
        DetectCase{"BenchdnnProgram", "./benchdnn --conv mb1ic16ih64oc32kh3", TextForm::kBenchdnn}),
    [](const testing::TestParamInfo<DetectCase>& info) { return info.param.name; });

TEST(TextForms, NamesAreStable) {
  EXPECT_EQ(TextFormName(TextForm::kCanonical), "canonical");
  EXPECT_EQ(TextFormName(TextForm::kMiopenKey), "miopen-key");
  EXPECT_EQ(TextFormName(TextForm::kMiopenDriver), "miopen-driver");
  EXPECT_EQ(TextFormName(TextForm::kBenchdnn), "benchdnn");
}

TEST(TextForms, DetectedParseErrorNamesTheFormTried) {
  StatusOr<Problem> canonical = ParseProblem("c16_h64_k32_r3_zz");
  ASSERT_FALSE(canonical.ok());
  EXPECT_EQ(canonical.status().message().rfind("canonical: token 'zz'", 0), 0u)
      << canonical.status().message();

  StatusOr<Problem> key = ParseProblem("16-64-64-3x3");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().message().rfind("miopen-key: expected 15", 0), 0u)
      << key.status().message();

  StatusOr<Problem> driver = ParseProblem("conv -n 1 -Q 2 -F 1");
  ASSERT_FALSE(driver.ok());
  EXPECT_EQ(driver.status().message().rfind("miopen-driver: unknown flag '-Q'", 0), 0u)
      << driver.status().message();

  StatusOr<Problem> benchdnn = ParseProblem("mb1ic16ih64oc32kh3qq1");
  ASSERT_FALSE(benchdnn.ok());
  EXPECT_EQ(benchdnn.status().message().rfind("benchdnn: unknown field at 'qq1'", 0), 0u)
      << benchdnn.status().message();
}

TEST(TextForms, SeedProblemsAgreeAcrossForms) {
  // The same problem written in each form, as a person would find it in each tool.
  const std::array<std::string, 4> spellings = {
      "n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd",
      "16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F",
      "conv -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -g 1 -F 1",
      "--dir=FWD_D mb1ic16ih64oc32oh64kh3ph1"};
  StatusOr<Problem> first = ParseProblem(spellings[0]);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  for (const std::string& s : spellings) {
    StatusOr<Problem> p = ParseProblem(s);
    ASSERT_TRUE(p.ok()) << s << ": " << p.status().ToString();
    EXPECT_EQ(ToCanonical(*p), ToCanonical(*first)) << s;
  }
}

}  // namespace
}  // namespace convguard
