// backends/inject/rules_file_parser.cc — ParseFaultRules: a rules file's lines, header
// directives, continuation lines and faults, each rule's predicate handed to RulesParser.
//
// The file is line-oriented (docs/fault-injection.md): directives are one line each and
// read as text, not tokens, because their values are free text; a rule is tokenized line
// by line until a line does not end with '\', so that its tokens keep their physical
// lines and columns for messages.
//
// Thread-safety: ParseFaultRules shares no state between calls.
#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <optional>
#include <utility>

#include "backends/inject/fault_rules.h"
#include "backends/inject/rules_lexer.h"
#include "backends/inject/rules_parser.h"
#include "core/hash.h"

namespace convguard::inject {

using namespace rules_internal;

namespace {

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
      return Error(
          line_no, key_at,
          "'" + std::string(key) + "' is already set on line " + std::to_string(previous->second));
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
      const size_t before = tokens.size();
      CG_RETURN_IF_ERROR(TokenizeLine(lines_[next], static_cast<int>(next) + 1, rules_.origin,
                                      &tokens, &continued));
      // A continuation into a blank or comment-only line (the file's last newline, say)
      // would end the rule silently where its author meant it to go on.
      if (next > i && tokens.size() == before) {
        return Error(static_cast<int>(next), lines_[next - 1].size(),
                     "the line ends with '\\' but the next line is blank or a comment");
      }
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
      return parser.ErrorAt(parser.Peek(),
                            "'" + name.text + "' needs an argument: " + std::string(syntax->usage) +
                                ", got " + Describe(parser.Peek()));
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
          return parser.ErrorAt(arg,
                                bad + " (at most " + std::to_string(Fault::kMaxSlowMs) + " ms)");
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
