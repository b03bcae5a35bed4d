#include "backends/inject/fault_rules.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <limits>
#include <utility>

namespace convguard::inject {

// ---- values and the expression tree ------------------------------------------------

namespace {

// Every predicate node has a static type; the parser rejects mixing them, so evaluation
// never meets a type error.
enum class Type { kInt, kDataType, kLayout, kDirection, kString };

std::string_view TypeName(Type t) {
  switch (t) {
    case Type::kInt: return "an integer";
    case Type::kDataType: return "a dtype";
    case Type::kLayout: return "a layout";
    case Type::kDirection: return "a direction";
    case Type::kString: return "a string";
  }
  return "?";
}

// What a value of each type may be compared with, for messages.
std::string_view TypeValues(Type t) {
  switch (t) {
    case Type::kInt: return "an integer expression";
    case Type::kDataType: return "f32, f16 or bf16";
    case Type::kLayout: return "nchw or nhwc";
    case Type::kDirection: return "fwd, bwd_data or bwd_weights";
    case Type::kString: return "algo or a \"string\"";
  }
  return "?";
}

enum class Op {
  kConst, kField, kAlgo, kString, kDevice,             // leaves
  kNot, kNeg,                                          // unary
  kAdd, kSub, kMul, kDiv, kMod,                        // arithmetic
  kEq, kNe, kLt, kLe, kGt, kGe,                        // comparisons
  kAnd, kOr,                                           // logic (short-circuit)
  kPow2, kMin, kMax,                                   // functions
};

bool IsComparison(Op op) { return op >= Op::kEq && op <= Op::kGe; }

using Int = std::optional<int64_t>;  // nullopt: undefined (division by zero, overflow)

Int Add(Int a, Int b) {
  int64_t r;
  if (!a || !b || __builtin_add_overflow(*a, *b, &r)) return std::nullopt;
  return r;
}
Int Sub(Int a, Int b) {
  int64_t r;
  if (!a || !b || __builtin_sub_overflow(*a, *b, &r)) return std::nullopt;
  return r;
}
Int Mul(Int a, Int b) {
  int64_t r;
  if (!a || !b || __builtin_mul_overflow(*a, *b, &r)) return std::nullopt;
  return r;
}
Int Div(Int a, Int b) {
  if (!a || !b || *b == 0) return std::nullopt;
  if (*a == std::numeric_limits<int64_t>::min() && *b == -1) return std::nullopt;
  return *a / *b;  // truncates toward zero, as in C
}
Int Mod(Int a, Int b) {
  if (!a || !b || *b == 0) return std::nullopt;
  if (*a == std::numeric_limits<int64_t>::min() && *b == -1) return std::nullopt;
  return *a % *b;  // takes the sign of the dividend, as in C
}

// Output size along one axis, computed like Problem::out_h() but defined for any field
// values (MatchFault may see a problem that was never validated).
Int OutSize(int64_t in, int64_t pad_a, int64_t pad_b, int64_t kernel, int64_t dilation,
            int64_t stride) {
  if (stride <= 0) return std::nullopt;
  const Int span = Add(Mul(Sub(kernel, 1), dilation), 1);
  return Add(Div(Sub(Add(Add(in, pad_a), pad_b), span), stride), 1);
}

using Getter = Int (*)(const Problem&);

struct FieldInfo {
  std::string_view name;
  Type type;
  Getter get;
};

// The identifiers a predicate may read. Enum-typed fields evaluate to the enum's value.
constexpr std::array kFields = {
    FieldInfo{"n", Type::kInt, [](const Problem& p) -> Int { return p.n; }},
    FieldInfo{"c", Type::kInt, [](const Problem& p) -> Int { return p.c; }},
    FieldInfo{"h", Type::kInt, [](const Problem& p) -> Int { return p.h; }},
    FieldInfo{"w", Type::kInt, [](const Problem& p) -> Int { return p.w; }},
    FieldInfo{"k", Type::kInt, [](const Problem& p) -> Int { return p.k; }},
    FieldInfo{"r", Type::kInt, [](const Problem& p) -> Int { return p.r; }},
    FieldInfo{"s", Type::kInt, [](const Problem& p) -> Int { return p.s; }},
    FieldInfo{"oh", Type::kInt,
              [](const Problem& p) -> Int {
                return OutSize(p.h, p.pad_top, p.pad_bottom, p.r, p.dilation_h, p.stride_h);
              }},
    FieldInfo{"ow", Type::kInt,
              [](const Problem& p) -> Int {
                return OutSize(p.w, p.pad_left, p.pad_right, p.s, p.dilation_w, p.stride_w);
              }},
    FieldInfo{"pad_top", Type::kInt, [](const Problem& p) -> Int { return p.pad_top; }},
    FieldInfo{"pad_left", Type::kInt, [](const Problem& p) -> Int { return p.pad_left; }},
    FieldInfo{"pad_bottom", Type::kInt, [](const Problem& p) -> Int { return p.pad_bottom; }},
    FieldInfo{"pad_right", Type::kInt, [](const Problem& p) -> Int { return p.pad_right; }},
    FieldInfo{"stride_h", Type::kInt, [](const Problem& p) -> Int { return p.stride_h; }},
    FieldInfo{"stride_w", Type::kInt, [](const Problem& p) -> Int { return p.stride_w; }},
    FieldInfo{"dilation_h", Type::kInt, [](const Problem& p) -> Int { return p.dilation_h; }},
    FieldInfo{"dilation_w", Type::kInt, [](const Problem& p) -> Int { return p.dilation_w; }},
    FieldInfo{"groups", Type::kInt, [](const Problem& p) -> Int { return p.groups; }},
    FieldInfo{"c_per_group", Type::kInt,
              [](const Problem& p) -> Int { return Div(p.c, p.groups); }},
    FieldInfo{"k_per_group", Type::kInt,
              [](const Problem& p) -> Int { return Div(p.k, p.groups); }},
    FieldInfo{"bias", Type::kInt, [](const Problem& p) -> Int { return p.bias ? 1 : 0; }},
    FieldInfo{"dtype", Type::kDataType,
              [](const Problem& p) -> Int { return static_cast<int64_t>(p.dtype); }},
    FieldInfo{"layout", Type::kLayout,
              [](const Problem& p) -> Int { return static_cast<int64_t>(p.layout); }},
    FieldInfo{"direction", Type::kDirection,
              [](const Problem& p) -> Int { return static_cast<int64_t>(p.direction); }},
};

struct ConstantInfo {
  std::string_view name;
  Type type;
  int64_t value;
};

constexpr std::array kConstants = {
    ConstantInfo{"f32", Type::kDataType, static_cast<int64_t>(DataType::kF32)},
    ConstantInfo{"f16", Type::kDataType, static_cast<int64_t>(DataType::kF16)},
    ConstantInfo{"bf16", Type::kDataType, static_cast<int64_t>(DataType::kBF16)},
    ConstantInfo{"nchw", Type::kLayout, static_cast<int64_t>(Layout::kNCHW)},
    ConstantInfo{"nhwc", Type::kLayout, static_cast<int64_t>(Layout::kNHWC)},
    ConstantInfo{"fwd", Type::kDirection, static_cast<int64_t>(Direction::kForward)},
    ConstantInfo{"bwd_data", Type::kDirection, static_cast<int64_t>(Direction::kBackwardData)},
    ConstantInfo{"bwd_weights", Type::kDirection,
                 static_cast<int64_t>(Direction::kBackwardWeights)},
    ConstantInfo{"always", Type::kInt, 1},
};

struct FunctionInfo {
  std::string_view name;
  Op op;
  int arity;
};

constexpr std::array kFunctions = {
    FunctionInfo{"pow2", Op::kPow2, 1},
    FunctionInfo{"min", Op::kMin, 2},
    FunctionInfo{"max", Op::kMax, 2},
};

constexpr std::string_view kAlgoName = "algo";
constexpr std::string_view kDeviceName = "device";

std::string AllowedIdentifiers() {
  std::string out = "fields:";
  for (const auto& f : kFields) out += " " + std::string(f.name);
  out += " algo device; constants:";
  for (const auto& c : kConstants) out += " " + std::string(c.name);
  out += "; functions:";
  for (const auto& f : kFunctions) out += " " + std::string(f.name) + "()";
  return out;
}

// Edit distance, for "did you mean" suggestions.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string Suggestion(std::string_view word) {
  std::string_view best;
  size_t best_distance = 3;  // suggest only close misspellings
  auto consider = [&](std::string_view candidate) {
    const size_t d = EditDistance(word, candidate);
    if (d < best_distance && d < candidate.size()) {
      best_distance = d;
      best = candidate;
    }
  };
  for (const auto& f : kFields) consider(f.name);
  consider(kAlgoName);
  consider(kDeviceName);
  for (const auto& c : kConstants) consider(c.name);
  for (const auto& f : kFunctions) consider(f.name);
  if (best.empty()) return "";
  return " (did you mean '" + std::string(best) + "'?)";
}

}  // namespace

