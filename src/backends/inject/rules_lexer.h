// backends/inject/rules_lexer.h — the tokens of the fault-rules language, and the error
// format every stage of its parsing shares.
//
// A rules file is tokenized one physical line at a time: a rule's continuation lines are
// appended to the same token vector by the caller (rules_file_parser.cc), so the lexer
// never needs to know about rules, directives or other lines. Tokens keep their line and
// byte offsets so that any later stage can point at the exact column it rejects.
//
// Private to src/backends/inject: nothing here is part of the library API.
//
// Thread-safety: values and pure functions of their arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/status.h"

namespace convguard::inject::rules_internal {

enum class Tok { kIdent, kInt, kDecimal, kString, kPunct, kEnd };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;   // spelling; for kString the decoded contents
  int64_t value = 0;  // kInt
  int line = 0;       // 1-based physical line (0 when parsing a lone predicate)
  size_t begin = 0;   // byte offsets of the spelling in its line
  size_t end = 0;
};

// The token as an error message quotes it: 'c', "text", or "end of line".
std::string Describe(const Token& t);

// Identifier characters; the file parser also uses them for directive keys and knob names.
bool IsIdentStart(char ch);
bool IsIdentChar(char ch);

// Formats "<origin>:<line>:<column>: <message>", or "column <c>: <message>" for a lone
// predicate (no origin).
Status ErrorAt(std::string_view origin, int line, size_t offset, const std::string& message);

// Decodes a "string" starting at text[*pos] == '"'; \" and \\ are the escapes. Advances
// *pos past the closing quote. Shared with quoted directive values, which must read the
// same way as strings in predicates.
Status DecodeString(std::string_view text, size_t* pos, std::string* out, std::string_view origin,
                    int line);

// Splits one physical line into tokens, appended to *out, stopping at a '#' comment. A '\'
// as the last token means the rule continues on the next line (*continued); it is not a
// token.
// An identifier may be dotted (prev.c): one kIdent token spelling the whole name.
Status TokenizeLine(std::string_view text, int line, std::string_view origin,
                    std::vector<Token>* out, bool* continued);

}  // namespace convguard::inject::rules_internal
