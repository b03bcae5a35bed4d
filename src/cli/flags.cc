#include "cli/flags.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>

namespace convguard::cli {

FlagParser::FlagParser(std::string command, std::vector<FlagSpec> specs)
    : command_(std::move(command)), specs_(std::move(specs)) {}

const FlagSpec* FlagParser::Find(const std::string& name) const {
  for (const FlagSpec& s : specs_) {
    if (s.name == name || (!s.alias.empty() && s.alias == name)) return &s;
  }
  return nullptr;
}

Status FlagParser::Parse(const std::vector<std::string>& args) {
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (flags_done || a.size() < 2 || a[0] != '-' ||
        (a[1] != '-' && !std::isalpha(static_cast<unsigned char>(a[1])))) {
      positionals_.push_back(a);
      continue;
    }
    if (a == "--") {
      flags_done = true;
      continue;
    }
    std::string name = a;
    std::optional<std::string> inline_value;
    if (const size_t eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
      name = a.substr(0, eq);
      inline_value = a.substr(eq + 1);
    }
    const FlagSpec* spec = Find(name);
    if (spec == nullptr) {
      std::string allowed;
      for (const FlagSpec& s : specs_) allowed += (allowed.empty() ? "" : ", ") + s.name;
      return Status::InvalidArgument("unknown option '" + name + "' (allowed: " + allowed + ")");
    }
    if (!spec->repeatable && values_.count(spec->name) > 0) {
      return Status::InvalidArgument("option " + spec->name + " given twice");
    }
    std::string value;
    if (spec->value_name.empty()) {
      if (inline_value) return Status::InvalidArgument("option " + spec->name + " takes no value");
    } else if (inline_value) {
      value = *inline_value;
    } else {
      if (i + 1 >= args.size()) {
        return Status::InvalidArgument("option " + spec->name + " needs a value (" +
                                       spec->value_name + ")");
      }
      value = args[++i];
    }
    values_[spec->name].push_back(value);
  }
  return Status::Ok();
}

std::string FlagParser::Get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() || it->second.empty() ? fallback : it->second.back();
}

std::vector<std::string> FlagParser::GetAll(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string FlagParser::OptionsHelp() const {
  std::string out;
  for (const FlagSpec& s : specs_) {
    std::string left = "  " + (s.alias.empty() ? "" : s.alias + ", ") + s.name;
    if (!s.value_name.empty()) left += " " + s.value_name;
    if (left.size() < 26) {
      left.resize(26, ' ');
    } else {
      left += "\n" + std::string(26, ' ');
    }
    out += left + s.help + "\n";
  }
  return out;
}

StatusOr<int64_t> ParseIntFlag(const std::string& flag, const std::string& text, int64_t lo,
                               int64_t hi) {
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return Status::InvalidArgument(flag + " '" + text + "' is not an integer (allowed: " +
                                   std::to_string(lo) + ".." + std::to_string(hi) + ")");
  }
  if (v < lo || v > hi) {
    return Status::InvalidArgument(flag + " " + text + " is out of range (allowed: " +
                                   std::to_string(lo) + ".." + std::to_string(hi) + ")");
  }
  return v;
}

StatusOr<double> ParseDoubleFlag(const std::string& flag, const std::string& text, double lo,
                                 double hi) {
  double v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  char range[96];
  std::snprintf(range, sizeof range, "%g..%g", lo, hi);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(v)) {
    return Status::InvalidArgument(flag + " '" + text + "' is not a number (allowed: " + range +
                                   ")");
  }
  if (v < lo || v > hi) {
    return Status::InvalidArgument(flag + " " + text + " is out of range (allowed: " + range + ")");
  }
  return v;
}

}  // namespace convguard::cli
