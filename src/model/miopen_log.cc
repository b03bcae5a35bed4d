// MIOpen logs: the MIOpenDriver convolution commands of an application's output, picked
// out of everything else it prints. Contract in convguard/problem_source.h.
//
// What MIOpen writes, with MIOPEN_ENABLE_LOGGING_CMD=1, for each convolution it finds or
// runs (one line on stderr):
//
//   [HOST PID TID ]MIOpen(HIP)[ ELAPSED][ (DATE)]: Command [TAG] ./bin/MIOpenDriver ARGS
//
// where TAG names the logging function (LogCmdConvolution, LogCmdFindConvolution,
// LogCmdBNorm, LogCmdFusion, ...), the driver is `MIOpenDriver.exe` on Windows, and ARGS
// start with the command word (conv, convfp16, convbfp16, convint8, bnorm, CBAInfer, ...).
// Other programs interleave their own output with these lines, sometimes without a line
// break between (a progress bar redrawn with \r, then MIOpen's line), so a command is
// looked for anywhere in a line, and the line's text after it is its arguments.
//
// Nothing here throws or trusts the bytes: a line is cut at kMaxLineBytes before it is
// looked at, a command longer than kMaxCommandBytes is not parsed, and every text kept
// for a report is printable ASCII of bounded size.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "convguard/problem.h"
#include "convguard/problem_source.h"
#include "convguard/sequence.h"
#include "convguard/status.h"
#include "convguard/text_forms.h"

namespace convguard {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDriver = "MIOpenDriver";
// The most of one line that is looked at. Real log lines are a few hundred bytes; a
// longer one is a progress bar that never printed a line break, or garbage.
constexpr size_t kMaxLineBytes = size_t{64} << 10;
// The longest command that is parsed. A logged convolution command is about 200 bytes.
constexpr size_t kMaxCommandBytes = size_t{4} << 10;
constexpr size_t kReadChunkBytes = size_t{1} << 20;

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }
bool IsIdentifierChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool IsIdentifier(std::string_view word) {
  if (word.empty() || !IsLetter(word.front())) return false;
  return std::all_of(word.begin(), word.end(), IsIdentifierChar);
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

// The next blank-separated word of `s` at or after `*pos`; *pos moves past it.
std::string_view NextWord(std::string_view s, size_t* pos) {
  size_t i = *pos;
  while (i < s.size() && IsBlank(s[i])) ++i;
  const size_t start = i;
  while (i < s.size() && !IsBlank(s[i])) ++i;
  *pos = i;
  return s.substr(start, i - start);
}

// `s` as printable ASCII: other whitespace becomes a space (so that the words stay the
// words the parser saw), other bytes \xNN; at most `max` bytes (max >= 3), a cut text
// ending in "...".
std::string Printable(std::string_view s, size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::min(s.size(), max));
  for (char ch : s) {
    const auto byte = static_cast<unsigned char>(ch);
    if (out.size() > max) break;
    if (IsBlank(ch) || ch == '\n') {
      out += ' ';
    } else if (byte >= 0x20 && byte < 0x7f) {
      out += ch;
    } else {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    }
  }
  if (out.size() > max) {
    out.resize(max - 3);
    out += "...";
  }
  return out;
}

enum class LineKind { kNone, kConvolution, kOtherCommand };

struct LineCommand {
  LineKind kind = LineKind::kNone;
  std::string_view args;  // from the command word to the end of the line, blanks trimmed
  bool find = false;
};

