// libFuzzer entry point for problem lists (src/model/problem_list.cc, with the text forms
// under it) and the call sequences written from them (src/model/call_sequence.cc).
//
// Any bytes are a problem list to read. Inputs with an `include` or `--batch=` anywhere are
// skipped: those lines read other files, and a fuzzer must not read the file system; the
// include rules have unit tests (tests/model/problem_list_test.cc). Properties checked on
// every other input:
//   - ParseProblemListText fails only with kInvalidArgument, kOutOfRange or kUnsupported,
//     with a message that starts with "<origin>:<line>: ", the line one of the input's;
//   - every listed problem passes Validate, comes from a line of the input (sources in
//     increasing line order), reads back from its `text`, and names an algorithm made of
//     the allowed characters;
//   - the list written as a sequence (FormatSequenceList, each call with its listed
//     algorithm) reads back as the same canonical problems and algorithms in the same
//     order, with the same SequenceDigest;
//   - the same calls written as MIOpenDriver commands (FormatSequenceDriverCommands) read
//     back as a list of exactly the problems MIOpenDriver can express, in order.
// A broken property aborts with a message, which libFuzzer reports as a crash.
//
// Built by scripts/fuzz.sh; seeds in tests/fuzz/corpus/problem_list/.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/problem.h"
#include "convguard/problem_source.h"
#include "convguard/sequence.h"
#include "convguard/status.h"
#include "convguard/text_forms.h"
#include "fuzz/fuzz_check.h"

namespace {

using namespace convguard;

constexpr std::string_view kTarget = "problem_list_fuzz";
constexpr std::string_view kOrigin = "fuzz.list";
// A list of a few dozen lines reaches everything a longer one does.
constexpr size_t kMaxInputBytes = 16384;

void Check(bool ok, std::string_view what, std::string_view detail = "") {
  if (!ok) fuzz::Fail(kTarget, what, detail);
}

size_t LineCount(std::string_view text) {
  size_t lines = 1;
  for (char ch : text) lines += ch == '\n' ? 1 : 0;
  return lines;
}

bool AllowedAlgorithm(std::string_view a) {
  return std::all_of(a.begin(), a.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.' || ch == ':';
  });
}

// The line number of a source "<origin>:<line>", or 0.
long LineOf(std::string_view source, std::string_view origin) {
  long line = 0, unused = 0;
  const std::string message = std::string(source) + ": ";
  if (!fuzz::StartsWithPosition(message, std::string(origin) + ":", false, &line, &unused))
    return 0;
  return line;
}

void CheckSequenceRoundTrip(const std::vector<ListedProblem>& listed) {
  std::vector<SequenceCall> calls;
  for (const ListedProblem& lp : listed) {
    SequenceCall call;
    call.problem = lp.problem;
    call.algorithm = lp.algorithm;
    call.origin = lp.source;
    calls.push_back(std::move(call));
  }
  const std::string written = FormatSequenceList(calls, {"written by problem_list_fuzz"});
  StatusOr<std::vector<ListedProblem>> back = ParseProblemListText(written, "sequence.list");
  Check(back.ok(), "a written sequence does not read back",
        back.ok() ? "" : back.status().ToString() + "\n" + written);
  Check(back->size() == listed.size(), "a written sequence reads back with another length",
        written);
  std::vector<SequenceCall> back_calls;
  for (size_t i = 0; i < listed.size(); ++i) {
    const ListedProblem& b = (*back)[i];
    Check(ToCanonical(b.problem) == ToCanonical(listed[i].problem) &&
              b.algorithm == listed[i].algorithm,
          "a written sequence reads back as other calls",
          listed[i].source + ": " + ToCanonical(listed[i].problem) + " " + listed[i].algorithm +
              " -> " + ToCanonical(b.problem) + " " + b.algorithm);
    SequenceCall call;
    call.problem = b.problem;
    call.algorithm = b.algorithm;
    back_calls.push_back(std::move(call));
  }
  Check(SequenceDigest(calls) == SequenceDigest(back_calls),
        "a written sequence reads back with another digest", written);

  // As MIOpenDriver commands: a call the driver cannot express is a comment.
  const std::string commands = FormatSequenceDriverCommands(calls, {"fuzz"});
  StatusOr<std::vector<ListedProblem>> driver = ParseProblemListText(commands, "driver.list");
  Check(driver.ok(), "written driver commands do not read back as a list",
        driver.ok() ? "" : driver.status().ToString() + "\n" + commands);
  size_t at = 0;
  for (const SequenceCall& c : calls) {
    if (!ToMiopenDriver(c.problem).ok()) continue;
    Check(at < driver->size() && ToCanonical((*driver)[at].problem) == ToCanonical(c.problem),
          "written driver commands read back as other problems", commands);
    ++at;
  }
  Check(at == driver->size(), "written driver commands read back with extra problems", commands);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInputBytes) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (text.find("include") != std::string_view::npos ||
      text.find("--batch=") != std::string_view::npos) {
    return 0;
  }
  StatusOr<std::vector<ListedProblem>> listed = ParseProblemListText(text, kOrigin);
  if (!listed.ok()) {
    const Status& s = listed.status();
    Check(s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kOutOfRange ||
              s.code() == StatusCode::kUnsupported,
          "a list fails with another code", s.ToString());
    const long line = LineOf(s.message(), kOrigin);
    Check(line >= 1 && static_cast<size_t>(line) <= LineCount(text),
          "a list error does not start with '<origin>:<line>: ' naming a line of the input",
          s.message());
    return 0;
  }
  long previous = 0;
  for (const ListedProblem& lp : *listed) {
    const std::string canonical = ToCanonical(lp.problem);
    Check(Validate(lp.problem).ok(), "a listed problem fails Validate", canonical);
    const long line = LineOf(lp.source, kOrigin);
    Check(line > previous && static_cast<size_t>(line) <= LineCount(text),
          "listed problems do not come from increasing lines of the input", lp.source);
    Check(lp.source == std::string(kOrigin) + ":" + std::to_string(line),
          "a source that is not '<origin>:<line>'", lp.source);
    previous = line;
    StatusOr<Problem> again = ParseProblem(lp.text);
    Check(again.ok() && *again == lp.problem, "a listed problem's text does not read back",
          lp.text);
    Check(AllowedAlgorithm(lp.algorithm), "an algorithm with a character not allowed",
          lp.algorithm);
  }
  CheckSequenceRoundTrip(*listed);
  return 0;
}
