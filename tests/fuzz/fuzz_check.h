// tests/fuzz/fuzz_check.h — how a fuzz target reports a broken property, shared by the
// targets of tests/fuzz.
//
// A broken property prints "<target>: <what>: <detail>" and aborts; libFuzzer records the
// abort as a crash and keeps the input that caused it, so a property failure is reported
// and reproduced exactly like a sanitizer finding.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace convguard::fuzz {

[[noreturn]] inline void Fail(std::string_view target, std::string_view what,
                              std::string_view detail) {
  std::fprintf(stderr, "%.*s: %.*s: %.*s\n", static_cast<int>(target.size()), target.data(),
               static_cast<int>(what.size()), what.data(), static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

// Whether `message` starts with `prefix` followed by a decimal line number (and, with
// `column`, ":" and a column number), then ": " — the position every parser error of the
// project leads with. `*line` and `*col` get the numbers.
inline bool StartsWithPosition(std::string_view message, std::string_view prefix, bool column,
                               long* line, long* col) {
  if (message.substr(0, prefix.size()) != prefix) return false;
  size_t i = prefix.size();
  auto number = [&](long* out) {
    const size_t start = i;
    long v = 0;
    while (i < message.size() && message[i] >= '0' && message[i] <= '9' && i - start < 12) {
      v = v * 10 + (message[i] - '0');
      ++i;
    }
    *out = v;
    return i > start;
  };
  if (!number(line)) return false;
  if (column) {
    if (i >= message.size() || message[i] != ':') return false;
    ++i;
    if (!number(col)) return false;
  }
  return message.substr(i, 2) == ": ";
}

}  // namespace convguard::fuzz