struct Predicate::Node {
  Op op = Op::kConst;
  Type type = Type::kInt;
  int64_t value = 0;      // kConst
  Getter get = nullptr;   // kField
  std::string str;        // kString
  std::unique_ptr<const Node> a, b;
  // Parse-time only: written inside parentheses, and the tokens it spans (for messages).
  bool parenthesized = false;
  size_t first_token = 0, last_token = 0;
};

namespace {

using Node = Predicate::Node;

std::string_view StringValue(const Node& n, std::string_view algorithm) {
  return n.op == Op::kAlgo ? algorithm : std::string_view(n.str);
}

// `device`: which of the engine's devices the evaluating process serves (see FaultRules).
Int Evaluate(const Node& n, const Problem& p, std::string_view algorithm, int64_t device) {
  switch (n.op) {
    case Op::kConst: return n.value;
    case Op::kField: return n.get(p);
    case Op::kDevice: return device;
    case Op::kAlgo:
    case Op::kString: return std::nullopt;  // never evaluated as an integer (typed out)
    case Op::kNot: {
      const Int v = Evaluate(*n.a, p, algorithm, device);
      if (!v) return std::nullopt;
      return *v == 0 ? 1 : 0;
    }
    case Op::kNeg: return Sub(0, Evaluate(*n.a, p, algorithm, device));
    case Op::kAdd: return Add(Evaluate(*n.a, p, algorithm, device), Evaluate(*n.b, p, algorithm, device));
    case Op::kSub: return Sub(Evaluate(*n.a, p, algorithm, device), Evaluate(*n.b, p, algorithm, device));
    case Op::kMul: return Mul(Evaluate(*n.a, p, algorithm, device), Evaluate(*n.b, p, algorithm, device));
    case Op::kDiv: return Div(Evaluate(*n.a, p, algorithm, device), Evaluate(*n.b, p, algorithm, device));
    case Op::kMod: return Mod(Evaluate(*n.a, p, algorithm, device), Evaluate(*n.b, p, algorithm, device));
    case Op::kEq:
    case Op::kNe: {
      bool equal;
      if (n.a->type == Type::kString) {
        equal = StringValue(*n.a, algorithm) == StringValue(*n.b, algorithm);
      } else {
        const Int x = Evaluate(*n.a, p, algorithm, device);
        const Int y = Evaluate(*n.b, p, algorithm, device);
        if (!x || !y) return std::nullopt;
        equal = *x == *y;
      }
      return (equal == (n.op == Op::kEq)) ? 1 : 0;
    }
    case Op::kLt:
    case Op::kLe:
    case Op::kGt:
    case Op::kGe: {
      const Int x = Evaluate(*n.a, p, algorithm, device);
      const Int y = Evaluate(*n.b, p, algorithm, device);
      if (!x || !y) return std::nullopt;
      switch (n.op) {
        case Op::kLt: return *x < *y ? 1 : 0;
        case Op::kLe: return *x <= *y ? 1 : 0;
        case Op::kGt: return *x > *y ? 1 : 0;
        default: return *x >= *y ? 1 : 0;
      }
    }
    case Op::kAnd: {
      const Int x = Evaluate(*n.a, p, algorithm, device);
      if (!x) return std::nullopt;
      if (*x == 0) return 0;
      const Int y = Evaluate(*n.b, p, algorithm, device);
      if (!y) return std::nullopt;
      return *y != 0 ? 1 : 0;
    }
    case Op::kOr: {
      const Int x = Evaluate(*n.a, p, algorithm, device);
      if (!x) return std::nullopt;
      if (*x != 0) return 1;
      const Int y = Evaluate(*n.b, p, algorithm, device);
      if (!y) return std::nullopt;
      return *y != 0 ? 1 : 0;
    }
    case Op::kPow2: {
      const Int x = Evaluate(*n.a, p, algorithm, device);
      if (!x) return std::nullopt;
      return (*x > 0 && (*x & (*x - 1)) == 0) ? 1 : 0;
    }
    case Op::kMin:
    case Op::kMax: {
      const Int x = Evaluate(*n.a, p, algorithm, device);
      const Int y = Evaluate(*n.b, p, algorithm, device);
      if (!x || !y) return std::nullopt;
      return n.op == Op::kMin ? std::min(*x, *y) : std::max(*x, *y);
    }
  }
  return std::nullopt;
}

// ---- tokens ------------------------------------------------------------------------

enum class Tok { kIdent, kInt, kDecimal, kString, kPunct, kEnd };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;   // spelling; for kString the decoded contents
  int64_t value = 0;  // kInt
  int line = 0;       // 1-based physical line (0 when parsing a lone predicate)
  size_t begin = 0;   // byte offsets of the spelling in its line
  size_t end = 0;
};

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
bool IsDigit(char ch) { return ch >= '0' && ch <= '9'; }
bool IsIdentChar(char ch) { return IsIdentStart(ch) || IsDigit(ch); }
bool IsSpace(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

// Formats "<origin>:<line>:<column>: <message>", or "column <c>: <message>" for a lone
// predicate (no origin).
Status ErrorAt(std::string_view origin, int line, size_t offset, const std::string& message) {
  if (origin.empty()) {
    return Status::InvalidArgument("column " + std::to_string(offset + 1) + ": " + message);
  }
  return Status::InvalidArgument(std::string(origin) + ":" + std::to_string(line) + ":" +
                                 std::to_string(offset + 1) + ": " + message);
}

// Decodes a "string" starting at text[*pos] == '"'; \" and \\ are the escapes. Advances
// *pos past the closing quote.
Status DecodeString(std::string_view text, size_t* pos, std::string* out,
                    std::string_view origin, int line) {
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

// Splits one physical line into tokens, stopping at a '#' comment. A '\' as the last
// token means the rule continues on the next line (*continued); it is not a token.
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
                       "malformed number '" + std::string(text.substr(t.begin, j - t.begin)) +
                           "'");
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
        const bool printable = static_cast<unsigned char>(ch) >= 0x20 &&
                               static_cast<unsigned char>(ch) < 0x7f;
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

}  // namespace

