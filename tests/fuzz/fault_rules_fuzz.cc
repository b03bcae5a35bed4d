// libFuzzer entry point for the fault-rules language (src/backends/inject: the lexer, the
// predicate parser and evaluator, the rules-file parser).
//
// Any bytes are a rules file, and a lone predicate, to read. Parsing and evaluation must
// not crash, throw or hang; an integer overflow while evaluating is undefined behaviour,
// which the sanitizers of the fuzz build report. Properties checked on every input:
//   - ParseFaultRules fails only with kInvalidArgument "<origin>:<line>:<column>: ...",
//     the line one of the file's and the column within it (or just past its end);
//     Predicate::Parse fails only with kInvalidArgument "column <c>: ...";
//   - every parsed rule prints (FaultRule::ToString) to a one-rule file that parses to a
//     rule printing the same text, with the same fault, that matches exactly the same
//     (problem, algorithm, device, call history) samples; its predicate's text, read by
//     Predicate::Parse, does too;
//   - a parsed lone predicate's text reads back as a predicate of the same text that
//     matches the same samples;
//   - FaultRules::Match returns the first rule whose predicate matches.
// The samples include problems that were never validated (zero, negative and 2^63 - 1
// fields) and histories at the extremes, as the evaluator must take them.
// A broken property aborts with a message, which libFuzzer reports as a crash.
//
// Built by scripts/fuzz.sh; seeds in tests/fuzz/corpus/fault_rules/.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "backends/inject/fault_rules.h"
#include "convguard/problem.h"
#include "convguard/stack.h"
#include "convguard/status.h"
#include "fuzz/fuzz_check.h"

namespace {

using namespace convguard;
using namespace convguard::inject;

constexpr std::string_view kTarget = "fault_rules_fuzz";
constexpr std::string_view kOrigin = "fuzz.rules";
// Rules files are short; a longer input only repeats the work of its lines.
constexpr size_t kMaxInputBytes = 4096;

void Check(bool ok, std::string_view what, std::string_view detail = "") {
  if (!ok) fuzz::Fail(kTarget, what, detail);
}

Problem SeedConv() {  // Conv2d(16, 32, 3, padding=1) at 48x48
  Problem p;
  p.c = 16;
  p.h = p.w = 48;
  p.k = 32;
  p.r = p.s = 3;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
  return p;
}

Problem OddConv() {  // every field different, asymmetric, grouped
  Problem p;
  p.n = 2;
  p.c = 12;
  p.h = 7;
  p.w = 9;
  p.k = 6;
  p.r = 2;
  p.s = 3;
  p.pad_top = 0;
  p.pad_left = 1;
  p.pad_bottom = 2;
  p.pad_right = 0;
  p.stride_h = 2;
  p.dilation_w = 2;
  p.groups = 3;
  p.bias = true;
  p.dtype = DataType::kF16;
  p.layout = Layout::kNHWC;
  p.direction = Direction::kBackwardData;
  return p;
}

Problem CeilingConv() {  // every field at Validate's ceiling: products overflow
  constexpr int64_t kTop = int64_t{1} << 31;
  Problem p;
  p.n = p.c = p.h = p.w = p.k = p.r = p.s = kTop;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = kTop;
  p.stride_h = p.stride_w = p.dilation_h = p.dilation_w = kTop;
  p.groups = 1;
  p.dtype = DataType::kBF16;
  p.direction = Direction::kBackwardWeights;
  return p;
}

Problem NeverValidated() {  // what a caller that skipped Validate may hand over
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  Problem p;
  p.n = 0;
  p.c = -1;
  p.h = kMax;
  p.w = kMin;
  p.k = 0;
  p.r = kMin;
  p.s = kMax;
  p.pad_top = kMax;
  p.pad_left = -3;
  p.pad_bottom = kMax;
  p.pad_right = kMin;
  p.stride_h = 0;
  p.stride_w = -1;
  p.dilation_h = kMax;
  p.dilation_w = kMin;
  p.groups = 0;
  return p;
}

struct Sample {
  const Problem* problem;
  std::string_view algorithm;
  int device;
  CallHistory history;
};

class Samples {
 public:
  Samples() {
    const Problem* problems[] = {&seed_, &odd_, &ceiling_, &wild_};
    const CallHistory histories[] = {
        {},
        {2, &seed_, "gemm"},
        {1000, &wild_, "winograd"},
        {std::numeric_limits<int64_t>::max(), &ceiling_, ""},
    };
    struct Run {
      std::string_view algorithm;
      int device;
    };
    const Run runs[] = {{"gemm", 0}, {"", 1}, {"winograd", 7}};
    for (const Problem* p : problems) {
      for (const CallHistory& h : histories) {
        for (const Run& r : runs) all_.push_back({p, r.algorithm, r.device, h});
      }
    }
  }
  const std::vector<Sample>& all() const { return all_; }

