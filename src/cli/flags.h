// cli/flags.h — a small, strict command-line flag parser shared by the subcommands.
//
// Flags are "--name VALUE", "--name=VALUE" or boolean "--name"; a flag may have a short
// alias ("-h"). Unknown flags, missing values and repeated non-repeatable flags are
// errors naming the flag and listing what is allowed. "--" ends the flags.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "convguard/status.h"

namespace convguard::cli {

struct FlagSpec {
  // A constructor rather than an aggregate: most flags leave the last two at their defaults.
  FlagSpec(std::string name, std::string value_name, std::string help, bool repeatable = false,
           std::string alias = "")
      : name(std::move(name)),
        value_name(std::move(value_name)),
        help(std::move(help)),
        repeatable(repeatable),
        alias(std::move(alias)) {}

  std::string name;        // "--backend"
  std::string value_name;  // "NAME"; empty for a boolean flag
  std::string help;        // one line (wrapped by the caller's text if longer)
  bool repeatable = false;
  std::string alias;  // "-h"
};

class FlagParser {
 public:
  FlagParser(std::string command, std::vector<FlagSpec> specs);

  Status Parse(const std::vector<std::string>& args);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  // The (last) value of a flag, or `fallback` when absent.
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> GetAll(const std::string& name) const;
  const std::vector<std::string>& positionals() const { return positionals_; }

  // The option lines for --help.
  std::string OptionsHelp() const;

 private:
  const FlagSpec* Find(const std::string& name) const;

  std::string command_;
  std::vector<FlagSpec> specs_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positionals_;
};

// Parses a number for `flag`, checking it lies in [lo, hi]; the message names both.
StatusOr<int64_t> ParseIntFlag(const std::string& flag, const std::string& text, int64_t lo,
                               int64_t hi);
StatusOr<double> ParseDoubleFlag(const std::string& flag, const std::string& text, double lo,
                                 double hi);

}  // namespace convguard::cli
