// Call sequences: what an application ran, in order, from an MIOpen log or a problem
// list. Contract in convguard/sequence.h.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "convguard/problem_source.h"
#include "convguard/sequence.h"
#include "convguard/text_forms.h"
#include "core/hash.h"

namespace convguard {
namespace {

namespace fs = std::filesystem;

Status TooMany(const std::string& path, int64_t max_calls) {
  return Status::OutOfRange("'" + path + "' holds more than " + std::to_string(max_calls) +
                            " convolution calls; replay a part of it");
}

StatusOr<CallSequence> FromLog(const MiopenLog& log, bool skip_unreadable, int64_t max_calls) {
  if (!log.unread.empty() && !skip_unreadable) {
    const LogUnreadLine& u = log.unread.front();
    return Status::InvalidArgument(
        log.origin + ":" + std::to_string(u.line) + ": cannot replay '" + u.text +
        "': " + u.reason + " (" + std::to_string(log.unread.size()) +
        " such command(s); a replay that skipped them would not be the application's "
        "sequence: --skip-unreadable replays the rest)");
  }
  if (log.calls.empty()) {
    return Status::InvalidArgument(log.origin + ": no convolution command convguard can run (" +
                                   std::to_string(log.unread.size()) + " it cannot)");
  }
  if (static_cast<int64_t>(log.calls.size()) > max_calls) return TooMany(log.origin, max_calls);
  CallSequence seq;
  seq.origin = log.origin;
  seq.format = "miopen-log";
  seq.skipped = static_cast<int64_t>(log.unread.size());
  if (!log.unread.empty()) {
    seq.first_skipped = log.origin + ":" + std::to_string(log.unread.front().line) + ": " +
                        log.unread.front().reason;
  }
  seq.calls.reserve(log.calls.size());
  for (const LoggedCall& c : log.calls) {
    SequenceCall call;
    call.problem = log.problems[c.problem].problem;
    call.find = c.find;
    call.origin = log.origin + ":" + std::to_string(c.line);
    seq.calls.push_back(std::move(call));
  }
  return seq;
}

}  // namespace

StatusOr<CallSequence> ReadCallSequence(const std::string& path, bool skip_unreadable,
                                        int64_t max_calls) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) {
    return Status::NotFound("'" + path + "' does not exist");
  }
  if (fs::is_directory(st)) {
    return Status::InvalidArgument("'" + path + "' is a directory, not a log or problem list");
  }
  // A raw MIOpen log reads as a log (its Finds kept); a file that also holds lines only a
  // problem list can (canonical problems, includes) reads as the list it is.
  StatusOr<std::vector<ListedProblem>> list = ReadProblemList(path);
  StatusOr<MiopenLog> log = ReadMiopenLog(path);
  if (log.ok() && (!list.ok() || list->size() == log->calls.size())) {
    return FromLog(*log, skip_unreadable, max_calls);
  }
  if (!list.ok()) {
    if (list.status().code() == StatusCode::kNotFound ||
        list.status().code() == StatusCode::kIOError) {
      return list.status();
    }
    return Status(list.status().code(),
                  list.status().message() +
                      " (read as a problem list: it holds no MIOpenDriver convolution command)");
  }
  if (list->empty()) {
    return Status::InvalidArgument("'" + path +
                                   "' holds no convolution call (neither a problem line nor an "
                                   "MIOpenDriver convolution command)");
  }
  if (static_cast<int64_t>(list->size()) > max_calls) return TooMany(path, max_calls);
  CallSequence seq;
  seq.origin = path;
  seq.format = "list";
  seq.calls.reserve(list->size());
  for (ListedProblem& lp : *list) {
    SequenceCall call;
    call.problem = lp.problem;
    call.algorithm = std::move(lp.algorithm);
    call.origin = std::move(lp.source);
    seq.calls.push_back(std::move(call));
  }
  return seq;
}

std::string SequenceCallKey(const SequenceCall& call) {
  return ToCanonical(call.problem) + " " +
         (call.find                ? std::string("find")
          : call.algorithm.empty() ? std::string("default")
                                   : call.algorithm);
}

std::string SequenceDigest(const std::vector<SequenceCall>& calls) {
  std::string joined;
  for (const SequenceCall& c : calls) {
    joined += SequenceCallKey(c);
    joined += '\n';
  }
  return Fnv1a64Hex(joined);
}

std::string FormatSequenceList(const std::vector<SequenceCall>& calls,
                               const std::vector<std::string>& header) {
  std::string out;
  for (const std::string& h : header) out += "# " + h + "\n";
  for (const SequenceCall& c : calls) {
    out += ToCanonical(c.problem);
    if (!c.algorithm.empty()) out += " algo=" + c.algorithm;
    if (c.find) out += "  # find";
    out += "\n";
  }
  return out;
}

std::string FormatSequenceDriverCommands(const std::vector<SequenceCall>& calls,
                                         const std::vector<std::string>& header) {
  std::string out;
  for (const std::string& h : header) out += "# " + h + "\n";
  for (const SequenceCall& c : calls) {
    StatusOr<std::string> args = ToMiopenDriver(c.problem);
    if (!args.ok()) {
      out += "# " + ToCanonical(c.problem) + ": " + args.status().message() + "\n";
      continue;
    }
    out += "MIOpenDriver " + *args + " -i 1";
    if (!c.algorithm.empty()) out += "  # convguard algorithm: " + c.algorithm;
    out += "\n";
  }
  return out;
}

}  // namespace convguard