 private:
  Problem seed_ = SeedConv(), odd_ = OddConv(), ceiling_ = CeilingConv(), wild_ = NeverValidated();
  std::vector<Sample> all_;
};

const Samples& TheSamples() {
  static const Samples* samples = new Samples();
  return *samples;
}

// Which samples `when` matches, one bit each.
std::vector<bool> MatchPattern(const Predicate& when) {
  std::vector<bool> out;
  for (const Sample& s : TheSamples().all()) {
    out.push_back(when.Matches(*s.problem, s.algorithm, s.device, s.history));
  }
  return out;
}

void CheckSamePredicate(const Predicate& a, const Predicate& b, std::string_view what) {
  Check(a.text() == b.text(), what, "text '" + a.text() + "' reads back as '" + b.text() + "'");
  Check(a.uses_device() == b.uses_device() && a.uses_history() == b.uses_history(), what,
        "'" + a.text() + "' reads other inputs after reading back");
  Check(MatchPattern(a) == MatchPattern(b), what,
        "'" + a.text() + "' matches other samples after reading back");
}

size_t LineCount(std::string_view text) {
  size_t lines = 1;
  for (char ch : text) lines += ch == '\n' ? 1 : 0;
  return lines;
}

std::string_view LineAt(std::string_view text, size_t line) {
  size_t start = 0;
  for (size_t i = 1; i < line; ++i) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) return {};
    start = nl + 1;
  }
  return text.substr(start, text.find('\n', start) - start);
}

void CheckFileError(const Status& s, std::string_view text) {
  Check(s.code() == StatusCode::kInvalidArgument, "a rules file fails with another code",
        s.ToString());
  long line = 0, col = 0;
  Check(fuzz::StartsWithPosition(s.message(), std::string(kOrigin) + ":", true, &line, &col),
        "a rules-file error does not start with origin:line:column", s.message());
  Check(line >= 1 && static_cast<size_t>(line) <= LineCount(text),
        "a rules-file error names a line the file does not have", s.message());
  Check(col >= 1 && static_cast<size_t>(col) <= LineAt(text, line).size() + 1,
        "a rules-file error names a column outside its line", s.message());
}

void CheckRule(const FaultRule& rule) {
  const std::string printed = rule.ToString();
  StatusOr<FaultRules> again = ParseFaultRules(printed, "printed");
  Check(again.ok(), "a printed rule does not parse",
        printed + ": " + (again.ok() ? "" : again.status().ToString()));
  Check(again->rules.size() == 1, "a printed rule reads as several", printed);
  const FaultRule& back = again->rules.front();
  Check(back.ToString() == printed, "a printed rule prints differently after reading back",
        printed + " -> " + back.ToString());
  Check(back.fault.ToString() == rule.fault.ToString() && back.fault.kind == rule.fault.kind &&
            back.fault.wrong_fraction == rule.fault.wrong_fraction &&
            back.fault.slow_ms == rule.fault.slow_ms &&
            back.fault.exit_code == rule.fault.exit_code &&
            back.fault.message == rule.fault.message,
        "a printed rule reads back with another fault", printed);
  CheckSamePredicate(rule.when, back.when, "a printed rule reads back as another predicate");

  StatusOr<Predicate> alone = Predicate::Parse(rule.when.text());
  Check(alone.ok(), "a rule's predicate text does not parse alone",
        rule.when.text() + ": " + (alone.ok() ? "" : alone.status().ToString()));
  CheckSamePredicate(rule.when, *alone, "a rule's predicate reads differently alone");
}

void CheckRules(const FaultRules& rules) {
  for (const FaultRule& rule : rules.rules) {
    Check(rule.line >= 1, "a rule without a line", rule.ToString());
    CheckRule(rule);
  }
  for (const Sample& s : TheSamples().all()) {
    const FaultRule* first = nullptr;
    for (const FaultRule& rule : rules.rules) {
      if (rule.when.Matches(*s.problem, s.algorithm, s.device, s.history)) {
        first = &rule;
        break;
      }
    }
    Check(rules.Match(*s.problem, s.algorithm, s.device, s.history) == first,
          "Match does not return the first matching rule");
  }
  // The stack a rules file makes: must not fail for any directive it accepted.
  StackFingerprint fp;
  fp.backend = "reference";
  rules.ApplyTo(fp, 1);
  Check(fp.fault_rules_digest.size() == 16, "a digest that is not 16 hex digits",
        fp.fault_rules_digest);
}

void CheckLonePredicate(std::string_view text) {
  StatusOr<Predicate> p = Predicate::Parse(text);
  if (!p.ok()) {
    Check(p.status().code() == StatusCode::kInvalidArgument, "a predicate fails with another code",
          p.status().ToString());
    long col = 0, unused = 0;
    Check(fuzz::StartsWithPosition(p.status().message(), "column ", false, &col, &unused),
          "a predicate error does not start with 'column C: '", p.status().message());
    Check(col >= 1 && static_cast<size_t>(col) <= text.size() + 1,
          "a predicate error names a column outside the text", p.status().message());
    return;
  }
  StatusOr<Predicate> again = Predicate::Parse(p->text());
  Check(again.ok(), "a predicate's text does not parse again",
        p->text() + ": " + (again.ok() ? "" : again.status().ToString()));
  CheckSamePredicate(*p, *again, "a predicate's text reads back as another predicate");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInputBytes) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  StatusOr<FaultRules> rules = ParseFaultRules(text, std::string(kOrigin));
  if (rules.ok()) {
    CheckRules(*rules);
  } else {
    CheckFileError(rules.status(), text);
  }
  CheckLonePredicate(text);
  return 0;
}
