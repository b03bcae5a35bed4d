// Problem lists: one problem per line in any text form, with comments, includes and
// MIOpen command-log lines. Grammar in convguard/problem_source.h.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "convguard/problem.h"
#include "convguard/problem_source.h"
#include "convguard/status.h"
#include "convguard/text_forms.h"

namespace convguard {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDriverMarker = "MIOpenDriver";

bool IsSpace(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v';
}

bool IsAlgorithmChar(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '_' || ch == '-' || ch == '.' || ch == ':';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// A list's identity for cycle detection: the same file reached by different spellings
// of its path must compare equal.
std::string Identity(const std::string& path) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(path, ec);
  if (!ec) return canonical.string();
  fs::path absolute = fs::absolute(path, ec);
  if (!ec) return absolute.lexically_normal().string();
  return fs::path(path).lexically_normal().string();
}

StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) {
    return Status::NotFound("problem list '" + path + "' does not exist");
  }
  if (ec) return Status::IOError("cannot stat problem list '" + path + "': " + ec.message());
  if (fs::is_directory(st)) {
    return Status::InvalidArgument("problem list '" + path + "' is a directory, not a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot open problem list '" + path + "'");
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return Status::IOError("error while reading problem list '" + path + "'");
  return text;
}

class ListReader {
 public:
  // Parses `text`, named `origin`, appending its problems. `identity` is its entry in
  // the include chain.
  Status Parse(std::string_view text, const std::string& origin, const std::string& identity) {
    chain_.push_back({identity, origin});
    Status s = ParseLines(text, origin);
    chain_.pop_back();
    return s;
  }

  std::vector<ListedProblem> Take() { return std::move(problems_); }

 private:
  struct ChainEntry {
    std::string identity;
    std::string name;
  };

  Status ParseLines(std::string_view text, const std::string& origin) {
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte order mark
    int line_no = 0;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(pos, end - pos);
      pos = end + 1;
      ++line_no;
      CG_RETURN_IF_ERROR(ParseLine(line, origin, line_no));
    }
    return Status::Ok();
  }

  Status ParseLine(std::string_view line, const std::string& origin, int line_no) {
    const std::string where = origin + ":" + std::to_string(line_no);
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = Trim(line);
    if (line.empty()) return Status::Ok();

    if (line.starts_with("--batch=")) return Include(Trim(line.substr(8)), origin, where);
    if (line == "include" || (line.starts_with("include") && IsSpace(line[7]))) {
      return Include(Trim(line.substr(7)), origin, where);
    }

    std::string_view problem_text = line;
    if (size_t marker = line.find(kDriverMarker); marker != std::string_view::npos) {
      // A logged command: `... ./bin/MIOpenDriver conv -n 1 ...`. Other driver commands
      // (bnorm, pool, gemm, ...) are not convolutions and are skipped.
      problem_text = Trim(line.substr(marker + kDriverMarker.size()));
      if (!problem_text.starts_with("conv")) return Status::Ok();
    } else if (line.starts_with("MIOpen(") || line.starts_with("MIOpen:")) {
      return Status::Ok();  // log chatter around the commands
    }

    // An optional trailing `algo=NAME` names the algorithm the line asks for.
    std::string algorithm;
    if (size_t space = problem_text.find_last_of(" \t");
        space != std::string_view::npos && problem_text.substr(space + 1).starts_with("algo=")) {
      algorithm = std::string(problem_text.substr(space + 1 + 5));
      problem_text = Trim(problem_text.substr(0, space));
      if (algorithm.empty() || !std::all_of(algorithm.begin(), algorithm.end(), IsAlgorithmChar)) {
        return Status::InvalidArgument(where +
                                       ": algo= needs an algorithm name (letters, digits, "
                                       "'_', '-', '.', ':'), got '" +
                                       algorithm + "'");
      }
    }
    StatusOr<Problem> problem = ParseProblem(problem_text);
    if (!problem.ok()) return problem.status().WithContext(where);
    problems_.push_back({*problem, where, std::string(problem_text), std::move(algorithm)});
    return Status::Ok();
  }

  Status Include(std::string_view target, const std::string& origin, const std::string& where) {
    if (target.empty()) {
      return Status::InvalidArgument(where + ": include needs a file name");
    }
    fs::path path(target);
    if (path.is_relative()) path = fs::path(origin).parent_path() / path;
    const std::string name = path.lexically_normal().string();
    const std::string identity = Identity(name);
    for (size_t i = 0; i < chain_.size(); ++i) {
      if (chain_[i].identity != identity) continue;
      std::string cycle;
      for (size_t j = i; j < chain_.size(); ++j) cycle += chain_[j].name + " -> ";
      return Status::InvalidArgument(where + ": include cycle: " + cycle + name);
    }
    StatusOr<std::string> text = ReadWholeFile(name);
    if (!text.ok()) return text.status().WithContext(where);
    Status s = Parse(*text, name, identity);
    if (!s.ok()) return Status(s.code(), s.message() + " (included from " + where + ")");
    return Status::Ok();
  }

  std::vector<ChainEntry> chain_;
  std::vector<ListedProblem> problems_;
};

}  // namespace

StatusOr<std::vector<ListedProblem>> ReadProblemList(const std::string& path) {
  CG_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  ListReader reader;
  CG_RETURN_IF_ERROR(reader.Parse(text, path, Identity(path)));
  return reader.Take();
}

StatusOr<std::vector<ListedProblem>> ParseProblemListText(std::string_view text,
                                                          std::string_view origin) {
  const std::string name(origin);
  ListReader reader;
  CG_RETURN_IF_ERROR(reader.Parse(text, name, Identity(name)));
  return reader.Take();
}

}  // namespace convguard