// ---- the parser --------------------------------------------------------------------

// Recursive descent over the tokens of one rule or one lone predicate. Precedence, from
// loosest: ||, &&, == !=, < <= > >=, + -, * / %, unary ! - +. Comparisons do not chain.
class RulesParser {
 public:
  RulesParser(std::vector<Token> tokens, std::string_view origin, int end_line,
              size_t end_offset)
      : tokens_(std::move(tokens)), origin_(origin) {
    Token end;
    end.kind = Tok::kEnd;
    end.line = end_line;
    end.begin = end.end = end_offset;
    tokens_.push_back(std::move(end));
  }

  // Predicate's constructor is private to the parser.
  static Predicate MakePredicate(std::unique_ptr<const Node> root, std::string text) {
    return Predicate(std::shared_ptr<const Node>(std::move(root)), std::move(text));
  }

  const Token& Peek() const { return tokens_[pos_]; }
  const Token& Take() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool PeekPunct(std::string_view p) const {
    return Peek().kind == Tok::kPunct && Peek().text == p;
  }
  size_t position() const { return pos_; }

  Status ErrorAt(const Token& t, const std::string& message) const {
    return inject::ErrorAt(origin_, t.line, t.begin, message);
  }
  Status Expected(std::string_view what) const {
    return ErrorAt(Peek(), "expected " + std::string(what) + ", got " + Describe(Peek()));
  }
  Status ExpectPunct(std::string_view p, std::string_view context) {
    if (!PeekPunct(p)) return Expected("'" + std::string(p) + "' " + std::string(context));
    Take();
    return Status::Ok();
  }

