// backends/inject/rules_parser.cc — parsing a predicate into its typed tree, the
// diagnostics that name what was expected, and Predicate::Parse.
//
// Thread-safety: a RulesParser is confined to the call that made it; the functions here
// share no state.
#include "backends/inject/rules_parser.h"

#include <algorithm>
#include <utility>

namespace convguard::inject {

using namespace rules_internal;

namespace {

std::string AllowedIdentifiers() {
  std::string out = "fields:";
  for (const auto& f : Fields()) out += " " + std::string(f.name);
  out += " algo device calls prev.<field>; constants:";
  for (const auto& c : Constants()) out += " " + std::string(c.name);
  out += "; functions:";
  for (const auto& f : Functions()) out += " " + std::string(f.name) + "()";
  return out;
}

// What may follow 'prev.': every field that reads the problem, and algo.
std::string PreviousFields() {
  std::string out = "after 'prev.' comes a field of the previous call:";
  for (const auto& f : Fields()) out += " " + std::string(f.name);
  return out + " " + std::string(kAlgoName);
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

// The closest of `candidates` to `word`, if it is a close misspelling; "" otherwise.
std::string Closest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = 3;  // suggest only close misspellings
  for (const std::string& candidate : candidates) {
    const size_t d = EditDistance(word, candidate);
    if (d < best_distance && d < candidate.size()) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::string Suggestion(std::string_view word) {
  std::string best;
  if (word.starts_with(kPrevPrefix)) {
    // prev.groupz: the field part is what is misspelt; comparing it alone keeps short
    // fields (prev.oh) from being suggested for unrelated words.
    std::vector<std::string> fields;
    for (const auto& f : Fields()) fields.emplace_back(f.name);
    fields.emplace_back(kAlgoName);
    best = Closest(word.substr(kPrevPrefix.size()), fields);
    if (!best.empty()) best = std::string(kPrevPrefix) + best;
  } else {
    std::vector<std::string> names;
    for (const auto& f : Fields()) {
      names.emplace_back(f.name);
      names.push_back(std::string(kPrevPrefix) + std::string(f.name));  // prv.c, prevc
    }
    names.emplace_back(kAlgoName);
    names.push_back(std::string(kPrevPrefix) + std::string(kAlgoName));
    names.emplace_back(kDeviceName);
    names.emplace_back(kCallsName);
    for (const auto& c : Constants()) names.emplace_back(c.name);
    for (const auto& f : Functions()) names.emplace_back(f.name);
    best = Closest(word, names);
  }
  if (best.empty()) return "";
  return " (did you mean '" + best + "'?)";
}

// Whether `name` reads a value (a field, algo, device, calls, prev.<field>): for the
// message about calling one like a function.
bool IsValueName(std::string_view name) {
  if (name.starts_with(kPrevPrefix)) name.remove_prefix(kPrevPrefix.size());
  return name == kAlgoName || name == kDeviceName || name == kCallsName ||
         std::ranges::any_of(Fields(), [&](const FieldInfo& f) { return f.name == name; });
}

}  // namespace

RulesParser::RulesParser(std::vector<Token> tokens, std::string_view origin, int end_line,
                         size_t end_offset)
    : tokens_(std::move(tokens)), origin_(origin) {
  Token end;
  end.kind = Tok::kEnd;
  end.line = end_line;
  end.begin = end.end = end_offset;
  tokens_.push_back(std::move(end));
}

Predicate RulesParser::MakePredicate(std::unique_ptr<const Node> root, std::string text) {
  return Predicate(std::shared_ptr<const Node>(std::move(root)), std::move(text));
}

Status RulesParser::ErrorAt(const Token& t, const std::string& message) const {
  return rules_internal::ErrorAt(origin_, t.line, t.begin, message);
}

Status RulesParser::Expected(std::string_view what) const {
  return ErrorAt(Peek(), "expected " + std::string(what) + ", got " + Describe(Peek()));
}

Status RulesParser::ExpectPunct(std::string_view p, std::string_view context) {
  if (!PeekPunct(p)) return Expected("'" + std::string(p) + "' " + std::string(context));
  Take();
  return Status::Ok();
}

StatusOr<std::unique_ptr<const Node>> RulesParser::ParsePredicate() {
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> root, ParseOr());
  if (Peek().kind != Tok::kEnd) {
    return Expected("an operator or the end of the predicate");
  }
  if (root->type != Type::kInt) {
    return ErrorAt(tokens_[root->first_token],
                   "a predicate must be a condition, but '" + Quote(*root) + "' is " +
                       std::string(TypeName(root->type)) + "; compare it, e.g. '" + Quote(*root) +
                       " == " + Example(root->type) + "'");
  }
  return std::unique_ptr<const Node>(std::move(root));
}

std::string RulesParser::SourceText(size_t first, size_t last,
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

std::string RulesParser::Example(Type t) {
  switch (t) {
    case Type::kDataType: return "f16";
    case Type::kLayout: return "nhwc";
    case Type::kDirection: return "fwd";
    case Type::kString: return "\"direct\"";
    case Type::kInt: return "1";
  }
  return "?";
}

std::string RulesParser::Quote(const Node& n) const {
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

std::unique_ptr<Node> RulesParser::Make(Op op, Type type, size_t first, size_t last) {
  auto n = std::make_unique<Node>();
  n->op = op;
  n->type = type;
  n->first_token = first;
  n->last_token = last;
  return n;
}

RulesParser::NodeOr RulesParser::Parent(const Token& at, Op op, Type type, std::unique_ptr<Node> a,
                                        std::unique_ptr<Node> b) {
  const size_t height = 1 + std::max(a->height, b ? b->height : 0);
  if (height > kMaxHeight) {
    return ErrorAt(at, "the predicate is more than " + std::to_string(kMaxHeight) +
                           " operators deep here; split it into several rules with the "
                           "same fault");
  }
  auto n = Make(op, type, a->first_token, (b ? b : a)->last_token);
  n->height = height;
  n->a = std::move(a);
  n->b = std::move(b);
  return n;
}

Status RulesParser::RequireInt(const Token& op, const Node& operand) const {
  if (operand.type == Type::kInt) return Status::Ok();
  return ErrorAt(op, "'" + op.text + "' needs integer operands, but '" + Quote(operand) + "' is " +
                         std::string(TypeName(operand.type)) + " (compare it with " +
                         std::string(TypeValues(operand.type)) + " using == or !=)");
}

Status RulesParser::RejectChained(const Token& op, const Node& operand) const {
  if (!IsComparison(operand.op) || operand.parenthesized) return Status::Ok();
  return ErrorAt(op, "comparisons do not chain: '" + Quote(operand) + " " + op.text +
                         " ...' needs && between two comparisons, or parentheses");
}

bool RulesParser::IsOneOf(const Token& t, std::initializer_list<std::string_view> ops) {
  if (t.kind != Tok::kPunct) return false;
  for (std::string_view op : ops) {
    if (t.text == op) return true;
  }
  return false;
}

RulesParser::NodeOr RulesParser::ParseOr() {
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> lhs, ParseAnd());
  while (PeekPunct("||")) {
    const Token& op = Take();
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> rhs, ParseAnd());
    CG_RETURN_IF_ERROR(RequireInt(op, *lhs));
    CG_RETURN_IF_ERROR(RequireInt(op, *rhs));
    CG_ASSIGN_OR_RETURN(lhs, Parent(op, Op::kOr, Type::kInt, std::move(lhs), std::move(rhs)));
  }
  return lhs;
}

RulesParser::NodeOr RulesParser::ParseAnd() {
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> lhs, ParseEquality());
  while (PeekPunct("&&")) {
    const Token& op = Take();
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> rhs, ParseEquality());
    CG_RETURN_IF_ERROR(RequireInt(op, *lhs));
    CG_RETURN_IF_ERROR(RequireInt(op, *rhs));
    CG_ASSIGN_OR_RETURN(lhs, Parent(op, Op::kAnd, Type::kInt, std::move(lhs), std::move(rhs)));
  }
  return lhs;
}

