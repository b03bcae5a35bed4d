// The fault-rules language: predicates (parse, types, evaluation) and rules files
// (directives, faults, positions in error messages, first match wins).
#include "backends/inject/fault_rules.h"

#include <gtest/gtest.h>

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "core/hash.h"
#include "support/seed_problems.h"

namespace convguard::inject {
namespace {

using testing_support::SeedConv;

// ---- predicates: evaluation --------------------------------------------------------

struct EvalCase {
  const char* name;
  const char* predicate;
  bool expected;
};

// Evaluated over Conv2d(16, 32, 3, padding=1) at 48x48 with algorithm "gemm".
const EvalCase kEvalCases[] = {
    {"Always", "always", true},
    {"Fields", "c == 16 && k == 32 && h == 48 && w == 48 && r == 3 && s == 3 && n == 1", true},
    {"OutputSize", "oh == 48 && ow == 48", true},
    {"Pads", "pad_top + pad_left + pad_bottom + pad_right == 4", true},
    {"StrideDilation", "stride_h * stride_w * dilation_h * dilation_w == 1", true},
    {"Groups", "groups == 1 && c_per_group == 16 && k_per_group == 32", true},
    {"Bias", "bias == 0 && !bias", true},
    {"MulBeforeAdd", "1 + 2 * 3 == 7", true},
    {"Parentheses", "(1 + 2) * 3 == 9", true},
    {"SubtractionIsLeftAssociative", "n - 1 - 1 == -1", true},
    {"DivisionTruncatesTowardZero", "7 / 2 == 3 && -7 / 2 == -3", true},
    {"RemainderHasSignOfDividend", "-7 % 2 == -1 && 7 % -2 == 1", true},
    {"UnaryPlusAndNot", "+c == 16 && !0 && !!5", true},
    {"AndBindsTighterThanOr", "1 || 0 && 0", true},
    {"ParenthesesOverrideAnd", "(1 || 0) && 0", false},
    {"ComparisonAsInteger", "(2 < 3) == 1 && (c > 99) == 0", true},
    {"Pow2", "pow2(c) && pow2(k) && pow2(1) && !pow2(48) && !pow2(0) && !pow2(-16)", true},
    {"MinMax", "min(h, w) == 48 && max(c, k) == 32 && min(-1, 1) == -1", true},
    {"Enums", "dtype == f32 && layout == nchw && direction == fwd", true},
    {"EnumsEitherSide", "f32 == dtype && nhwc != layout && bwd_data != direction", true},
    {"EnumMismatch", "dtype == f16 || dtype == bf16", false},
    {"Algorithm", "algo == \"gemm\" && algo != \"direct\"", true},
    {"AlgorithmMismatch", "algo == \"direct\"", false},
    {"LargestLiteral", "9223372036854775807 > c", true},
    // Undefined values make the whole predicate false, even under '!'.
    {"DivisionByZeroIsFalse", "k / (c - 16) > 0", false},
    {"DivisionByZeroUnderNotIsFalse", "!(k / (c - 16) > 0)", false},
    {"RemainderByZeroIsFalse", "k % (c - 16) == 0", false},
    {"OverflowIsFalse", "h * 4611686018427387904 != 0", false},
    {"NegativeOverflowIsFalse", "-9223372036854775807 - 2 < 0", false},
    // ... unless short-circuiting skips them.
    {"OrShortCircuits", "c == 16 || k / (c - 16) > 0", true},
    {"AndShortCircuits", "c != 16 && k / (c - 16) > 0", false},
};

void PrintTo(const EvalCase& c, std::ostream* os) { *os << c.name; }

class PredicateEvalTest : public ::testing::TestWithParam<EvalCase> {};

TEST_P(PredicateEvalTest, EvaluatesOverSeedProblem) {
  const EvalCase& c = GetParam();
  StatusOr<Predicate> predicate = Predicate::Parse(c.predicate);
  ASSERT_TRUE(predicate.ok()) << predicate.status().ToString();
  EXPECT_EQ(predicate->Matches(SeedConv(16, 32, 48), "gemm"), c.expected) << c.predicate;
  EXPECT_EQ(predicate->text(), c.predicate);
}

INSTANTIATE_TEST_SUITE_P(Cases, PredicateEvalTest, ::testing::ValuesIn(kEvalCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(PredicateTest, OutputSizeFollowsStrideDilationAndAsymmetricPads) {
  Problem p;
  p.h = 10;
  p.w = 7;
  p.r = 3;
  p.s = 2;
  p.pad_top = 0;
  p.pad_bottom = 2;
  p.pad_left = 1;
  p.pad_right = 0;
  p.stride_h = 2;
  p.stride_w = 3;
  p.dilation_h = 2;
  ASSERT_TRUE(Validate(p).ok());
  StatusOr<Predicate> predicate = Predicate::Parse("oh == 4 && ow == 3");
  ASSERT_TRUE(predicate.ok()) << predicate.status().ToString();
  EXPECT_TRUE(predicate->Matches(p, "direct"));
}

TEST(PredicateTest, InvalidProblemNeverCrashesEvaluation) {
  Problem p = SeedConv(16, 32, 48);
  p.stride_h = 0;  // not valid; a predicate reading oh must not divide by zero
  p.groups = 0;
  StatusOr<Predicate> predicate = Predicate::Parse("oh > 0 || c_per_group > 0");
  ASSERT_TRUE(predicate.ok()) << predicate.status().ToString();
  EXPECT_FALSE(predicate->Matches(p, "direct"));
}

TEST(PredicateTest, EveryDirectionAndLayoutConstant) {
  Problem p = SeedConv(16, 32, 48);
  p.direction = Direction::kBackwardWeights;
  p.layout = Layout::kNHWC;
  p.dtype = DataType::kBF16;
  StatusOr<Predicate> predicate =
      Predicate::Parse("direction == bwd_weights && layout == nhwc && dtype == bf16");
  ASSERT_TRUE(predicate.ok()) << predicate.status().ToString();
  EXPECT_TRUE(predicate->Matches(p, ""));
  p.direction = Direction::kBackwardData;
  EXPECT_FALSE(predicate->Matches(p, ""));
}

TEST(PredicateTest, DeviceIsTheServedDeviceIndex) {
  StatusOr<Predicate> predicate = Predicate::Parse("device == 1 && c == 16");
  ASSERT_TRUE(predicate.ok()) << predicate.status().ToString();
  EXPECT_TRUE(predicate->uses_device());
  EXPECT_FALSE(predicate->Matches(SeedConv(16, 32, 48), "gemm"));  // device 0 unless told
  EXPECT_FALSE(predicate->Matches(SeedConv(16, 32, 48), "gemm", 0));
  EXPECT_TRUE(predicate->Matches(SeedConv(16, 32, 48), "gemm", 1));
  EXPECT_FALSE(predicate->Matches(SeedConv(8, 32, 48), "gemm", 1));
  StatusOr<Predicate> arithmetic = Predicate::Parse("device % 2 == 1 || device * 0 > 0");
  ASSERT_TRUE(arithmetic.ok()) << arithmetic.status().ToString();
  EXPECT_TRUE(arithmetic->Matches(SeedConv(16, 32, 48), "gemm", 3));
  EXPECT_FALSE(arithmetic->Matches(SeedConv(16, 32, 48), "gemm", 4));
  StatusOr<Predicate> without = Predicate::Parse("c == 16");
  ASSERT_TRUE(without.ok());
  EXPECT_FALSE(without->uses_device());
}

TEST(FaultRulesTest, DeviceRulesGiveEachDeviceItsOwnDigest) {
  constexpr char kText[] = "spin when device == 1 && k == 32\nerror(\"x\") when c == 7\n";
  StatusOr<FaultRules> rules = ParseFaultRules(kText, "dev.rules");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  EXPECT_TRUE(rules->UsesDevice());
  EXPECT_EQ(rules->Match(SeedConv(16, 32, 48), "gemm", 0), nullptr);
  ASSERT_NE(rules->Match(SeedConv(16, 32, 48), "gemm", 1), nullptr);
  EXPECT_EQ(rules->Match(SeedConv(16, 32, 48), "gemm", 1)->line, 1);
  EXPECT_EQ(rules->DigestOnDevice(0), Fnv1a64Hex(Fnv1a64Hex(kText) + "@device 0"));
  EXPECT_NE(rules->DigestOnDevice(0), rules->DigestOnDevice(1));
  StackFingerprint on0, on1;
  on0.backend = on1.backend = "cudnn";
  rules->ApplyTo(on0, 0);
  rules->ApplyTo(on1, 1);
  EXPECT_EQ(on0.fault_rules_digest, rules->DigestOnDevice(0));
  EXPECT_NE(on0.Id(), on1.Id());

  StatusOr<FaultRules> plain = ParseFaultRules("error(\"x\") when c == 7\n", "plain.rules");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->UsesDevice());
  EXPECT_EQ(plain->DigestOnDevice(3), plain->digest);
}

// ---- predicates: the call history (sequence faults) ---------------------------------

struct HistoryCase {
  const char* name;
  const char* predicate;
  int64_t calls;
  bool has_previous;  // the previous call: Conv2d(3, 16, 3, padding=1) at 48x48, "direct"
  bool expected;
};

// Evaluated over Conv2d(16, 32, 3, padding=1) at 48x48 with algorithm "gemm".
const HistoryCase kHistoryCases[] = {
    {"CallsOnTheFirstCall", "calls == 1", 1, false, true},
    {"CallsAtTheThreshold", "calls >= 40 && c == 16", 40, true, true},
    {"CallsPastTheThreshold", "calls >= 40 && c == 16", 41, true, true},
    {"CallsBeforeTheThreshold", "calls >= 40 && c == 16", 39, true, false},
    {"CallsOnAnotherProblem", "calls >= 40 && c == 8", 40, true, false},
    {"CallsInArithmetic", "calls % 7 == 5 && calls / 7 == 5", 40, true, true},
    {"PrevField", "prev.c == 3 && c == 16", 2, true, true},
    {"PrevFieldOtherValue", "prev.c == 8 && c == 16", 2, true, false},
    {"PrevComparesWithAField", "prev.k == c && prev.oh == oh && prev.w == w", 2, true, true},
    {"PrevInArithmetic", "c / prev.c == 5 && prev.c_per_group * 2 == 6", 2, true, true},
    {"PrevEnums", "prev.dtype == f32 && prev.layout == nchw && prev.direction == fwd", 2, true,
     true},
    {"PrevEnumWithField", "prev.dtype == dtype && prev.direction != bwd_data", 2, true, true},
    {"PrevAlgo", "prev.algo == \"direct\" && algo == \"gemm\"", 2, true, true},
    {"PrevAlgoComparesWithAlgo", "prev.algo != algo", 2, true, true},
    // On the first call every prev.* value is undefined, and an undefined predicate does
    // not match, whatever the operator around it.
    {"PrevUndefinedOnTheFirstCall", "prev.c == 3 && c == 16", 1, false, false},
    {"PrevNotEqualIsUndefinedToo", "prev.c != 3", 1, false, false},
    {"PrevUndefinedUnderNot", "!(prev.c == 3)", 1, false, false},
    {"PrevAlgoUndefinedOnTheFirstCall", "prev.algo != \"direct\"", 1, false, false},
    {"UndefinedLeftOfOr", "prev.c == 3 || c == 16", 1, false, false},
    {"OrShortCircuitsBeforePrev", "c == 16 || prev.c == 3", 1, false, true},
    {"FirstCallGuard", "calls == 1 || prev.c == 3", 1, false, true},
    {"FirstCallGuardOnALaterCall", "calls == 1 || prev.c == 3", 2, true, true},
};

void PrintTo(const HistoryCase& c, std::ostream* os) { *os << c.name; }

class PredicateHistoryTest : public ::testing::TestWithParam<HistoryCase> {};

TEST_P(PredicateHistoryTest, EvaluatesOverSeedProblemAfterItsHistory) {
  const HistoryCase& c = GetParam();
  StatusOr<Predicate> predicate = Predicate::Parse(c.predicate);
  ASSERT_TRUE(predicate.ok()) << predicate.status().ToString();
  EXPECT_TRUE(predicate->uses_history());
  const Problem previous = SeedConv(3, 16, 48);
  CallHistory history;
  history.calls = c.calls;
  if (c.has_previous) {
    history.previous = &previous;
    history.previous_algorithm = "direct";
  }
  EXPECT_EQ(predicate->Matches(SeedConv(16, 32, 48), "gemm", 0, history), c.expected)
      << c.predicate;
  EXPECT_EQ(predicate->text(), c.predicate);
}

INSTANTIATE_TEST_SUITE_P(Cases, PredicateHistoryTest, ::testing::ValuesIn(kHistoryCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(PredicateTest, WithoutAHistoryIsTheFirstCallOfAFreshProcess) {
  StatusOr<Predicate> first = Predicate::Parse("calls == 1 && c == 16");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->Matches(SeedConv(16, 32, 48), "gemm"));
  EXPECT_TRUE(first->Matches(SeedConv(16, 32, 48), "gemm", 3));
  StatusOr<Predicate> later = Predicate::Parse("calls > 1 || prev.c > 0");
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  EXPECT_FALSE(later->Matches(SeedConv(16, 32, 48), "gemm"));
  // A count without a previous problem (not what InjectingBackend gives, but allowed):
  // calls reads the count, prev.* stays undefined.
  CallHistory no_previous;
  no_previous.calls = 5;
  EXPECT_TRUE(later->Matches(SeedConv(16, 32, 48), "gemm", 0, no_previous));
  StatusOr<Predicate> previous_only = Predicate::Parse("prev.c > 0");
  ASSERT_TRUE(previous_only.ok());
  EXPECT_FALSE(previous_only->Matches(SeedConv(16, 32, 48), "gemm", 0, no_previous));
}

// Every field reads the previous call's problem under prev., with the field's own type.
TEST(PredicateTest, EveryFieldHasItsPrevForm) {
  const std::vector<std::string> fields = {
      "n",        "c",          "h",          "w",        "k",           "r",           "s",
      "oh",       "ow",         "pad_top",    "pad_left", "pad_bottom",  "pad_right",   "stride_h",
      "stride_w", "dilation_h", "dilation_w", "groups",   "c_per_group", "k_per_group", "bias",
      "dtype",    "layout",     "direction",  "algo"};
  const Problem current = SeedConv(16, 32, 48);
  // Differs from `current` in every field.
  Problem other;
  other.n = 2;
  other.c = 8;
  other.h = 20;
  other.w = 21;
  other.k = 12;
  other.r = 5;
  other.s = 1;
  other.pad_top = 2;
  other.pad_left = 0;
  other.pad_bottom = 0;
  other.pad_right = 3;
  other.stride_h = 2;
  other.stride_w = 3;
  other.dilation_h = 2;
  other.dilation_w = 3;
  other.groups = 4;
  other.bias = true;
  other.dtype = DataType::kF16;
  other.layout = Layout::kNHWC;
  other.direction = Direction::kBackwardData;
  ASSERT_TRUE(Validate(other).ok());
  ASSERT_NE(other.out_h(), current.out_h());
  ASSERT_NE(other.out_w(), current.out_w());
  for (const std::string& field : fields) {
    SCOPED_TRACE(field);
    StatusOr<Predicate> same = Predicate::Parse("prev." + field + " == " + field);
    ASSERT_TRUE(same.ok()) << same.status().ToString();
    EXPECT_TRUE(same->uses_history());
    EXPECT_FALSE(same->uses_device());
    StatusOr<Predicate> differs = Predicate::Parse("prev." + field + " != " + field);
    ASSERT_TRUE(differs.ok()) << differs.status().ToString();
    const CallHistory after_same{2, &current, "gemm"};
    const CallHistory after_other{2, &other, "direct"};
    EXPECT_TRUE(same->Matches(current, "gemm", 0, after_same));
    EXPECT_FALSE(same->Matches(current, "gemm", 0, after_other));
    EXPECT_FALSE(differs->Matches(current, "gemm", 0, after_same));
    EXPECT_TRUE(differs->Matches(current, "gemm", 0, after_other));
    // Undefined on the first call, whichever way it is compared.
    EXPECT_FALSE(same->Matches(current, "gemm"));
    EXPECT_FALSE(differs->Matches(current, "gemm"));
  }
}

TEST(PredicateTest, UsesHistoryOnlyWhenCallsOrPrevIsRead) {
  for (const char* reads : {"calls > 1", "prev.c == 3", "c == 1 || prev.algo == \"x\"",
                            "min(calls, 3) == 3", "!(prev.bias)"}) {
    StatusOr<Predicate> predicate = Predicate::Parse(reads);
    ASSERT_TRUE(predicate.ok()) << reads << ": " << predicate.status().ToString();
    EXPECT_TRUE(predicate->uses_history()) << reads;
  }
  for (const char* plain : {"c == 3", "device == 1", "algo == \"prev\"", "always"}) {
    StatusOr<Predicate> predicate = Predicate::Parse(plain);
    ASSERT_TRUE(predicate.ok()) << plain << ": " << predicate.status().ToString();
    EXPECT_FALSE(predicate->uses_history()) << plain;
  }
  EXPECT_FALSE(Predicate().uses_history());
}

TEST(FaultRulesTest, MatchTakesTheCallHistory) {
  constexpr char kText[] =
      "error(\"late\") when calls >= 40 && c == 16\n"
      "spin when prev.c == 3 && c == 16\n"
      "error(\"x\") when c == 7\n";
  StatusOr<FaultRules> rules = ParseFaultRules(kText, "seq.rules");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  EXPECT_TRUE(rules->UsesHistory());
  EXPECT_FALSE(rules->UsesDevice());
  // The history does not split stacks: the digest is the text's, on every device.
  EXPECT_EQ(rules->DigestOnDevice(1), rules->digest);
  const Problem seed = SeedConv(16, 32, 48);
  const Problem c3 = SeedConv(3, 16, 48);
  const Problem c8 = SeedConv(8, 16, 48);
  EXPECT_EQ(rules->Match(seed, "gemm"), nullptr);  // the first call
  EXPECT_EQ(rules->Match(seed, "gemm", 0, {2, &c8, "gemm"}), nullptr);
  ASSERT_NE(rules->Match(seed, "gemm", 0, {2, &c3, "gemm"}), nullptr);
  EXPECT_EQ(rules->Match(seed, "gemm", 0, {2, &c3, "gemm"})->line, 2);
  EXPECT_EQ(rules->Match(seed, "gemm", 0, {39, &c8, "gemm"}), nullptr);
  ASSERT_NE(rules->Match(seed, "gemm", 0, {40, &c8, "gemm"}), nullptr);
  EXPECT_EQ(rules->Match(seed, "gemm", 0, {40, &c8, "gemm"})->fault.message, "late");
  // First match wins: call 40 after a c == 3 call is "late", not spin.
  EXPECT_EQ(rules->Match(seed, "gemm", 0, {40, &c3, "gemm"})->line, 1);
  // Rules without history are untouched by it.
  EXPECT_EQ(rules->Match(SeedConv(7, 16, 48), "gemm", 0, {2, &c3, "gemm"})->line, 3);

  // The rules round-trip through their text.
  for (const FaultRule& rule : rules->rules) {
    StatusOr<FaultRules> again = ParseFaultRules(rule.ToString(), "again");
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->rules[0].ToString(), rule.ToString());
  }
  StatusOr<FaultRules> plain = ParseFaultRules("spin when c == 3 && device == 1\n", "plain");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->UsesHistory());
}

TEST(PredicateTest, DefaultPredicateMatchesNothing) {
  EXPECT_FALSE(Predicate().Matches(SeedConv(16, 32, 48), "gemm"));
}

// ---- predicates: errors ------------------------------------------------------------

struct ErrorCase {
  const char* name;
  const char* text;
  std::vector<std::string> substrings;
};

const ErrorCase kPredicateErrors[] = {
    {"Empty", "", {"column 1:", "expected a predicate"}},
    {"MissingOperand",
     "c ==",
     {"column 5:", "expected a field, a number, a function call or '('", "got end of line"}},
    {"SingleEquals", "c = 16", {"column 3:", "unexpected '='", "did you mean '=='"}},
    {"SingleAmpersand", "c & k", {"column 3:", "did you mean '&&'"}},
    {"UnknownIdentifier",
     "chan > 3",
     {"column 1:", "unknown identifier 'chan'", "fields: n c h w k r s oh ow pad_top",
      "dtype layout direction algo device calls prev.<field>; constants: f32 f16 bf16 nchw nhwc "
      "fwd bwd_data",
      "always", "functions: pow2() min() max()"}},
    {"Misspelt", "groupz == 1", {"unknown identifier 'groupz'", "did you mean 'groups'?"}},
    {"UnquotedAlgorithm", "algo == direct", {"column 9:", "unknown identifier 'direct'"}},
    {"EnumOfOtherKind",
     "dtype == nchw",
     {"column 7:", "cannot compare 'dtype' (a dtype) with 'nchw' (a layout)",
      "a dtype compares with f32, f16 or bf16"}},
    {"EnumWithInteger", "dtype == 1", {"cannot compare 'dtype' (a dtype) with '1' (an integer)"}},
    {"IntegerWithString",
     "c == \"x\"",
     {"cannot compare 'c' (an integer) with '\"x\"' (a string)", "algo or a \"string\""}},
    {"BareEnum",
     "dtype",
     {"a predicate must be a condition", "'dtype' is a dtype", "dtype == f16"}},
    {"BareAlgo", "algo", {"a predicate must be a condition", "algo == \"direct\""}},
    {"DeviceIsAnInteger", "device == \"1\"", {"cannot compare 'device' (an integer)"}},
    {"DeviceMisspelt", "devcie == 1", {"unknown identifier 'devcie'", "did you mean 'device'?"}},
    {"ArithmeticOnEnum",
     "dtype + 1 > 0",
     {"column 7:", "'+' needs integer operands, but 'dtype' is a dtype"}},
    {"NotOnEnum", "!layout", {"'!' needs integer operands"}},
    {"LogicOnString", "c > 1 && algo", {"'&&' needs integer operands, but 'algo' is a string"}},
    {"ChainedRelational", "1 < c < 3", {"column 7:", "comparisons do not chain"}},
    {"ChainedEquality", "c == 1 == 1", {"comparisons do not chain"}},
    {"MixedChain", "1 < c == 1", {"comparisons do not chain", "'1 < c == ...'"}},
    {"Pow2Arity", "pow2(c, k)", {"column 1:", "pow2() takes 1 argument, got 2"}},
    {"MinArity", "min(c) > 1", {"min() takes 2 arguments, got 1"}},
    {"FunctionOfEnum",
     "pow2(dtype)",
     {"column 6:", "pow2() takes integers, but 'dtype' is a dtype"}},
    {"UnknownFunction",
     "pwo2(c)",
     {"unknown function 'pwo2'", "did you mean 'pow2'?",
      "functions are pow2(x), min(a, b), max(a, b)"}},
    {"FieldCalled", "c(1)", {"'c' is a field, not a function"}},
    {"FunctionNotCalled", "pow2 > 1", {"'pow2' is a function: write pow2(x)"}},
    {"UnclosedParenthesis",
     "(c > 1",
     {"column 7:", "expected ')' to close the '(' at column 1", "got end of line"}},
    {"UnclosedCall", "max(c, k > 1", {"expected ')' to close max(", "got end of line"}},
    {"StrayParenthesis",
     "c > 1)",
     {"column 6:", "expected an operator or the end of the predicate", "got ')'"}},
    {"TwoOperands", "c 16", {"column 3:", "expected an operator", "got '16'"}},
    {"Decimal", "c > 0.5", {"column 5:", "'0.5' is not an integer"}},
    {"MalformedNumber", "c > 16abc", {"column 5:", "malformed number '16abc'"}},
    {"HugeLiteral",
     "c > 99999999999999999999",
     {"column 5:", "is too large", "9223372036854775807"}},
    {"LiteralDivisionByZero", "k / 0 > 1", {"column 3:", "'/ 0' divides by zero"}},
    {"LiteralRemainderByZero", "k % 0 > 1", {"'% 0' divides by zero"}},
    {"StrangeCharacter", "c > 1 $", {"column 7:", "unexpected character '$'"}},
    {"UnterminatedString", "algo == \"gemm", {"column 9:", "unterminated string"}},
    {"BadEscape", "algo == \"a\\n\"", {"column 11:", "unknown escape"}},
    {"Continuation", "c > 1 \\", {"a lone predicate has one line"}},
    // The call history: calls and prev.<field>.
    {"CallsMisspelt",
     "call > 3",
     {"column 1:", "unknown identifier 'call'", "did you mean 'calls'?"}},
    {"CallsIsAnInteger", "calls == \"1\"", {"cannot compare 'calls' (an integer)"}},
    {"CallsCalled", "calls(2) > 1", {"'calls' is a field, not a function"}},
    {"PrevAlone",
     "prev == 3",
     {"column 1:", "'prev' alone is not a value: write prev.<field>", "e.g. prev.c == 3",
      "after 'prev.' comes a field of the previous call: n c h w k r s oh ow pad_top",
      "dtype layout direction algo"}},
    {"PrevAloneAfterAnOperator", "c == 1 && prev", {"column 11:", "'prev' alone is not a value"}},
    {"PrevFieldMisspelt",
     "prev.groupz == 1",
     {"column 1:",
      "unknown identifier 'prev.groupz' (did you mean 'prev.groups'?); after 'prev.' "
      "comes a field of the previous call: n c"}},
    {"PrevUnknownField",
     "c > 1 && prev.foo == 1",
     {"column 10:", "unknown identifier 'prev.foo'; after 'prev.' comes a field"}},
    {"PrevConstant", "prev.f16 == dtype", {"unknown identifier 'prev.f16'; after 'prev.'"}},
    {"PrevDevice",
     "prev.device == 1",
     {"column 1:", "'prev.device' is not a field: a process serves one device", "'device'"}},
    {"PrevCalls", "prev.calls > 1", {"'prev.calls' is not a field", "'calls - 1'"}},
    {"PrevTwice", "prev.prev.c == 1", {"unknown identifier 'prev.prev.c'"}},
    {"PrefixMisspelt",
     "prv.c == 3",
     {"unknown identifier 'prv.c' (did you mean 'prev.c'?)", "calls prev.<field>"}},
    {"PrefixWithoutDot", "prevc == 3", {"did you mean 'prev.c'?"}},
    {"DotThenSpace",
     "prev. c == 3",
     {"column 6:", "expected a name after 'prev.' (as in prev.c), got a space"}},
    {"DotAtTheEnd", "c > prev.", {"column 10:", "expected a name after 'prev.'", "end of line"}},
    {"DotThenDigit", "prev.3 > 1", {"column 6:", "got '3'"}},
    {"DotAfterAField", "c.h > 1", {"column 1:", "unknown identifier 'c.h'"}},
    {"StrayDot", "c > .5", {"column 5:", "unexpected character '.'"}},
    {"PrevEnumOfOtherKind",
     "prev.dtype == nchw",
     {"column 12:", "cannot compare 'prev.dtype' (a dtype) with 'nchw' (a layout)"}},
    {"PrevAlgoIsAString",
     "prev.algo > 1",
     {"'>' needs integer operands, but 'prev.algo' is a string"}},
    {"BarePrevAlgo",
     "prev.algo",
     {"a predicate must be a condition", "'prev.algo' is a string", "prev.algo == \"direct\""}},
    {"PrevFieldCalled", "prev.c(1)", {"'prev.c' is a field, not a function"}},
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class PredicateErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(PredicateErrorTest, NamesColumnTokenAndExpectation) {
  const ErrorCase& c = GetParam();
  StatusOr<Predicate> predicate = Predicate::Parse(c.text);
  ASSERT_FALSE(predicate.ok()) << c.text;
  EXPECT_EQ(predicate.status().code(), StatusCode::kInvalidArgument);
  for (const std::string& s : c.substrings) {
    EXPECT_NE(predicate.status().message().find(s), std::string::npos)
        << "missing '" << s << "' in: " << predicate.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, PredicateErrorTest, ::testing::ValuesIn(kPredicateErrors),
                         [](const auto& info) { return std::string(info.param.name); });

// Found by fault_rules_fuzz (tests/fuzz/corpus/fault_rules/regression-deep-nesting): a
// thousand '(' overflowed the stack of the recursive-descent parser. Nesting and the
// height of the tree (which evaluation and destruction recurse over) are now bounded, and
// passing a bound is an error at the token that does.
TEST(PredicateTest, DeepNestingIsAnErrorNotACrash) {
  auto nested = [](size_t levels) {
    return std::string(levels, '(') + "c > 1" + std::string(levels, ')');
  };
  const Problem seed = SeedConv(16, 32, 48);
  StatusOr<Predicate> within = Predicate::Parse(nested(99));
  ASSERT_TRUE(within.ok()) << within.status().ToString();
  EXPECT_TRUE(within->Matches(seed, "gemm"));

  for (const std::string& text : {nested(100), nested(5000), std::string(5000, '!') + "c"}) {
    StatusOr<Predicate> deep = Predicate::Parse(text);
    ASSERT_FALSE(deep.ok());
    EXPECT_EQ(deep.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(deep.status().message().find("column 101: the predicate nests more than 100 "
                                           "levels deep here"),
              std::string::npos)
        << deep.status().message();
  }

  // A chain of binary operators is parsed by loops but is as tall as it is long.
  auto chain = [](int terms) {
    std::string text = "c";
    for (int i = 1; i < terms; ++i) text += " + c";
    return text + " > 0";
  };
  StatusOr<Predicate> long_chain = Predicate::Parse(chain(999));
  ASSERT_TRUE(long_chain.ok()) << long_chain.status().ToString();
  EXPECT_TRUE(long_chain->Matches(seed, "gemm"));
  StatusOr<Predicate> too_long = Predicate::Parse(chain(5000));
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("more than 1000 operators deep here; split it"),
            std::string::npos)
      << too_long.status().message();

  StatusOr<FaultRules> file = ParseFaultRules("spin when " + nested(5000) + "\n", "deep.rules");
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("deep.rules:1:111: the predicate nests"),
            std::string::npos)
      << file.status().message();
}

// ---- rules files -------------------------------------------------------------------

constexpr char kEveryFault[] = R"(# every directive and every fault
emulation: test emulation of a stack   # trailing comment
stack.device: "Device #1"
stack.architecture: gfx1010
stack.driver: drv 1
stack.runtime: rt 2
stack.library: lib 3
stack.compute_units: 40
stack.knobs.MIOPEN_FIND_MODE: 1

spin when c == 1
block when c == 2   # comment
segv when c == 3
abort when c == 4
exit(3) when c == 5
wrong(0.25) when c == 6
error("no \"kernel\" # here") when c == 7
slow(20) when c == 8
oom when c == 9
unsupported("not on Tuesdays") when c == 10
spin when c == 11 && \
          (h > 32 ||   \
           w > 32)     # continued
)";

TEST(FaultRulesTest, ParsesEveryDirectiveAndFault) {
  StatusOr<FaultRules> rules = ParseFaultRules(kEveryFault, "every.rules");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  EXPECT_EQ(rules->origin, "every.rules");
  EXPECT_EQ(rules->digest, Fnv1a64Hex(kEveryFault));
  EXPECT_EQ(rules->emulation, "test emulation of a stack");
  EXPECT_EQ(rules->stack.device, "Device #1");
  EXPECT_EQ(rules->stack.architecture, "gfx1010");
  EXPECT_EQ(rules->stack.driver, "drv 1");
  EXPECT_EQ(rules->stack.runtime, "rt 2");
  EXPECT_EQ(rules->stack.library, "lib 3");
  EXPECT_EQ(rules->stack.compute_units, 40);
  EXPECT_EQ(rules->stack.knobs, (std::map<std::string, std::string>{{"MIOPEN_FIND_MODE", "1"}}));

  ASSERT_EQ(rules->rules.size(), 11u);
  const std::vector<std::string> written = {
      "spin when c == 1",
      "block when c == 2",
      "segv when c == 3",
      "abort when c == 4",
      "exit(3) when c == 5",
      "wrong(0.25) when c == 6",
      "error(\"no \\\"kernel\\\" # here\") when c == 7",
      "slow(20) when c == 8",
      "oom when c == 9",
      "unsupported(\"not on Tuesdays\") when c == 10",
      "spin when c == 11 && (h > 32 || w > 32)",
  };
  const std::vector<FaultKind> kinds = {
      FaultKind::kSpin, FaultKind::kBlock,       FaultKind::kSegv,  FaultKind::kAbort,
      FaultKind::kExit, FaultKind::kWrong,       FaultKind::kError, FaultKind::kSlow,
      FaultKind::kOom,  FaultKind::kUnsupported, FaultKind::kSpin};
  for (size_t i = 0; i < written.size(); ++i) {
    EXPECT_EQ(rules->rules[i].ToString(), written[i]);
    EXPECT_EQ(rules->rules[i].fault.kind, kinds[i]) << written[i];
    EXPECT_EQ(rules->rules[i].line, static_cast<int>(11 + i)) << written[i];
  }
  EXPECT_EQ(rules->rules[4].fault.exit_code, 3);
  EXPECT_DOUBLE_EQ(rules->rules[5].fault.wrong_fraction, 0.25);
  EXPECT_EQ(rules->rules[6].fault.message, "no \"kernel\" # here");
  EXPECT_EQ(rules->rules[7].fault.slow_ms, 20);
  EXPECT_EQ(rules->rules[9].fault.message, "not on Tuesdays");
  EXPECT_EQ(rules->Where(rules->rules[10]), "every.rules:21");

  // Every rule's canonical text parses back to the same rule.
  for (const FaultRule& rule : rules->rules) {
    StatusOr<FaultRules> again = ParseFaultRules(rule.ToString(), "again");
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    ASSERT_EQ(again->rules.size(), 1u);
    EXPECT_EQ(again->rules[0].ToString(), rule.ToString());
  }

  // The continued rule reads its later lines.
  Problem p;
  p.c = 11;
  p.h = 4;
  p.w = 33;
  EXPECT_EQ(rules->Match(p, "direct"), &rules->rules[10]);
  p.w = 32;
  EXPECT_EQ(rules->Match(p, "direct"), nullptr);
}

TEST(FaultRulesTest, FirstMatchingRuleWins) {
  StatusOr<FaultRules> rules = ParseFaultRules(
      "error(\"first\") when c == 16\n"
      "spin when c >= 16 && algo == \"gemm\"\n"
      "error(\"last\") when always\n",
      "order.rules");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  const Problem seed = SeedConv(16, 32, 48);
  ASSERT_NE(rules->Match(seed, "gemm"), nullptr);
  EXPECT_EQ(rules->Match(seed, "gemm")->fault.message, "first");
  EXPECT_EQ(rules->Match(SeedConv(32, 64, 48), "gemm")->fault.kind, FaultKind::kSpin);
  EXPECT_EQ(rules->Match(SeedConv(32, 64, 48), "direct")->fault.message, "last");
  EXPECT_EQ(rules->Match(SeedConv(3, 16, 48), "gemm")->line, 3);
}

TEST(FaultRulesTest, EmptyAndCommentOnlyFilesHaveNoRules) {
  for (const char* text : {"", "\n\n", "# nothing\n   # indented comment\n\t\n"}) {
    StatusOr<FaultRules> rules = ParseFaultRules(text, "empty.rules");
    ASSERT_TRUE(rules.ok()) << rules.status().ToString();
    EXPECT_TRUE(rules->rules.empty());
    EXPECT_TRUE(rules->emulation.empty());
    EXPECT_EQ(rules->Match(SeedConv(16, 32, 48), "gemm"), nullptr);
  }
}

TEST(FaultRulesTest, WindowsLineEndingsAndQuotedValues) {
  StatusOr<FaultRules> rules = ParseFaultRules(
      "emulation: \"  padded # text \"  # comment\r\n"
      "stack.knobs.EMPTY: \"\"\r\n"
      "spin when c == 1\r\n",
      "crlf.rules");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  EXPECT_EQ(rules->emulation, "  padded # text ");
  EXPECT_EQ(rules->stack.knobs.at("EMPTY"), "");
  ASSERT_EQ(rules->rules.size(), 1u);
  EXPECT_EQ(rules->rules[0].when.text(), "c == 1");
}

TEST(FaultRulesTest, FaultToStringKeepsShortestFraction) {
  Fault wrong;
  wrong.kind = FaultKind::kWrong;
  wrong.wrong_fraction = 0.1;
  EXPECT_EQ(wrong.ToString(), "wrong(0.1)");
  wrong.wrong_fraction = 1.0;
  EXPECT_EQ(wrong.ToString(), "wrong(1)");
}

// Found by fault_rules_fuzz's round trip (tests/fuzz/corpus/fault_rules/
// regression-wrong-exponent): a fraction below 1e-4 printed as "wrong(1e-05)" (%g), which
// the language, without exponents, reads as a malformed number. Printing is now in fixed
// notation, still the shortest spelling that reads back as the same double.
TEST(FaultRulesTest, SmallFractionsPrintWithoutExponentAndReadBack) {
  Fault wrong;
  wrong.kind = FaultKind::kWrong;
  wrong.wrong_fraction = 0.00001;
  EXPECT_EQ(wrong.ToString(), "wrong(0.00001)");
  for (double fraction : {0.00001, 1e-9, 0.000123456789, 0.3, 5e-324}) {
    wrong.wrong_fraction = fraction;
    const std::string text = wrong.ToString() + " when always";
    StatusOr<FaultRules> back = ParseFaultRules(text, "printed.rules");
    ASSERT_TRUE(back.ok()) << text << ": " << back.status().ToString();
    EXPECT_EQ(back->rules.at(0).fault.wrong_fraction, fraction) << text;
    EXPECT_EQ(back->rules.at(0).ToString(), text);
  }
}

TEST(FaultRulesTest, ApplyToOverridesAndChainsNestedRules) {
  StatusOr<FaultRules> rules = ParseFaultRules(kEveryFault, "every.rules");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  StackFingerprint fp;
  fp.backend = "reference";
  fp.device = "CPU";
  fp.architecture = "x86_64";
  fp.compute_units = 2;
  fp.knobs = {{"OMP_NUM_THREADS", "2"}, {"MIOPEN_FIND_MODE", "3"}};
  rules->ApplyTo(fp);
  EXPECT_EQ(fp.backend, "reference");
  EXPECT_EQ(fp.device, "Device #1");
  EXPECT_EQ(fp.architecture, "gfx1010");
  EXPECT_EQ(fp.driver, "drv 1");
  EXPECT_EQ(fp.runtime, "rt 2");
  EXPECT_EQ(fp.library, "lib 3");
  EXPECT_EQ(fp.compute_units, 40);
  EXPECT_EQ(fp.knobs, (std::map<std::string, std::string>{{"OMP_NUM_THREADS", "2"},
                                                          {"MIOPEN_FIND_MODE", "1"}}));
  EXPECT_EQ(fp.emulation, "test emulation of a stack");
  EXPECT_EQ(fp.fault_rules_digest, rules->digest);

  // Wrapping again keeps both emulation texts and makes a new digest from both.
  StatusOr<FaultRules> outer = ParseFaultRules("emulation: outer\n", "outer.rules");
  ASSERT_TRUE(outer.ok()) << outer.status().ToString();
  outer->ApplyTo(fp);
  EXPECT_EQ(fp.emulation, "test emulation of a stack; outer");
  EXPECT_EQ(fp.fault_rules_digest, Fnv1a64Hex(rules->digest + "+" + outer->digest));
}

TEST(FaultRulesTest, DigestIsFnv1a64) {
  // Published FNV-1a 64 test vectors.
  EXPECT_EQ(Fnv1a64Hex(""), "cbf29ce484222325");
  EXPECT_EQ(Fnv1a64Hex("a"), "af63dc4c8601ec8c");
  EXPECT_EQ(Fnv1a64Hex("foobar"), "85944171f73967e8");
}

const ErrorCase kRulesErrors[] = {
    {"UnknownFault",
     "hang when always",
     {"test.rules:1:1: unknown fault 'hang'; faults are spin, block, segv, abort, "
      "exit(<code 0..255>), wrong(<fraction in (0, 1]>), error(\"<message>\"), "
      "slow(<milliseconds>), oom, unsupported(\"<reason>\")"}},
    {"NotAFault",
     "42 when always",
     {"test.rules:1:1: expected a fault (spin", "or a directive", "got '42'"}},
    {"MissingWhen",
     "spin",
     {"test.rules:1:5: expected 'when' after the fault 'spin', got end of line"}},
    {"WrongKeyword", "spin if c > 1", {"test.rules:1:6: expected 'when'", "got 'if'"}},
    {"MissingPredicate",
     "spin when   # nothing",
     {"test.rules:1:13: expected a predicate after 'when' (write 'always' to match every "
      "problem)"}},
    {"MissingArgument",
     "wrong when always",
     {"test.rules:1:7: 'wrong' needs an argument: wrong(<fraction in (0, 1]>), got 'when'"}},
    {"FractionTooLarge",
     "wrong(1.5) when always",
     {"test.rules:1:7: expected wrong(<fraction in (0, 1]>), got '1.5'"}},
    {"FractionZero", "wrong(0) when always", {"test.rules:1:7:", "got '0'"}},
    {"NegativeSlow",
     "slow(-1) when always",
     {"test.rules:1:6: expected slow(<milliseconds>), got '-'"}},
    {"TooSlow", "slow(3600001) when always", {"at most 3600000 ms"}},
    {"ExitCodeTooLarge", "exit(256) when always", {"expected exit(<code 0..255>), got '256'"}},
    {"ErrorWithoutText",
     "error() when always",
     {"test.rules:1:7: expected error(\"<message>\"), got ')'"}},
    {"ErrorWithEmptyText", "error(\"\") when always", {"got \"\" (it is empty)"}},
    {"ErrorWithNumber",
     "unsupported(3) when always",
     {"expected unsupported(\"<reason>\"), got '3'"}},
    {"UnclosedFault",
     "error(\"x\" when always",
     {"test.rules:1:11: expected ')' to close error(, got 'when'"}},
    {"ArgumentToSpin", "spin() when always", {"test.rules:1:5: 'spin' takes no argument"}},
    {"ErrorOnLaterLine", "\n# comment\nspin when c >\n", {"test.rules:3:14: expected a field"}},
    {"ErrorOnContinuationLine",
     "spin when c > 1 && \\\n   h >\n",
     {"test.rules:2:7: expected a field", "got end of line"}},
    {"ErrorColumnInPredicate", "spin when dtype == nchw", {"test.rules:1:17: cannot compare"}},
    {"BackslashNotLast", "spin when c > 1 \\ && h > 2", {"test.rules:1:17:", "must end its line"}},
    {"BackslashOnLastLine", "spin when c > 1 \\", {"test.rules:1:18:", "no line follows"}},
    {"BackslashBeforeTheFinalNewline",
     "spin when c > 1 \\\n",
     {"test.rules:1:18:", "the next line is blank or a comment"}},
    {"BackslashBeforeACommentLine",
     "spin when c > 1 \\\n# && h > 2\n",
     {"test.rules:1:18:", "the next line is blank or a comment"}},
    {"DuplicateDirective",
     "emulation: a\nemulation: b",
     {"test.rules:2:1: 'emulation' is already set on line 1"}},
    {"DirectiveAfterRule",
     "spin when always\nstack.device: x",
     {"test.rules:2:1: directive 'stack.device' must come before the first rule (line 1)"}},
    {"UnknownDirective",
     "stack.vendor: amd",
     {"test.rules:1:1: unknown directive 'stack.vendor'; directives are emulation, "
      "stack.device, stack.architecture, stack.driver, stack.runtime, stack.library, "
      "stack.compute_units, stack.knobs.<NAME>"}},
    {"BackendIsNotOverridable", "stack.backend: x", {"unknown directive 'stack.backend'"}},
    {"ComputeUnitsNotANumber",
     "stack.compute_units: many",
     {"test.rules:1:22: stack.compute_units needs an integer in 0..2147483648, got 'many'"}},
    {"ComputeUnitsTrailing", "stack.compute_units: 40 CUs", {"got '40 CUs'"}},
    {"EmptyKnobName", "stack.knobs.: 1", {"test.rules:1:13: knob name ''"}},
    {"BadKnobName", "stack.knobs.9X: 1", {"knob name '9X'"}},
    {"EmptyValue",
     "emulation:   # nothing",
     {"test.rules:1:14: expected a value after 'emulation:'"}},
    {"EmptyQuotedEmulation", "emulation: \"\"", {"the emulation text is empty"}},
    {"TextAfterQuotedValue",
     "stack.device: \"a\" b",
     {"test.rules:1:19: expected the end of line after the quoted value of 'stack.device', got "
      "'b'"}},
    {"DirectiveWithoutColon",
     "emulation = x",
     {"test.rules:1:11: expected ':' after directive 'emulation'"}},
    {"UnterminatedStringInFault",
     "error(\"oops) when always",
     {"test.rules:1:7: unterminated string"}},
    {"PrevAloneInARule", "spin when prev == 1", {"test.rules:1:11: 'prev' alone is not a value"}},
    {"PrevOnAContinuationLine",
     "spin when c == 16 && \\\n    prev.zz > 1\n",
     {"test.rules:2:5: unknown identifier 'prev.zz'"}},
    {"DotInAFaultName", "spin.x when always", {"test.rules:1:1: unknown fault 'spin.x'"}},
};

class RulesErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(RulesErrorTest, NamesOriginLineColumnTokenAndExpectation) {
  const ErrorCase& c = GetParam();
  StatusOr<FaultRules> rules = ParseFaultRules(c.text, "test.rules");
  ASSERT_FALSE(rules.ok()) << c.text;
  EXPECT_EQ(rules.status().code(), StatusCode::kInvalidArgument);
  for (const std::string& s : c.substrings) {
    EXPECT_NE(rules.status().message().find(s), std::string::npos)
        << "missing '" << s << "' in: " << rules.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, RulesErrorTest, ::testing::ValuesIn(kRulesErrors),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(FaultRulesTest, EmptyOriginIsNamed) {
  StatusOr<FaultRules> rules = ParseFaultRules("hang when always", "");
  ASSERT_FALSE(rules.ok());
  EXPECT_EQ(rules.status().message().rfind("<rules>:1:1: ", 0), 0u) << rules.status().message();
}

TEST(FaultRulesTest, KindNamesAndFatality) {
  const std::vector<std::pair<FaultKind, bool>> all = {
      {FaultKind::kSpin, true},        {FaultKind::kBlock, true}, {FaultKind::kSegv, true},
      {FaultKind::kAbort, true},       {FaultKind::kExit, true},  {FaultKind::kWrong, false},
      {FaultKind::kError, false},      {FaultKind::kSlow, false}, {FaultKind::kOom, false},
      {FaultKind::kUnsupported, false}};
  const std::vector<std::string> names = {"spin",  "block", "segv", "abort", "exit",
                                          "wrong", "error", "slow", "oom",   "unsupported"};
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(FaultKindName(all[i].first), names[i]);
    EXPECT_EQ(IsFatal(all[i].first), all[i].second) << names[i];
  }
}

}  // namespace
}  // namespace convguard::inject