  // The rest of the tokens as one predicate, which must be an integer (truth) value.
  StatusOr<std::unique_ptr<const Node>> ParsePredicate() {
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> root, ParseOr());
    if (Peek().kind != Tok::kEnd) {
      return Expected("an operator or the end of the predicate");
    }
    if (root->type != Type::kInt) {
      return ErrorAt(tokens_[root->first_token],
                     "a predicate must be a condition, but '" + Quote(*root) + "' is " +
                         std::string(TypeName(root->type)) + "; compare it, e.g. '" +
                         Quote(*root) + " == " + Example(root->type) + "'");
    }
    return std::unique_ptr<const Node>(std::move(root));
  }

  // The source of tokens [first, last] as written (lines joined by one space).
  std::string SourceText(size_t first, size_t last,
                         const std::vector<std::string_view>& lines) const {
    std::string out;
    size_t i = first;
    while (i <= last) {
      size_t j = i;
      while (j + 1 <= last && tokens_[j + 1].line == tokens_[i].line) ++j;
      if (!out.empty()) out += ' ';
      const std::string_view line = lines[tokens_[i].line > 0 ? tokens_[i].line - 1 : 0];
      out += line.substr(tokens_[i].begin, tokens_[j].end - tokens_[i].begin);
      i = j + 1;
    }
    return out;
  }

  size_t last_real_token() const { return tokens_.size() >= 2 ? tokens_.size() - 2 : 0; }

 private:
  using NodeOr = StatusOr<std::unique_ptr<Node>>;

  static std::string Example(Type t) {
    switch (t) {
      case Type::kDataType: return "f16";
      case Type::kLayout: return "nhwc";
      case Type::kDirection: return "fwd";
      case Type::kString: return "\"direct\"";
      case Type::kInt: return "1";
    }
    return "?";
  }

  std::string Quote(const Node& n) const {
    std::string out;
    for (size_t i = n.first_token; i <= n.last_token; ++i) {
      const Token& t = tokens_[i];
      if (!out.empty() && !(t.kind == Tok::kPunct && (t.text == ")" || t.text == ",")) &&
          !(i > 0 && tokens_[i - 1].kind == Tok::kPunct &&
            (tokens_[i - 1].text == "(" || tokens_[i - 1].text == "!"))) {
        out += ' ';
      }
      out += t.kind == Tok::kString ? "\"" + t.text + "\"" : t.text;
    }
    return out;
  }

  std::unique_ptr<Node> Make(Op op, Type type, size_t first, size_t last) {
    auto n = std::make_unique<Node>();
    n->op = op;
    n->type = type;
    n->first_token = first;
    n->last_token = last;
    return n;
  }

  std::unique_ptr<Node> Binary(Op op, Type type, std::unique_ptr<Node> a, std::unique_ptr<Node> b) {
    auto n = Make(op, type, a->first_token, b->last_token);
    n->a = std::move(a);
    n->b = std::move(b);
    return n;
  }

  Status RequireInt(const Token& op, const Node& operand) const {
    if (operand.type == Type::kInt) return Status::Ok();
    return ErrorAt(op, "'" + op.text + "' needs integer operands, but '" + Quote(operand) +
                           "' is " + std::string(TypeName(operand.type)) + " (compare it with " +
                           std::string(TypeValues(operand.type)) + " using == or !=)");
  }

  Status RejectChained(const Token& op, const Node& operand) const {
    if (!IsComparison(operand.op) || operand.parenthesized) return Status::Ok();
    return ErrorAt(op, "comparisons do not chain: '" + Quote(operand) + " " + op.text +
                           " ...' needs && between two comparisons, or parentheses");
  }

  static bool IsOneOf(const Token& t, std::initializer_list<std::string_view> ops) {
    if (t.kind != Tok::kPunct) return false;
    for (std::string_view op : ops) {
      if (t.text == op) return true;
    }
    return false;
  }

  NodeOr ParseOr() {
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> lhs, ParseAnd());
    while (PeekPunct("||")) {
      const Token& op = Take();
      CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> rhs, ParseAnd());
      CG_RETURN_IF_ERROR(RequireInt(op, *lhs));
      CG_RETURN_IF_ERROR(RequireInt(op, *rhs));
      lhs = Binary(Op::kOr, Type::kInt, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  NodeOr ParseAnd() {
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> lhs, ParseEquality());
    while (PeekPunct("&&")) {
      const Token& op = Take();
      CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> rhs, ParseEquality());
      CG_RETURN_IF_ERROR(RequireInt(op, *lhs));
      CG_RETURN_IF_ERROR(RequireInt(op, *rhs));
      lhs = Binary(Op::kAnd, Type::kInt, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  NodeOr ParseEquality() {
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> lhs, ParseRelational());
    if (!IsOneOf(Peek(), {"==", "!="})) return lhs;
    const Token& op = Take();
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> rhs, ParseRelational());
    CG_RETURN_IF_ERROR(RejectChained(op, *lhs));
    CG_RETURN_IF_ERROR(RejectChained(op, *rhs));
    if (lhs->type != rhs->type) {
      const Node& typed = lhs->type != Type::kInt ? *lhs : *rhs;
      return ErrorAt(op, "cannot compare '" + Quote(*lhs) + "' (" +
                             std::string(TypeName(lhs->type)) + ") with '" + Quote(*rhs) +
                             "' (" + std::string(TypeName(rhs->type)) + "); " +
                             std::string(TypeName(typed.type)) + " compares with " +
                             std::string(TypeValues(typed.type)));
    }
    auto n =
        Binary(op.text == "==" ? Op::kEq : Op::kNe, Type::kInt, std::move(lhs), std::move(rhs));
    if (IsOneOf(Peek(), {"==", "!="})) {
      return ErrorAt(Peek(), "comparisons do not chain: '" + Quote(*n) + " " + Peek().text +
                                 " ...' needs && between two comparisons, or parentheses");
    }
    return n;
  }

  NodeOr ParseRelational() {
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> lhs, ParseAdditive());
    if (!IsOneOf(Peek(), {"<", "<=", ">", ">="})) return lhs;
    const Token& op = Take();
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> rhs, ParseAdditive());
    CG_RETURN_IF_ERROR(RequireInt(op, *lhs));
    CG_RETURN_IF_ERROR(RequireInt(op, *rhs));
    const Op kind = op.text == "<"    ? Op::kLt
                    : op.text == "<=" ? Op::kLe
                    : op.text == ">"  ? Op::kGt
                                      : Op::kGe;
    auto n = Binary(kind, Type::kInt, std::move(lhs), std::move(rhs));
    if (IsOneOf(Peek(), {"<", "<=", ">", ">="})) {
      return ErrorAt(Peek(), "comparisons do not chain: '" + Quote(*n) + " " + Peek().text +
                                 " ...' needs && between two comparisons");
    }
    return n;
  }

  NodeOr ParseAdditive() {
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> lhs, ParseMultiplicative());
    while (IsOneOf(Peek(), {"+", "-"})) {
      const Token& op = Take();
      CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> rhs, ParseMultiplicative());
      CG_RETURN_IF_ERROR(RequireInt(op, *lhs));
      CG_RETURN_IF_ERROR(RequireInt(op, *rhs));
      lhs = Binary(op.text == "+" ? Op::kAdd : Op::kSub, Type::kInt, std::move(lhs),
                   std::move(rhs));
    }
    return lhs;
  }

  NodeOr ParseMultiplicative() {
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> lhs, ParseUnary());
    while (IsOneOf(Peek(), {"*", "/", "%"})) {
      const Token& op = Take();
      CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> rhs, ParseUnary());
      CG_RETURN_IF_ERROR(RequireInt(op, *lhs));
      CG_RETURN_IF_ERROR(RequireInt(op, *rhs));
      if (op.text != "*" && rhs->op == Op::kConst && rhs->value == 0) {
        return ErrorAt(op, "'" + op.text + " 0' divides by zero");
      }
      const Op kind = op.text == "*" ? Op::kMul : op.text == "/" ? Op::kDiv : Op::kMod;
      lhs = Binary(kind, Type::kInt, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  NodeOr ParseUnary() {
    if (!IsOneOf(Peek(), {"!", "-", "+"})) return ParsePrimary();
    const size_t first = position();
    const Token& op = Take();
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> operand, ParseUnary());
    CG_RETURN_IF_ERROR(RequireInt(op, *operand));
    if (op.text == "+") {
      operand->first_token = first;
      return operand;
    }
    if (op.text == "-" && operand->op == Op::kConst) {  // a negative literal
      operand->value = -operand->value;  // cannot overflow: literals are <= INT64_MAX
      operand->first_token = first;
      return operand;
    }
    auto n = Make(op.text == "!" ? Op::kNot : Op::kNeg, Type::kInt, first, operand->last_token);
    n->a = std::move(operand);
    return n;
  }

  NodeOr ParsePrimary() {
    const size_t at = position();
    const Token& t = Peek();
    switch (t.kind) {
      case Tok::kInt: {
        Take();
        auto n = Make(Op::kConst, Type::kInt, at, at);
        n->value = t.value;
        return n;
      }
      case Tok::kDecimal:
        return ErrorAt(t, "'" + t.text + "' is not an integer; predicates compute with "
                              "64-bit integers");
      case Tok::kString: {
        Take();
        auto n = Make(Op::kString, Type::kString, at, at);
        n->str = t.text;
        return n;
      }
      case Tok::kIdent:
        Take();
        if (PeekPunct("(")) return ParseCall(at);
        return ParseIdentifier(at);
      case Tok::kPunct:
        if (t.text == "(") {
          Take();
          CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> inner, ParseOr());
          CG_RETURN_IF_ERROR(ExpectPunct(")", "to close the '(' at column " +
                                                  std::to_string(t.begin + 1)));
          inner->parenthesized = true;
          inner->first_token = at;
          inner->last_token = position() - 1;
          return inner;
        }
        break;
      case Tok::kEnd: break;
    }
    return Expected("a field, a number, a function call or '('");
  }

  NodeOr ParseIdentifier(size_t at) {
    const Token& t = tokens_[at];
    for (const auto& f : kFields) {
      if (f.name == t.text) {
        auto n = Make(Op::kField, f.type, at, at);
        n->get = f.get;
        return n;
      }
    }
    if (t.text == kAlgoName) return Make(Op::kAlgo, Type::kString, at, at);
    if (t.text == kDeviceName) return Make(Op::kDevice, Type::kInt, at, at);
    for (const auto& c : kConstants) {
      if (c.name == t.text) {
        auto n = Make(Op::kConst, c.type, at, at);
        n->value = c.value;
        return n;
      }
    }
    for (const auto& f : kFunctions) {
      if (f.name == t.text) {
        return ErrorAt(t, "'" + t.text + "' is a function: write " + t.text +
                              (f.arity == 1 ? "(x)" : "(a, b)"));
      }
    }
    return ErrorAt(t, "unknown identifier '" + t.text + "'" + Suggestion(t.text) + "; " +
                          AllowedIdentifiers());
  }

  NodeOr ParseCall(size_t at) {
    const Token& name = tokens_[at];
    const FunctionInfo* function = nullptr;
    for (const auto& f : kFunctions) {
      if (f.name == name.text) function = &f;
    }
    if (function == nullptr) {
      std::string message = "unknown function '" + name.text + "'";
      if (std::any_of(kFields.begin(), kFields.end(),
                      [&](const FieldInfo& f) { return f.name == name.text; })) {
        message = "'" + name.text + "' is a field, not a function";
      } else {
        message += Suggestion(name.text);
      }
      return ErrorAt(name, message + "; functions are pow2(x), min(a, b), max(a, b)");
    }
    Take();  // '('
    std::vector<std::unique_ptr<Node>> args;
    if (!PeekPunct(")")) {
      for (;;) {
        const Token& arg_start = Peek();
        CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> arg, ParseOr());
        if (arg->type != Type::kInt) {
          return ErrorAt(arg_start, name.text + "() takes integers, but '" + Quote(*arg) +
                                        "' is " + std::string(TypeName(arg->type)));
        }
        args.push_back(std::move(arg));
        if (!PeekPunct(",")) break;
        Take();
      }
    }
    CG_RETURN_IF_ERROR(ExpectPunct(")", "to close " + name.text + "("));
    if (static_cast<int>(args.size()) != function->arity) {
      return ErrorAt(name, name.text + "() takes " + std::to_string(function->arity) +
                               (function->arity == 1 ? " argument" : " arguments") + ", got " +
                               std::to_string(args.size()));
    }
    auto n = Make(function->op, Type::kInt, at, position() - 1);
    n->a = std::move(args[0]);
    if (args.size() > 1) n->b = std::move(args[1]);
    return n;
  }

  std::vector<Token> tokens_;
  std::string_view origin_;
  size_t pos_ = 0;
};