RulesParser::NodeOr RulesParser::ParseEquality() {
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> lhs, ParseRelational());
  if (!IsOneOf(Peek(), {"==", "!="})) return lhs;
  const Token& op = Take();
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> rhs, ParseRelational());
  CG_RETURN_IF_ERROR(RejectChained(op, *lhs));
  CG_RETURN_IF_ERROR(RejectChained(op, *rhs));
  if (lhs->type != rhs->type) {
    const Node& typed = lhs->type != Type::kInt ? *lhs : *rhs;
    return ErrorAt(op, "cannot compare '" + Quote(*lhs) + "' (" + std::string(TypeName(lhs->type)) +
                           ") with '" + Quote(*rhs) + "' (" + std::string(TypeName(rhs->type)) +
                           "); " + std::string(TypeName(typed.type)) + " compares with " +
                           std::string(TypeValues(typed.type)));
  }
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> n, Parent(op, op.text == "==" ? Op::kEq : Op::kNe,
                                                      Type::kInt, std::move(lhs), std::move(rhs)));
  if (IsOneOf(Peek(), {"==", "!="})) {
    return ErrorAt(Peek(), "comparisons do not chain: '" + Quote(*n) + " " + Peek().text +
                               " ...' needs && between two comparisons, or parentheses");
  }
  return n;
}

RulesParser::NodeOr RulesParser::ParseRelational() {
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
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> n,
                      Parent(op, kind, Type::kInt, std::move(lhs), std::move(rhs)));
  if (IsOneOf(Peek(), {"<", "<=", ">", ">="})) {
    return ErrorAt(Peek(), "comparisons do not chain: '" + Quote(*n) + " " + Peek().text +
                               " ...' needs && between two comparisons");
  }
  return n;
}

RulesParser::NodeOr RulesParser::ParseAdditive() {
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> lhs, ParseMultiplicative());
  while (IsOneOf(Peek(), {"+", "-"})) {
    const Token& op = Take();
    CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> rhs, ParseMultiplicative());
    CG_RETURN_IF_ERROR(RequireInt(op, *lhs));
    CG_RETURN_IF_ERROR(RequireInt(op, *rhs));
    CG_ASSIGN_OR_RETURN(lhs, Parent(op, op.text == "+" ? Op::kAdd : Op::kSub, Type::kInt,
                                    std::move(lhs), std::move(rhs)));
  }
  return lhs;
}

