// backends/inject/rules_lexer.cc — tokenizing one line of a rules file or a lone predicate.
//
// Thread-safety: pure functions of their arguments.
#include "backends/inject/rules_lexer.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <utility>

namespace convguard::inject::rules_internal {

namespace {

bool IsDigit(char ch) { return ch >= '0' && ch <= '9'; }
bool IsSpace(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

}  // namespace

std::string Describe(const Token& t) {
  switch (t.kind) {
    case Tok::kEnd: return "end of line";
    case Tok::kString: return "\"" + t.text + "\"";
    default: return "'" + t.text + "'";
  }
}

bool IsIdentStart(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}
bool IsIdentChar(char ch) { return IsIdentStart(ch) || IsDigit(ch); }

Status ErrorAt(std::string_view origin, int line, size_t offset, const std::string& message) {
  if (origin.empty()) {
    return Status::InvalidArgument("column " + std::to_string(offset + 1) + ": " + message);
  }
  return Status::InvalidArgument(std::string(origin) + ":" + std::to_string(line) + ":" +
                                 std::to_string(offset + 1) + ": " + message);
}

Status DecodeString(std::string_view text, size_t* pos, std::string* out, std::string_view origin,
                    int line) {
  const size_t start = *pos;
  size_t i = start + 1;
  out->clear();
  while (i < text.size() && text[i] != '"') {
    if (text[i] == '\\') {
      if (i + 1 < text.size() && (text[i + 1] == '"' || text[i + 1] == '\\')) {
        out->push_back(text[i + 1]);
        i += 2;
        continue;
      }
      return ErrorAt(origin, line, i, "unknown escape in string; only \\\" and \\\\ are allowed");
    }
    out->push_back(text[i++]);
  }
  if (i >= text.size()) return ErrorAt(origin, line, start, "unterminated string: missing '\"'");
  *pos = i + 1;
  return Status::Ok();
}

Status TokenizeLine(std::string_view text, int line, std::string_view origin,
                    std::vector<Token>* out, bool* continued) {
  static constexpr std::array<std::string_view, 6> kTwoChar = {"&&", "||", "==", "!=", "<=", ">="};
  *continued = false;
  size_t backslash = 0;
  size_t i = 0;
  while (i < text.size()) {
    const char ch = text[i];
    if (IsSpace(ch)) {
      ++i;
      continue;
    }
    if (ch == '#') break;
    if (*continued) {
      return ErrorAt(origin, line, backslash,
                     "'\\' continues a rule on the next line and must end its line");
    }
    Token t;
    t.line = line;
    t.begin = i;
    if (ch == '\\') {
      *continued = true;
      backslash = i++;
      continue;
    }
    if (IsIdentStart(ch)) {
      while (i < text.size() && IsIdentChar(text[i])) ++i;
      // A dotted name (prev.c) is one identifier. Which prefixes exist is the parser's
      // business, so that 'prev.groupz' or 'prv.c' get its "unknown identifier" message
      // with a suggestion, like any other misspelt name.
      while (i < text.size() && text[i] == '.') {
        if (i + 1 >= text.size() || !IsIdentStart(text[i + 1])) {
          const std::string got = i + 1 >= text.size()   ? "end of line"
                                  : IsSpace(text[i + 1]) ? "a space"
                                                         : "'" + std::string(1, text[i + 1]) + "'";
          return ErrorAt(origin, line, i + 1,
                         "expected a name after '" +
                             std::string(text.substr(t.begin, i + 1 - t.begin)) +
                             "' (as in prev.c), got " + got);
        }
        ++i;
        while (i < text.size() && IsIdentChar(text[i])) ++i;
      }
      t.kind = Tok::kIdent;
      t.text = std::string(text.substr(t.begin, i - t.begin));
    } else if (IsDigit(ch)) {
      while (i < text.size() && IsDigit(text[i])) ++i;
      t.kind = Tok::kInt;
      if (i + 1 < text.size() && text[i] == '.' && IsDigit(text[i + 1])) {
        ++i;
        while (i < text.size() && IsDigit(text[i])) ++i;
        t.kind = Tok::kDecimal;
      }
      if (i < text.size() && (IsIdentChar(text[i]) || text[i] == '.')) {
        size_t j = i;
        while (j < text.size() && (IsIdentChar(text[j]) || text[j] == '.')) ++j;
        return ErrorAt(origin, line, t.begin,
                       "malformed number '" + std::string(text.substr(t.begin, j - t.begin)) + "'");
      }
      t.text = std::string(text.substr(t.begin, i - t.begin));
      if (t.kind == Tok::kInt) {
        const auto [ptr, ec] =
            std::from_chars(t.text.data(), t.text.data() + t.text.size(), t.value);
        if (ec != std::errc()) {
          return ErrorAt(origin, line, t.begin,
                         "integer '" + t.text + "' is too large; the largest is " +
                             std::to_string(std::numeric_limits<int64_t>::max()));
        }
      }
    } else if (ch == '"') {
      CG_RETURN_IF_ERROR(DecodeString(text, &i, &t.text, origin, line));
      t.kind = Tok::kString;
    } else {
      t.kind = Tok::kPunct;
      const std::string_view two = text.substr(i, 2);
      if (std::find(kTwoChar.begin(), kTwoChar.end(), two) != kTwoChar.end()) {
        t.text = std::string(two);
        i += 2;
      } else if (std::string_view("()<>!+-*/%,").find(ch) != std::string_view::npos) {
        t.text = std::string(1, ch);
        ++i;
      } else if (ch == '=' || ch == '&' || ch == '|') {
        return ErrorAt(origin, line, i,
                       std::string("unexpected '") + ch + "'; did you mean '" + ch + ch + "'?");
      } else {
        const bool printable =
            static_cast<unsigned char>(ch) >= 0x20 && static_cast<unsigned char>(ch) < 0x7f;
        return ErrorAt(origin, line, i,
                       printable
                           ? std::string("unexpected character '") + ch + "'"
                           : "unexpected byte " + std::to_string(static_cast<unsigned char>(ch)));
      }
    }
    t.end = i;
    out->push_back(std::move(t));
  }
  return Status::Ok();
}

}  // namespace convguard::inject::rules_internal