// ---- public API --------------------------------------------------------------------

std::string_view FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kSpin: return "spin";
    case FaultKind::kBlock: return "block";
    case FaultKind::kSegv: return "segv";
    case FaultKind::kAbort: return "abort";
    case FaultKind::kExit: return "exit";
    case FaultKind::kWrong: return "wrong";
    case FaultKind::kError: return "error";
    case FaultKind::kSlow: return "slow";
    case FaultKind::kOom: return "oom";
    case FaultKind::kUnsupported: return "unsupported";
  }
  return "?";
}

bool IsFatal(FaultKind kind) {
  switch (kind) {
    case FaultKind::kSpin:
    case FaultKind::kBlock:
    case FaultKind::kSegv:
    case FaultKind::kAbort:
    case FaultKind::kExit: return true;
    default: return false;
  }
}

namespace {

std::string QuoteString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

// What each fault takes between parentheses.
enum class Argument { kNone, kFraction, kMilliseconds, kExitCode, kText };

struct FaultSyntax {
  std::string_view name;
  FaultKind kind;
  Argument argument;
  std::string_view usage;
};

constexpr std::array kFaultSyntax = {
    FaultSyntax{"spin", FaultKind::kSpin, Argument::kNone, "spin"},
    FaultSyntax{"block", FaultKind::kBlock, Argument::kNone, "block"},
    FaultSyntax{"segv", FaultKind::kSegv, Argument::kNone, "segv"},
    FaultSyntax{"abort", FaultKind::kAbort, Argument::kNone, "abort"},
    FaultSyntax{"exit", FaultKind::kExit, Argument::kExitCode, "exit(<code 0..255>)"},
    FaultSyntax{"wrong", FaultKind::kWrong, Argument::kFraction, "wrong(<fraction in (0, 1]>)"},
    FaultSyntax{"error", FaultKind::kError, Argument::kText, "error(\"<message>\")"},
    FaultSyntax{"slow", FaultKind::kSlow, Argument::kMilliseconds, "slow(<milliseconds>)"},
    FaultSyntax{"oom", FaultKind::kOom, Argument::kNone, "oom"},
    FaultSyntax{"unsupported", FaultKind::kUnsupported, Argument::kText,
                "unsupported(\"<reason>\")"},
};

std::string AllFaults() {
  std::string out;
  for (const auto& f : kFaultSyntax) {
    if (!out.empty()) out += ", ";
    out += f.usage;
  }
  return out;
}

}  // namespace