RulesParser::NodeOr RulesParser::ParseMultiplicative() {
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
    CG_ASSIGN_OR_RETURN(lhs, Parent(op, kind, Type::kInt, std::move(lhs), std::move(rhs)));
  }
  return lhs;
}

RulesParser::NodeOr RulesParser::ParseUnary() {
  // Every level of parentheses, function arguments and prefix operators comes through
  // here, and each recurses through the whole descent: the bound on the parser's stack.
  if (nesting_ >= kMaxNesting) {
    return ErrorAt(Peek(), "the predicate nests more than " + std::to_string(kMaxNesting) +
                               " levels deep here (parentheses, function arguments and "
                               "'!', '-', '+')");
  }
  ++nesting_;
  NodeOr n = ParseUnaryNested();
  --nesting_;
  return n;
}

RulesParser::NodeOr RulesParser::ParseUnaryNested() {
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
    operand->value = -operand->value;                 // cannot overflow: literals are <= INT64_MAX
    operand->first_token = first;
    return operand;
  }
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> n, Parent(op, op.text == "!" ? Op::kNot : Op::kNeg,
                                                      Type::kInt, std::move(operand)));
  n->first_token = first;
  return n;
}

RulesParser::NodeOr RulesParser::ParsePrimary() {
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
      return ErrorAt(t, "'" + t.text +
                            "' is not an integer; predicates compute with "
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
        CG_RETURN_IF_ERROR(
            ExpectPunct(")", "to close the '(' at column " + std::to_string(t.begin + 1)));
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

RulesParser::NodeOr RulesParser::ParseIdentifier(size_t at) {
  const Token& t = tokens_[at];
  for (const auto& f : Fields()) {
    if (f.name == t.text) {
      auto n = Make(Op::kField, f.type, at, at);
      n->get = f.get;
      return n;
    }
  }
  if (t.text == kAlgoName) return Make(Op::kAlgo, Type::kString, at, at);
  if (t.text == kDeviceName) return Make(Op::kDevice, Type::kInt, at, at);
  if (t.text == kCallsName) return Make(Op::kCalls, Type::kInt, at, at);
  if (t.text.starts_with(kPrevPrefix)) return ParsePrevious(at);
  if (t.text == kPrevName) {
    return ErrorAt(t, "'prev' alone is not a value: write prev.<field>, e.g. prev.c == 3; " +
                          PreviousFields());
  }
  for (const auto& c : Constants()) {
    if (c.name == t.text) {
      auto n = Make(Op::kConst, c.type, at, at);
      n->value = c.value;
      return n;
    }
  }
  for (const auto& f : Functions()) {
    if (f.name == t.text) {
      return ErrorAt(
          t, "'" + t.text + "' is a function: write " + t.text + (f.arity == 1 ? "(x)" : "(a, b)"));
    }
  }
  return ErrorAt(
      t, "unknown identifier '" + t.text + "'" + Suggestion(t.text) + "; " + AllowedIdentifiers());
}

RulesParser::NodeOr RulesParser::ParsePrevious(size_t at) {
  const Token& t = tokens_[at];
  const std::string_view field = std::string_view(t.text).substr(kPrevPrefix.size());
  for (const auto& f : Fields()) {
    if (f.name == field) {
      auto n = Make(Op::kPrevField, f.type, at, at);
      n->get = f.get;
      return n;
    }
  }
  if (field == kAlgoName) return Make(Op::kPrevAlgo, Type::kString, at, at);
  if (field == kDeviceName) {
    return ErrorAt(t, "'" + t.text +
                          "' is not a field: a process serves one device, so the previous "
                          "call's device is 'device'; " +
                          PreviousFields());
  }
  if (field == kCallsName) {
    return ErrorAt(t, "'" + t.text +
                          "' is not a field: the previous call's position is "
                          "'calls - 1'; " +
                          PreviousFields());
  }
  return ErrorAt(
      t, "unknown identifier '" + t.text + "'" + Suggestion(t.text) + "; " + PreviousFields());
}

RulesParser::NodeOr RulesParser::ParseCall(size_t at) {
  const Token& name = tokens_[at];
  const FunctionInfo* function = nullptr;
  for (const auto& f : Functions()) {
    if (f.name == name.text) function = &f;
  }
  if (function == nullptr) {
    std::string message = "unknown function '" + name.text + "'";
    if (IsValueName(name.text)) {
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
        return ErrorAt(arg_start, name.text + "() takes integers, but '" + Quote(*arg) + "' is " +
                                      std::string(TypeName(arg->type)));
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
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Node> n,
                      Parent(name, function->op, Type::kInt, std::move(args[0]),
                             args.size() > 1 ? std::move(args[1]) : std::unique_ptr<Node>()));
  n->first_token = at;
  n->last_token = position() - 1;
  return n;
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

}  // namespace convguard::inject