// Finds the first MIOpenDriver command in `line`: the word `MIOpenDriver` (or
// `MIOpenDriver.exe`, optionally closing a quoted path), not inside a longer identifier,
// then blanks and a command word.
LineCommand FindCommand(std::string_view line) {
  size_t from = 0;
  while (true) {
    const size_t at = line.find(kDriver, from);
    if (at == std::string_view::npos) return {};
    from = at + 1;
    if (at > 0 && IsIdentifierChar(line[at - 1])) continue;
    size_t pos = at + kDriver.size();
    if (EqualsIgnoringCase(line.substr(pos, 4), ".exe")) pos += 4;
    if (pos < line.size() && (line[pos] == '"' || line[pos] == '\'')) ++pos;
    if (pos >= line.size() || !IsBlank(line[pos])) continue;
    size_t after_word = pos;
    const std::string_view word = NextWord(line, &after_word);
    if (word.empty()) continue;
    size_t after_next = after_word;
    const std::string_view next = NextWord(line, &after_next);
    const bool flags_follow = next.empty() || next.front() == '-';

    LineCommand command;
    if (word == "conv" || word == "convfp16" || word == "convbfp16" ||
        (word.starts_with("conv") && IsIdentifier(word) && flags_follow)) {
      command.kind = LineKind::kConvolution;
    } else if (IsIdentifier(word) && flags_follow) {
      command.kind = LineKind::kOtherCommand;
    } else {
      continue;  // prose that mentions the driver
    }
    const size_t word_start = static_cast<size_t>(word.data() - line.data());
    command.args = TrimBlanks(line.substr(word_start));
    // MIOpen tags a Find's command [LogCmdFindConvolution]; older builds named the API
    // function instead (miopenFindConvolutionForwardAlgorithm: ./bin/MIOpenDriver ...).
    command.find = line.substr(0, at).find("FindConvolution") != std::string_view::npos;
    return command;
  }
}

// Builds a MiopenLog line by line; shared by the in-memory and the streaming reader so
// that both read the same bytes the same way.
class LogBuilder {
 public:
  explicit LogBuilder(std::string_view origin) { log_.origin = std::string(origin); }

  // `line` is at most kMaxLineBytes of the line, without its '\n'; `cut` tells that the
  // line was longer.
  void AddLine(std::string_view line, bool cut) {
    const int64_t line_no = ++log_.lines;
    const LineCommand command = FindCommand(line);
    if (command.kind != LineKind::kConvolution) {
      ++log_.skipped_lines;
      if (command.kind == LineKind::kOtherCommand) ++log_.other_driver_commands;
      return;
    }
    if (cut) {
      Unread(line_no, command.args, StatusCode::kOutOfRange,
             "the line is longer than " + std::to_string(kMaxLineBytes) +
                 " bytes, so its command cannot be read whole");
      return;
    }
    if (command.args.size() > kMaxCommandBytes) {
      Unread(line_no, command.args, StatusCode::kOutOfRange,
             "the command is " + std::to_string(command.args.size()) +
                 " bytes long, more than the " + std::to_string(kMaxCommandBytes) +
                 " a convolution command is read to");
      return;
    }
    StatusOr<Problem> problem = ParseProblem(command.args, TextForm::kMiopenDriver);
    if (!problem.ok()) {
      Unread(line_no, command.args, problem.status().code(), problem.status().message());
      return;
    }
    const std::string key = ToCanonical(*problem);
    auto [it, inserted] = index_.try_emplace(key, log_.problems.size());
    if (inserted) {
      LoggedProblem logged;
      logged.problem = *problem;
      logged.driver_args = Printable(command.args, kMaxCommandBytes * 4);
      logged.first_line = line_no;
      log_.problems.push_back(std::move(logged));
    }
    LoggedProblem& logged = log_.problems[it->second];
    ++(command.find ? logged.find_lines : logged.run_lines);
    log_.calls.push_back({it->second, line_no, command.find});
  }

  StatusOr<MiopenLog> Finish() && {
    if (log_.calls.empty() && log_.unread.empty()) {
      std::string message = log_.origin + ": no MIOpenDriver convolution command in " +
                            std::to_string(log_.lines) + (log_.lines == 1 ? " line" : " lines") +
                            " read (looked for 'MIOpenDriver conv', 'convfp16' or "
                            "'convbfp16' as MIOpen logs them with MIOPEN_ENABLE_LOGGING_CMD=1)";
      if (log_.other_driver_commands > 0) {
        message += "; " + std::to_string(log_.other_driver_commands) +
                   (log_.other_driver_commands == 1 ? " line holds" : " lines hold") +
                   " other MIOpenDriver commands (bnorm, pool, ...), which are not convolutions";
      }
      return Status::InvalidArgument(std::move(message));
    }
    return std::move(log_);
  }

 private:
  void Unread(int64_t line_no, std::string_view args, StatusCode code, std::string_view reason) {
    log_.unread.push_back(
        {line_no, Printable(args, kMaxLogTextBytes), code, Printable(reason, kMaxLogTextBytes)});
  }

