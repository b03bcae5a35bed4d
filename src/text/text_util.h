// text/text_util.h — private helpers shared by the four text-form parsers and printers.
//
// Everything here is header-only (inline) so that the four form files can share one
// tokenizer and one number parser without another entry in CMakeLists.txt. Nothing in
// this header is part of the library API; include only from src/text/ and the tests.
//
// Every error built here starts with "<form>: " so that a message always says which
// form's rules rejected the text, and quotes the offending token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/problem.h"
#include "convguard/status.h"

namespace convguard::text_internal {

// The largest number any form accepts. It is Validate's per-field ceiling, so a larger
// number can never describe a valid problem; capping while parsing also keeps the
// derived-size arithmetic in the parsers (products of two fields) far from int64 overflow.
inline constexpr int64_t kMaxNumber = int64_t{1} << 31;

inline std::string Quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  out += s;
  out += '\'';
  return out;
}

inline Status FormError(StatusCode code, std::string_view form, std::string_view message) {
  std::string m(form);
  m += ": ";
  m += message;
  return Status(code, std::move(m));
}
inline Status Invalid(std::string_view form, std::string_view message) {
  return FormError(StatusCode::kInvalidArgument, form, message);
}
inline Status Unsupported(std::string_view form, std::string_view message) {
  return FormError(StatusCode::kUnsupported, form, message);
}

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }
inline bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
inline bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}
inline bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

inline std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Splits on every `sep` and keeps empty pieces, so that callers can reject "a__b" or a
// trailing separator instead of silently skipping it.
inline std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep, start);
    if (at == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, at - start));
    start = at + 1;
  }
}

// Splits on runs of whitespace; command lines may be spaced any way.
inline std::vector<std::string_view> SplitWhitespace(std::string_view s) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsSpace(s[i])) ++i;
    const size_t start = i;
    while (i < s.size() && !IsSpace(s[i])) ++i;
    if (i > start) words.push_back(s.substr(start, i - start));
  }
  return words;
}

// Accumulates the digits s[*pos..] into a number, stopping at the first non-digit.
// Returns false (and leaves *value unspecified) when the value exceeds kMaxNumber.
// REQUIRES: s[*pos] is a digit.
inline bool AccumulateDigits(std::string_view s, size_t* pos, int64_t* value) {
  int64_t v = 0;
  bool fits = true;
  while (*pos < s.size() && IsDigit(s[*pos])) {
    // Keep scanning after the ceiling is passed so the caller can quote the whole number.
    if (fits) {
      v = v * 10 + (s[*pos] - '0');
      if (v > kMaxNumber) fits = false;
    }
    ++*pos;
  }
  *value = v;
  return fits;
}

// Parses all of `digits` as a non-negative decimal number in [0, kMaxNumber].
// `what` names where the number came from, e.g. "token 'c16'" or "flag '-n'".
inline StatusOr<int64_t> ParseCount(std::string_view form, std::string_view what,
                                    std::string_view digits) {
  if (digits.empty()) return Invalid(form, std::string(what) + " has no number");
  if (digits.front() == '-' && digits.size() > 1 && IsDigit(digits[1])) {
    return Invalid(form, std::string(what) + ": negative number " + Quote(digits) +
                             " is not allowed (sizes are >= 0)");
  }
  if (!IsDigit(digits.front())) {
    return Invalid(form, std::string(what) + ": " + Quote(digits) +
                             " is not a decimal number (digits 0-9 only)");
  }
  size_t pos = 0;
  int64_t value = 0;
  const bool fits = AccumulateDigits(digits, &pos, &value);
  if (pos != digits.size()) {
    return Invalid(form, std::string(what) + ": " + Quote(digits) +
                             " is not a decimal number (unexpected " + Quote(digits.substr(pos)) +
                             " after the digits)");
  }
  if (!fits) {
    return FormError(StatusCode::kOutOfRange, form,
                     std::string(what) + ": " + Quote(digits) + " is too large (at most " +
                         std::to_string(kMaxNumber) + ")");
  }
  return value;
}

// Parses "AxBx..." into its numbers and checks how many there are.
// `allowed_counts` lists the accepted numbers of parts, e.g. {1, 2} or {1, 2, 4}.
inline StatusOr<std::vector<int64_t>> ParseCountList(std::string_view form, std::string_view what,
                                                     std::string_view text,
                                                     std::initializer_list<size_t> allowed_counts,
                                                     std::string_view arity_hint) {
  const std::vector<std::string_view> parts = Split(text, 'x');
  bool arity_ok = false;
  for (size_t n : allowed_counts) arity_ok = arity_ok || parts.size() == n;
  if (!arity_ok) {
    return Invalid(form, std::string(what) + ": " + Quote(text) + " has " +
                             std::to_string(parts.size()) + " 'x'-separated values; " +
                             std::string(arity_hint));
  }
  std::vector<int64_t> values;
  values.reserve(parts.size());
  for (std::string_view part : parts) {
    CG_ASSIGN_OR_RETURN(int64_t v, ParseCount(form, what, part));
    values.push_back(v);
  }
  return values;
}

// Runs Validate and prefixes its message with the form, so a parse error that is really
// a shape error still says which text it came from.
inline Status ValidateFor(std::string_view form, const Problem& p) {
  return Validate(p).WithContext(form);
}

inline bool HasSymmetricPads(const Problem& p) {
  return p.pad_top == p.pad_bottom && p.pad_left == p.pad_right;
}

// Shared by the two MIOpen forms: MIOpen describes padding as one value per spatial
// dimension, applied on both sides.
inline Status RequireSymmetricPads(std::string_view form, const Problem& p) {
  if (HasSymmetricPads(p)) return Status::Ok();
  return Unsupported(form,
                     "MIOpen has one padding value per dimension (applied to both sides); "
                     "pads top/left/bottom/right = " +
                         std::to_string(p.pad_top) + "/" + std::to_string(p.pad_left) + "/" +
                         std::to_string(p.pad_bottom) + "/" + std::to_string(p.pad_right) +
                         " are asymmetric");
}

// The forms that write the output size (MIOpen key, benchdnn) must not print one that
// their parser refuses: an output size is derived, not a field, and padding can make it
// exceed kMaxNumber (up to about 3 * 2^31) for a problem that passes Validate. Such a
// problem is one the form cannot express.
inline Status RequireReadableOutputSize(std::string_view form, const Problem& p) {
  if (p.out_h() <= kMaxNumber && p.out_w() <= kMaxNumber) return Status::Ok();
  return Unsupported(form, "output size " + std::to_string(p.out_h()) + "x" +
                               std::to_string(p.out_w()) + " exceeds " +
                               std::to_string(kMaxNumber) +
                               ", the largest number this form's text may hold (the canonical "
                               "form does not write output sizes)");
}

// The per-form parsers behind ParseProblem(text, form). Each returns errors whose message
// starts with the form name (see TextFormName).
StatusOr<Problem> ParseCanonical(std::string_view text);
StatusOr<Problem> ParseMiopenKey(std::string_view text);
StatusOr<Problem> ParseMiopenDriver(std::string_view text);
StatusOr<Problem> ParseBenchdnn(std::string_view text);

// True for a token that the canonical grammar could contain (a keyword such as "f32", or
// a field letter followed by digits and 'x'), whether or not its value is valid. Used by
// DetectTextForm.
bool LooksLikeCanonicalToken(std::string_view token);

}  // namespace convguard::text_internal