std::string Fault::ToString() const {
  switch (kind) {
    case FaultKind::kExit: return "exit(" + std::to_string(exit_code) + ")";
    case FaultKind::kWrong: {
      // The shortest spelling that reads back as the same double (%.17g always does).
      char buffer[32] = "";
      for (int precision = 1; precision <= 17; ++precision) {
        const int length = std::snprintf(buffer, sizeof buffer, "%.*g", precision, wrong_fraction);
        double back = 0;
        std::from_chars(buffer, buffer + length, back);
        if (back == wrong_fraction) break;
      }
      return "wrong(" + std::string(buffer) + ")";
    }
    case FaultKind::kSlow: return "slow(" + std::to_string(slow_ms) + ")";
    case FaultKind::kError:
    case FaultKind::kUnsupported:
      return std::string(FaultKindName(kind)) + "(" + QuoteString(message) + ")";
    default: return std::string(FaultKindName(kind));
  }
}

std::string FaultRule::ToString() const { return fault.ToString() + " when " + when.text(); }

namespace {

bool ReadsDevice(const Node* n) {
  if (n == nullptr) return false;
  return n->op == Op::kDevice || ReadsDevice(n->a.get()) || ReadsDevice(n->b.get());
}

}  // namespace

Predicate::Predicate(std::shared_ptr<const Node> root, std::string text)
    : root_(std::move(root)), text_(std::move(text)), uses_device_(ReadsDevice(root_.get())) {}

bool Predicate::Matches(const Problem& p, std::string_view algorithm, int device) const {
  if (root_ == nullptr) return false;
  const Int v = Evaluate(*root_, p, algorithm, device);
  return v.has_value() && *v != 0;
}

StatusOr<Predicate> Predicate::Parse(std::string_view text) {
  std::vector<Token> tokens;
  bool continued = false;
  CG_RETURN_IF_ERROR(TokenizeLine(text, 1, "", &tokens, &continued));
  if (continued) {
    return ErrorAt("", 1, text.find_last_of('\\'),
                   "'\\' continues a rule in a rules file; a lone predicate has one line");
  }
  if (tokens.empty()) return ErrorAt("", 1, text.size(), "expected a predicate, got nothing");
  RulesParser parser(std::move(tokens), "", 1, text.size());
  CG_ASSIGN_OR_RETURN(std::unique_ptr<const Node> root, parser.ParsePredicate());
  const std::vector<std::string_view> lines = {text};
  std::string source = parser.SourceText(0, parser.last_real_token(), lines);
  return RulesParser::MakePredicate(std::move(root), std::move(source));
}

const FaultRule* FaultRules::Match(const Problem& p, std::string_view algorithm, int device) const {
  for (const FaultRule& rule : rules) {
    if (rule.when.Matches(p, algorithm, device)) return &rule;
  }
  return nullptr;
}

std::string FaultRules::Where(const FaultRule& rule) const {
  return origin + ":" + std::to_string(rule.line);
}

bool FaultRules::UsesDevice() const {
  return std::any_of(rules.begin(), rules.end(), [](const FaultRule& r) { return r.when.uses_device(); });
}

std::string FaultRules::DigestOnDevice(int device) const {
  return UsesDevice() ? Fnv1a64Hex(digest + "@device " + std::to_string(device)) : digest;
}

