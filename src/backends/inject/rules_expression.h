// backends/inject/rules_expression.h — what a predicate compiles to: a typed expression
// tree over a problem's fields, and the vocabulary (fields, constants, functions) that
// names them.
//
// The parser (rules_parser.h) builds the tree and checks its types; rules_expression.cc
// evaluates it in int64, where division by zero and overflow give an undefined value
// rather than a wrong one (a predicate that is undefined for a problem does not match it).
// Identifiers that read something other than the problem itself (`algo`, `device`,
// `calls`, `prev.<field>`) are leaves of their own, filled at evaluation from the inputs
// Predicate::Matches gets, so that a new kind of input adds a leaf and an input, not a
// new evaluator. A `prev.<field>` leaf reuses the field's getter on the previous call's
// problem, so every field reads the same way, with the same type, in both forms.
//
// Private to src/backends/inject: nothing here is part of the library API.
//
// Thread-safety: the tables are constants; a built tree is immutable and may be evaluated
// from several threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "backends/inject/fault_rules.h"
#include "convguard/problem.h"

namespace convguard::inject {
namespace rules_internal {

// Every predicate node has a static type; the parser rejects mixing them, so evaluation
// never meets a type error.
enum class Type { kInt, kDataType, kLayout, kDirection, kString };

// "an integer", "a dtype", ...: for messages.
std::string_view TypeName(Type t);
// What a value of each type may be compared with, for messages.
std::string_view TypeValues(Type t);

// clang-format off
enum class Op {
  kConst, kField, kAlgo, kString, kDevice,             // leaves
  kCalls, kPrevField, kPrevAlgo,                       // leaves: the call history
  kNot, kNeg,                                          // unary
  kAdd, kSub, kMul, kDiv, kMod,                        // arithmetic
  kEq, kNe, kLt, kLe, kGt, kGe,                        // comparisons
  kAnd, kOr,                                           // logic (short-circuit)
  kPow2, kMin, kMax,                                   // functions
};
// clang-format on

inline bool IsComparison(Op op) { return op >= Op::kEq && op <= Op::kGe; }

using Int = std::optional<int64_t>;  // nullopt: undefined (division by zero, overflow)

using Getter = Int (*)(const Problem&);

struct FieldInfo {
  std::string_view name;
  Type type;
  Getter get;
};

struct ConstantInfo {
  std::string_view name;
  Type type;
  int64_t value;
};

struct FunctionInfo {
  std::string_view name;
  Op op;
  int arity;
};

// The identifiers a predicate may read, in the order messages list them. Enum-typed
// fields evaluate to the enum's value.
std::span<const FieldInfo> Fields();
std::span<const ConstantInfo> Constants();
std::span<const FunctionInfo> Functions();

inline constexpr std::string_view kAlgoName = "algo";
inline constexpr std::string_view kDeviceName = "device";
inline constexpr std::string_view kCallsName = "calls";
// `prev.<field>`: the lexer keeps a dotted name as one identifier token, and the parser
// splits off this prefix.
inline constexpr std::string_view kPrevName = "prev";
inline constexpr std::string_view kPrevPrefix = "prev.";

}  // namespace rules_internal

struct Predicate::Node {
  rules_internal::Op op = rules_internal::Op::kConst;
  rules_internal::Type type = rules_internal::Type::kInt;
  int64_t value = 0;                     // kConst
  rules_internal::Getter get = nullptr;  // kField, kPrevField
  std::string str;                       // kString
  std::unique_ptr<const Node> a, b;
  // Parse-time only: written inside parentheses, and the tokens it spans (for messages);
  // the levels of the tree under this node, itself included (RulesParser bounds it).
  bool parenthesized = false;
  size_t first_token = 0, last_token = 0;
  size_t height = 1;
};

namespace rules_internal {
using Node = Predicate::Node;
}  // namespace rules_internal

}  // namespace convguard::inject
