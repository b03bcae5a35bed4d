// backends/inject/rules_parser.h — the predicate parser: the tokens of one rule (or one
// lone predicate) in, a typed expression tree (rules_expression.h) out.
//
// Recursive descent. Precedence, from loosest: ||, &&, == !=, < <= > >=, + -, * / %,
// unary ! - +. Comparisons do not chain, and values are typed (dtype, layout, direction,
// string, integer): both are checked here, while parsing, so that a mistake in a rules
// file is reported with its line and column instead of silently never matching, and so
// that evaluation never meets a type error.
//
// The file parser (rules_file_parser.cc) also reads a rule's fault through this class,
// token by token, so that the fault and its predicate share one token stream and one
// error format. Errors are kInvalidArgument: "<origin>:<line>:<column>: ...", or
// "column <c>: ..." for a lone predicate (empty origin).
//
// Depth is bounded, so that no text can exhaust the stack: the descent recurses once per
// level of parentheses, function arguments and prefix operators (at most kMaxNesting),
// and evaluating, inspecting and destroying a tree recurse once per level of it (at most
// kMaxHeight, which a chain of binary operators, built by loops, reaches too). A text
// beyond either is an error at the token that passes the bound.
//
// Private to src/backends/inject: nothing here is part of the library API.
//
// Thread-safety: a RulesParser is used by one thread and discarded; the trees it returns
// are immutable.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/inject/fault_rules.h"
#include "backends/inject/rules_expression.h"
#include "backends/inject/rules_lexer.h"
#include "convguard/status.h"

namespace convguard::inject {

// Named in Predicate's friend declaration, hence in convguard::inject itself.
class RulesParser {
 public:
  using Token = rules_internal::Token;
  using Node = Predicate::Node;

  // `tokens` are those of one rule; an end token is added at (end_line, end_offset), the
  // column that "got end of line" messages point at.
  RulesParser(std::vector<Token> tokens, std::string_view origin, int end_line, size_t end_offset);

  // Far beyond any predicate people write (a few levels of parentheses, chains of a few
  // dozen terms), far below what exhausts a thread's stack.
  static constexpr int kMaxNesting = 100;
  static constexpr size_t kMaxHeight = 1000;

  // Predicate's constructor is private to the parser.
  static Predicate MakePredicate(std::unique_ptr<const Node> root, std::string text);

  const Token& Peek() const { return tokens_[pos_]; }
  const Token& Take() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool PeekPunct(std::string_view p) const {
    return Peek().kind == rules_internal::Tok::kPunct && Peek().text == p;
  }
  size_t position() const { return pos_; }

  Status ErrorAt(const Token& t, const std::string& message) const;
  Status Expected(std::string_view what) const;
  Status ExpectPunct(std::string_view p, std::string_view context);

  // The rest of the tokens as one predicate, which must be an integer (truth) value.
  StatusOr<std::unique_ptr<const Node>> ParsePredicate();

  // The source of tokens [first, last] as written (lines joined by one space).
  std::string SourceText(size_t first, size_t last,
                         const std::vector<std::string_view>& lines) const;

  size_t last_real_token() const { return tokens_.size() >= 2 ? tokens_.size() - 2 : 0; }

 private:
  using NodeOr = StatusOr<std::unique_ptr<Node>>;

  static std::string Example(rules_internal::Type t);
  std::string Quote(const Node& n) const;
  std::unique_ptr<Node> Make(rules_internal::Op op, rules_internal::Type type, size_t first,
                             size_t last);
  // A node over `a` (and `b`), or an error at `at` when it would be taller than kMaxHeight.
  NodeOr Parent(const Token& at, rules_internal::Op op, rules_internal::Type type,
                std::unique_ptr<Node> a, std::unique_ptr<Node> b = nullptr);
  Status RequireInt(const Token& op, const Node& operand) const;
  Status RejectChained(const Token& op, const Node& operand) const;
  static bool IsOneOf(const Token& t, std::initializer_list<std::string_view> ops);

  NodeOr ParseOr();
  NodeOr ParseAnd();
  NodeOr ParseEquality();
  NodeOr ParseRelational();
  NodeOr ParseAdditive();
  NodeOr ParseMultiplicative();
  NodeOr ParseUnary();
  NodeOr ParseUnaryNested();  // ParseUnary within its bound on nesting
  NodeOr ParsePrimary();
  NodeOr ParseIdentifier(size_t at);
  NodeOr ParsePrevious(size_t at);  // prev.<field>
  NodeOr ParseCall(size_t at);

  std::vector<Token> tokens_;
  std::string_view origin_;
  size_t pos_ = 0;
  int nesting_ = 0;  // ParseUnary calls in progress
};

}  // namespace convguard::inject