void FaultRules::ApplyTo(StackFingerprint& fp, int device) const {
  const std::string own = DigestOnDevice(device);
  if (stack.device) fp.device = *stack.device;
  if (stack.architecture) fp.architecture = *stack.architecture;
  if (stack.driver) fp.driver = *stack.driver;
  if (stack.runtime) fp.runtime = *stack.runtime;
  if (stack.library) fp.library = *stack.library;
  if (stack.compute_units) fp.compute_units = *stack.compute_units;
  for (const auto& [name, value] : stack.knobs) fp.knobs[name] = value;
  if (!emulation.empty()) {
    fp.emulation = fp.emulation.empty() ? emulation : fp.emulation + "; " + emulation;
  }
  fp.fault_rules_digest = fp.fault_rules_digest.empty()
                              ? own
                              : Fnv1a64Hex(fp.fault_rules_digest + "+" + own);
}

std::string Fnv1a64Hex(std::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char byte : bytes) {
    hash ^= byte;
    hash *= 0x100000001b3ULL;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kHex[hash & 0xf];
    hash >>= 4;
  }
  return out;
}

// ---- the rules file ----------------------------------------------------------------

namespace {

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (end == text.size()) break;
    start = end + 1;
  }
  return lines;
}

bool IsKeyChar(char ch) { return IsIdentChar(ch) || ch == '.'; }

constexpr std::string_view kDirectives =
    "emulation, stack.device, stack.architecture, stack.driver, stack.runtime, "
    "stack.library, stack.compute_units, stack.knobs.<NAME>";

class FileParser {
 public:
  FileParser(std::string_view text, std::string origin) : lines_(SplitLines(text)) {
    rules_.origin = std::move(origin);
    rules_.digest = Fnv1a64Hex(text);
  }

  StatusOr<FaultRules> Parse() {
    size_t i = 0;
    while (i < lines_.size()) {
      const std::string_view line = lines_[i];
      const int line_no = static_cast<int>(i) + 1;
      const size_t first = line.find_first_not_of(" \t\r");
      if (first == std::string_view::npos || line[first] == '#') {
        ++i;
        continue;
      }
      size_t key_end = first;
      while (key_end < line.size() && IsKeyChar(line[key_end])) ++key_end;
      size_t colon = key_end;
      while (colon < line.size() && (line[colon] == ' ' || line[colon] == '\t')) ++colon;
      const std::string_view key = line.substr(first, key_end - first);
      if (colon < line.size() && line[colon] == ':' && key_end > first) {
        CG_RETURN_IF_ERROR(ParseDirective(line_no, line, first, key, colon + 1));
        ++i;
        continue;
      }
      if (key == "emulation" || key.substr(0, 6) == "stack.") {
        return Error(line_no, colon, "expected ':' after directive '" + std::string(key) + "'");
      }
      CG_ASSIGN_OR_RETURN(i, ParseRule(i));
    }
    return std::move(rules_);
  }

 private:
  Status Error(int line, size_t offset, const std::string& message) const {
    return ErrorAt(rules_.origin, line, offset, message);
  }

  // The value after "key:": a "quoted string", or the rest of the line up to a '#'
  // comment, trimmed.
  StatusOr<std::string> DirectiveValue(int line_no, std::string_view line, size_t start,
                                       std::string_view key, bool* quoted) {
    size_t i = line.find_first_not_of(" \t", start);
    *quoted = false;
    if (i != std::string_view::npos && line[i] == '"') {
      std::string value;
      CG_RETURN_IF_ERROR(DecodeString(line, &i, &value, rules_.origin, line_no));
      const size_t rest = line.find_first_not_of(" \t", i);
      if (rest != std::string_view::npos && line[rest] != '#') {
        return Error(line_no, rest,
                     "expected the end of line after the quoted value of '" + std::string(key) +
                         "', got '" + std::string(line.substr(rest)) + "'");
      }
      *quoted = true;
      return value;
    }
    if (i == std::string_view::npos) i = line.size();
    std::string_view value = line.substr(i);
    value = value.substr(0, value.find('#'));
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (value.empty()) {
      return Error(line_no, i, "expected a value after '" + std::string(key) + ":'");
    }
    return std::string(value);
  }

