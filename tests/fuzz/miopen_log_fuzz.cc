// libFuzzer entry point for the MIOpen log reader (src/model/miopen_log.cc).
//
// Any bytes are a log to read: the reader must not crash, throw or hang, and what it
// returns must hold together. Properties checked on every input:
//   - ParseMiopenLog succeeds exactly when LooksLikeMiopenLog is true, and fails only
//     with kInvalidArgument;
//   - every line is counted once: lines == calls + unread + skipped, and the other
//     driver commands are among the skipped lines;
//   - every problem passes Validate, is distinct, and reads back as itself from its
//     canonical text (ParseProblem) and from its driver_args (as MIOpenDriver arguments);
//   - every call names a problem, lines increase, and the Find and execution counts of
//     the problems add up to the calls;
//   - kept texts are printable ASCII of bounded size.
// A broken property aborts with a message, which libFuzzer reports as a crash.
//
// Build with clang and libFuzzer (not part of the CMake build yet): compile this file with
// -fsanitize=fuzzer,address,undefined and -Iinclude, and link the model, text and core
// layers (or compile src/model/miopen_log.cc, src/text/*.cc, src/core/problem.cc and
// src/core/status.cc with it, adding -I<build>/layers/model for their private includes).
// Seeds: tests/fuzz/corpus/miopen_log/.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "convguard/problem.h"
#include "convguard/problem_source.h"
#include "convguard/status.h"
#include "convguard/text_forms.h"

namespace {

using namespace convguard;

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "miopen_log_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

void Check(bool ok, const char* what, const std::string& detail = "") {
  if (!ok) Fail(what, detail);
}

bool PrintableAscii(std::string_view s) {
  for (char c : s) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte > 0x7e) return false;
  }
  return true;
}

void CheckLog(const MiopenLog& log) {
  Check(log.lines == static_cast<int64_t>(log.calls.size() + log.unread.size()) + log.skipped_lines,
        "lines != calls + unread + skipped");
  Check(log.other_driver_commands >= 0 && log.other_driver_commands <= log.skipped_lines,
        "other driver commands not among the skipped lines");
  std::set<std::string> distinct;
  int64_t counted = 0;
  for (const LoggedProblem& lp : log.problems) {
    const std::string canonical = ToCanonical(lp.problem);
    Check(Validate(lp.problem).ok(), "a returned problem fails Validate", canonical);
    Check(distinct.insert(canonical).second, "a problem is listed twice", canonical);
    StatusOr<Problem> back = ParseProblem(canonical);
    Check(back.ok() && *back == lp.problem, "canonical text does not read back", canonical);
    StatusOr<Problem> args = ParseProblem(lp.driver_args, TextForm::kMiopenDriver);
    Check(args.ok() && *args == lp.problem, "driver_args do not read back", lp.driver_args);
    Check(PrintableAscii(lp.driver_args), "driver_args not printable", lp.driver_args);
    Check(lp.first_line >= 1 && lp.first_line <= log.lines, "first_line out of range");
    Check(lp.find_lines >= 0 && lp.run_lines >= 0 && lp.find_lines + lp.run_lines >= 1,
          "a problem without commands", canonical);
    counted += lp.find_lines + lp.run_lines;
  }
  Check(counted == static_cast<int64_t>(log.calls.size()), "find + run != calls");
  int64_t previous = 0;
  for (const LoggedCall& call : log.calls) {
    Check(call.problem < log.problems.size(), "a call names no problem");
    Check(call.line > previous && call.line <= log.lines, "call lines do not increase");
    previous = call.line;
  }
  previous = 0;
  for (const LogUnreadLine& u : log.unread) {
    Check(u.code != StatusCode::kOk, "an unread line with an OK code");
    Check(u.line > previous && u.line <= log.lines, "unread lines do not increase");
    Check(!u.reason.empty(), "an unread line without a reason");
    Check(u.text.size() <= kMaxLogTextBytes && u.reason.size() <= kMaxLogTextBytes,
          "an unread line keeps too much");
    Check(PrintableAscii(u.text) && PrintableAscii(u.reason), "unread text not printable", u.text);
    previous = u.line;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool looks = LooksLikeMiopenLog(text);
  StatusOr<MiopenLog> log = ParseMiopenLog(text, "fuzz.log");
  Check(log.ok() == looks, "ParseMiopenLog and LooksLikeMiopenLog disagree",
        log.ok() ? "" : log.status().message());
  if (!log.ok()) {
    Check(log.status().code() == StatusCode::kInvalidArgument, "failed with another code",
          log.status().ToString());
    return 0;
  }
  CheckLog(*log);
  return 0;
}