  MiopenLog log_;
  std::map<std::string, size_t> index_;  // canonical form -> index into log_.problems
};

// Calls `on_line(kept, cut)` for every line of `text`, each cut to kMaxLineBytes. A final
// line without '\n' is a line; an empty text has none.
template <typename OnLine>
void ForEachLine(std::string_view text, OnLine&& on_line) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    on_line(line.substr(0, kMaxLineBytes), line.size() > kMaxLineBytes);
    pos = end + 1;
  }
}

}  // namespace

StatusOr<MiopenLog> ParseMiopenLog(std::string_view text, std::string_view origin) {
  LogBuilder builder(origin);
  ForEachLine(text, [&](std::string_view line, bool cut) { builder.AddLine(line, cut); });
  return std::move(builder).Finish();
}

bool LooksLikeMiopenLog(std::string_view text) {
  bool found = false;
  ForEachLine(text, [&](std::string_view line, bool) {
    if (!found) found = FindCommand(line).kind == LineKind::kConvolution;
  });
  return found;
}

StatusOr<MiopenLog> ReadMiopenLog(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) {
    return Status::NotFound("MIOpen log '" + path + "' does not exist");
  }
  if (ec) return Status::IOError("cannot stat MIOpen log '" + path + "': " + ec.message());
  if (fs::is_directory(st)) {
    return Status::InvalidArgument("MIOpen log '" + path + "' is a directory, not a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot open MIOpen log '" + path + "'");

  // Streamed in chunks, keeping at most kMaxLineBytes of a line, so that a log of many
  // gigabytes, or one endless line, is read in bounded memory.
  LogBuilder builder(path);
  std::string chunk(kReadChunkBytes, '\0');
  std::string line;
  bool cut = false;
  bool partial = false;  // bytes of an unfinished line have been seen
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const std::string_view got(chunk.data(), static_cast<size_t>(in.gcount()));
    size_t pos = 0;
    while (pos < got.size()) {
      size_t end = got.find('\n', pos);
      const bool complete = end != std::string_view::npos;
      if (!complete) end = got.size();
      const std::string_view piece = got.substr(pos, end - pos);
      const size_t room = kMaxLineBytes - line.size();
      line.append(piece.substr(0, room));
      cut = cut || piece.size() > room;
      partial = true;
      if (complete) {
        builder.AddLine(line, cut);
        line.clear();
        cut = false;
        partial = false;
      }
      pos = end + 1;
    }
  }
  if (in.bad()) return Status::IOError("error while reading MIOpen log '" + path + "'");
  if (partial) builder.AddLine(line, cut);
  return std::move(builder).Finish();
}

ModelConvs ModelConvsFromLog(const MiopenLog& log) {
  ModelConvs out;
  out.origin = log.origin;
  out.format = "miopen-log";
  int64_t find = 0, run = 0;
  for (const LoggedProblem& p : log.problems) {
    ModelConv conv;
    conv.name = "line " + std::to_string(p.first_line);
    conv.op = p.driver_args.substr(0, p.driver_args.find(' '));
    conv.problem = p.problem;
    conv.calls = p.find_lines + p.run_lines;
    find += p.find_lines;
    run += p.run_lines;
    out.convs.push_back(std::move(conv));
  }
  for (const LogUnreadLine& u : log.unread) {
    ModelConv conv;
    conv.name = "line " + std::to_string(u.line);
    conv.op = u.text.substr(0, u.text.find(' '));
    conv.unsupported = u.reason;
    out.convs.push_back(std::move(conv));
  }
  std::vector<SequenceCall> calls;
  calls.reserve(log.calls.size());
  for (const LoggedCall& c : log.calls) {
    SequenceCall call;
    call.problem = log.problems[c.problem].problem;
    call.find = c.find;
    calls.push_back(std::move(call));
  }
  out.sequence_digest = SequenceDigest(calls);
  out.notes.push_back(std::to_string(log.calls.size()) + " convolution commands (" +
                      std::to_string(find) + " from Find, " + std::to_string(run) +
                      " executions) of " + std::to_string(log.problems.size()) +
                      " distinct problems; " + std::to_string(log.skipped_lines) +
                      " other lines skipped");
  return out;
}

}  // namespace convguard