  Status ParseDirective(int line_no, std::string_view line, size_t key_at, std::string_view key,
                        size_t value_at) {
    if (!rules_.rules.empty()) {
      return Error(line_no, key_at,
                   "directive '" + std::string(key) + "' must come before the first rule (line " +
                       std::to_string(rules_.rules.front().line) + ")");
    }
    const auto previous = seen_.find(std::string(key));
    if (previous != seen_.end()) {
      return Error(line_no, key_at,
                   "'" + std::string(key) + "' is already set on line " +
                       std::to_string(previous->second));
    }
    bool quoted = false;
    CG_ASSIGN_OR_RETURN(std::string value, DirectiveValue(line_no, line, value_at, key, &quoted));
    const size_t value_column = line.find_first_not_of(" \t", value_at);

    StackOverrides& stack = rules_.stack;
    std::optional<std::string>* text_field = nullptr;
    if (key == "emulation") {
      if (value.empty()) return Error(line_no, value_column, "the emulation text is empty");
      rules_.emulation = value;
    } else if (key == "stack.device") {
      text_field = &stack.device;
    } else if (key == "stack.architecture") {
      text_field = &stack.architecture;
    } else if (key == "stack.driver") {
      text_field = &stack.driver;
    } else if (key == "stack.runtime") {
      text_field = &stack.runtime;
    } else if (key == "stack.library") {
      text_field = &stack.library;
    } else if (key == "stack.compute_units") {
      int64_t units = -1;
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), units);
      if (quoted || ec != std::errc() || ptr != value.data() + value.size() || units < 0 ||
          units > (int64_t{1} << 31)) {
        return Error(line_no, value_column,
                     "stack.compute_units needs an integer in 0..2147483648, got '" + value + "'");
      }
      stack.compute_units = units;
    } else if (key.substr(0, 12) == "stack.knobs.") {
      const std::string_view name = key.substr(12);
      if (name.empty() || !IsIdentStart(name[0]) ||
          !std::all_of(name.begin(), name.end(), IsIdentChar)) {
        return Error(line_no, key_at + 12,
                     "knob name '" + std::string(name) +
                         "' must be letters, digits and '_', not starting with a digit");
      }
      stack.knobs[std::string(name)] = value;
    } else {
      return Error(line_no, key_at,
                   "unknown directive '" + std::string(key) + "'; directives are " +
                       std::string(kDirectives));
    }
    if (text_field != nullptr) *text_field = value;
    seen_[std::string(key)] = line_no;
    return Status::Ok();
  }

  // Parses the rule starting on line index `i` (with its continuation lines); returns the
  // index of the line after it.
  StatusOr<size_t> ParseRule(size_t i) {
    const int line_no = static_cast<int>(i) + 1;
    std::vector<Token> tokens;
    bool continued = true;
    size_t next = i;
    while (continued) {
      if (next >= lines_.size()) {
        return Error(static_cast<int>(next), lines_[next - 1].size(),
                     "the line ends with '\\' but no line follows");
      }
      CG_RETURN_IF_ERROR(TokenizeLine(lines_[next], static_cast<int>(next) + 1, rules_.origin,
                                      &tokens, &continued));
      ++next;
    }
    const std::string_view last_line = lines_[next - 1];
    size_t end_offset = last_line.find('#');
    if (end_offset == std::string_view::npos) end_offset = last_line.size();
    RulesParser parser(std::move(tokens), rules_.origin, static_cast<int>(next), end_offset);

    FaultRule rule;
    rule.line = line_no;
    CG_ASSIGN_OR_RETURN(rule.fault, ParseFault(parser));
    const Token& when = parser.Peek();
    if (when.kind != Tok::kIdent || when.text != "when") {
      return parser.Expected("'when' after the fault '" + rule.fault.ToString() + "'");
    }
    parser.Take();
    if (parser.Peek().kind == Tok::kEnd) {
      return parser.Expected("a predicate after 'when' (write 'always' to match every problem)");
    }
    const size_t first = parser.position();
    CG_ASSIGN_OR_RETURN(std::unique_ptr<const Node> root, parser.ParsePredicate());
    rule.when = RulesParser::MakePredicate(
        std::move(root), parser.SourceText(first, parser.last_real_token(), lines_));
    rules_.rules.push_back(std::move(rule));
    return next;
  }

  StatusOr<Fault> ParseFault(RulesParser& parser) {
    const Token& name = parser.Peek();
    if (name.kind != Tok::kIdent) {
      return parser.Expected("a fault (" + AllFaults() + ") or a directive (" +
                             std::string(kDirectives) + ")");
    }
    const FaultSyntax* syntax = nullptr;
    for (const auto& f : kFaultSyntax) {
      if (f.name == name.text) syntax = &f;
    }
    if (syntax == nullptr) {
      return parser.ErrorAt(name, "unknown fault '" + name.text + "'; faults are " + AllFaults());
    }
    parser.Take();
    Fault fault;
    fault.kind = syntax->kind;
    if (syntax->argument == Argument::kNone) {
      if (parser.PeekPunct("(")) {
        return parser.ErrorAt(parser.Peek(), "'" + name.text + "' takes no argument");
      }
      return fault;
    }
    if (!parser.PeekPunct("(")) {
      return parser.ErrorAt(parser.Peek(), "'" + name.text + "' needs an argument: " +
                                               std::string(syntax->usage) + ", got " +
                                               Describe(parser.Peek()));
    }
    parser.Take();
    const Token& arg = parser.Peek();
    const std::string bad = "expected " + std::string(syntax->usage) + ", got " + Describe(arg);
    switch (syntax->argument) {
      case Argument::kFraction: {
        double fraction = 0;
        bool parsed = false;
        if (arg.kind == Tok::kInt || arg.kind == Tok::kDecimal) {
          const auto [ptr, ec] =
              std::from_chars(arg.text.data(), arg.text.data() + arg.text.size(), fraction);
          parsed = ec == std::errc() && ptr == arg.text.data() + arg.text.size();
        }
        if (!parsed || !(fraction > 0.0 && fraction <= 1.0)) return parser.ErrorAt(arg, bad);
        fault.wrong_fraction = fraction;
        break;
      }
      case Argument::kMilliseconds:
        if (arg.kind != Tok::kInt || arg.value > Fault::kMaxSlowMs) {
          return parser.ErrorAt(arg, bad + " (at most " + std::to_string(Fault::kMaxSlowMs) +
                                         " ms)");
        }
        fault.slow_ms = arg.value;
        break;
      case Argument::kExitCode:
        if (arg.kind != Tok::kInt || arg.value > 255) return parser.ErrorAt(arg, bad);
        fault.exit_code = static_cast<int>(arg.value);
        break;
      case Argument::kText:
        if (arg.kind != Tok::kString || arg.text.empty()) {
          return parser.ErrorAt(arg, bad + (arg.kind == Tok::kString ? " (it is empty)" : ""));
        }
        fault.message = arg.text;
        break;
      case Argument::kNone: break;
    }
    parser.Take();
    CG_RETURN_IF_ERROR(parser.ExpectPunct(")", "to close " + name.text + "("));
    return fault;
  }

  std::vector<std::string_view> lines_;
  FaultRules rules_;
  std::map<std::string, int> seen_;  // directive -> line
};

}  // namespace

StatusOr<FaultRules> ParseFaultRules(std::string_view text, std::string origin) {
  if (origin.empty()) origin = "<rules>";
  return FileParser(text, std::move(origin)).Parse();
}

}  // namespace convguard::inject
