// convguard db push / db pull. Contract: cli/db_transfer.h.
#include "cli/db_transfer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "cli/probe_common.h"
#include "convguard/exit_status.h"
#include "convguard/store.h"
#include "convguard/store_transfer.h"
#include "os/system.h"

namespace convguard::cli {
namespace {

namespace fs = std::filesystem;

// Keys listed on stderr without --long.
constexpr size_t kConflictsShown = 5;
// A progress line every this many records of a stack (and one as each stack starts).
constexpr int64_t kProgressEvery = 10000;

// 1234567 -> "1,234,567".
std::string Thousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string Plural(int64_t n, const char* one, const char* many) {
  return Thousands(n) + " " + (n == 1 ? one : many);
}

// Whether two targets name one store: the same text, or paths of the same file. (Two
// spellings of one PostgreSQL database are not told apart; a transfer into the store
// itself would add nothing anyway.)
bool SameStore(const std::string& a, const std::string& b) {
  if (a == b) return true;
  if (IsPostgresStoreTarget(a) || IsPostgresStoreTarget(b)) return false;
  std::error_code ec;
  if (fs::equivalent(a, b, ec)) return true;  // both exist: hard and symbolic links too
  const fs::path canonical_a = fs::weakly_canonical(a, ec);
  if (ec) return false;
  const fs::path canonical_b = fs::weakly_canonical(b, ec);
  return !ec && canonical_a == canonical_b;
}

// A store copied from must exist: opening a missing file would create an empty store.
Status CheckSourceFile(const std::string& target, const std::string& role) {
  if (IsPostgresStoreTarget(target)) return Status::Ok();
  std::error_code ec;
  const fs::file_status st = fs::status(target, ec);
  if (!fs::exists(st)) {
    return Status::InvalidArgument("no store at '" + target + "' (" + role +
                                   "); allowed an existing SQLite store file or a PostgreSQL "
                                   "connection string");
  }
  if (fs::is_directory(st)) {
    return Status::InvalidArgument("'" + target + "' (" + role +
                                   ") is a folder; allowed an SQLite store file or a "
                                   "PostgreSQL connection string");
  }
  return Status::Ok();
}

// A file pushed into may be new, but its folder must exist: a typo is not a place to
// create folders in.
Status CheckDestinationFile(const std::string& target) {
  if (IsPostgresStoreTarget(target)) return Status::Ok();
  std::error_code ec;
  if (fs::is_directory(target, ec)) {
    return Status::InvalidArgument("TARGET '" + target +
                                   "' is a folder; allowed an SQLite store file (existing or "
                                   "new) or a PostgreSQL connection string");
  }
  const fs::path parent = fs::path(target).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    return Status::InvalidArgument("the folder of TARGET '" + target +
                                   "' does not exist; create it first or name a file in an "
                                   "existing folder");
  }
  return Status::Ok();
}

// How the destination's conflict history names where a verdict came from: a file with
// its host (two hosts' files of one name are different stores), a server without its
// password.
std::string SourceLabel(const std::string& target) {
  if (IsPostgresStoreTarget(target)) return StoreTargetLabel(target);
  std::error_code ec;
  const fs::path absolute = fs::absolute(target, ec);
  return os::Hostname() + ":" + (ec ? target : absolute.lexically_normal().string());
}

std::string CountsLine(const char* what, const MergeCounts& c) {
  char line[256];
  std::snprintf(line, sizeof line, "  %-18s %s new, %s already there", what,
                Thousands(c.added).c_str(), Thousands(c.already).c_str());
  return line;
}

void PrintReport(const std::string& heading, const TransferReport& r) {
  const MergeReport& m = r.merged;
  std::printf("%s\n", heading.c_str());
  std::printf("%s\n", CountsLine("stacks:", m.stacks).c_str());
  std::printf("%s, %s\n", CountsLine("verdicts:", m.verdicts).c_str(),
              Plural(static_cast<int64_t>(m.conflicts.size()), "conflict", "conflicts").c_str());
  std::printf("%s\n", CountsLine("attempts:", m.attempts).c_str());
  std::printf("%s\n", CountsLine("sequence verdicts:", m.sequence_verdicts).c_str());
}

void PrintConflicts(const TransferReport& r, const std::string& action,
                    const std::string& destination, bool prefer_incoming, bool all) {
  const MergeReport& m = r.merged;
  if (m.conflicts.empty()) return;
  std::fprintf(stderr,
               "%s: the two stores hold different verdicts for these keys; both are kept.\n",
               Plural(static_cast<int64_t>(m.conflicts.size()), "conflict", "conflicts").c_str());
  if (prefer_incoming) {
    std::fprintf(stderr,
                 "The incoming verdict is now current in %s; the one it held is in its history "
                 "(outcome \"superseded\").\n",
                 destination.c_str());
  } else {
    std::fprintf(stderr,
                 "%s keeps its verdict current; the incoming one is in its history (outcome "
                 "\"conflict\"): %s recorded now, %s by an earlier %s. --prefer-incoming makes "
                 "the incoming ones current.\n",
                 destination.c_str(), Thousands(m.conflicts_recorded).c_str(),
                 Thousands(m.conflicts_already_recorded).c_str(), action.c_str());
  }
  const size_t shown = all ? m.conflicts.size() : std::min(m.conflicts.size(), kConflictsShown);
  for (size_t i = 0; i < shown; ++i) {
    const VerdictKey& k = m.conflicts[i];
    std::fprintf(stderr, "  %s %s %s\n", k.stack_id.c_str(), k.problem.c_str(),
                 k.algorithm.c_str());
  }
  if (shown < m.conflicts.size()) {
    std::fprintf(stderr, "  ... and %s more (--long lists them all)\n",
                 Thousands(static_cast<int64_t>(m.conflicts.size() - shown)).c_str());
  }
}

}  // namespace

int DbTransferMain(const FlagParser& flags, const std::string& action,
                   const std::vector<std::string>& rest) {
  const bool push = action == "push";
  const std::string other_name = push ? "TARGET" : "SOURCE";
  auto bad_input = [&action](const std::string& message) {
    std::fprintf(stderr, "convguard db %s: %s\n", action.c_str(), message.c_str());
    return kExitBadInput;
  };
  for (const char* flag : {"--verdict", "--problem", "--limit", "--replace"}) {
    if (flags.Has(flag)) {
      return bad_input(std::string(flag) + " does not apply to " + action +
                       " (allowed: --db, --stack, --prefer-incoming, --long)");
    }
  }
  if (rest.size() != 1 || rest.front().empty()) {
    return bad_input("give exactly one " + other_name + ", the store to copy " +
                     (push ? "into" : "from") +
                     ": a PostgreSQL connection string (service=NAME, postgresql://HOST/DB, "
                     "...) or an SQLite file");
  }
  const std::string local = StorePathFromFlags(flags);
  const std::string& other = rest.front();
  if (SameStore(local, other)) {
    return bad_input(other_name + " '" + StoreTargetLabel(other) +
                     "' is the local store itself (--db, $CONVGUARD_DB or the default); " + action +
                     " copies between two different stores");
  }
  const std::string& source = push ? local : other;
  const std::string& destination = push ? other : local;
  if (Status s = CheckSourceFile(source, push ? "the local store, --db" : "SOURCE"); !s.ok()) {
    return bad_input(s.message());
  }
  if (push) {
    if (Status s = CheckDestinationFile(other); !s.ok()) return bad_input(s.message());
  }

  auto fail = [&action](const Status& s) {
    std::fprintf(stderr, "convguard db %s: %s\n", action.c_str(), s.message().c_str());
    return s.code() == StatusCode::kInvalidArgument ? kExitBadInput : kExitFailure;
  };
  // The source first: when it cannot be opened, nothing has been created or written.
  StatusOr<std::unique_ptr<Store>> from = push ? OpenStoreFromFlags(flags) : OpenStore(other);
  if (!from.ok()) return fail(from.status());
  TransferOptions options;
  if (flags.Has("--stack")) {
    options.stack_id = flags.Get("--stack");
    StatusOr<std::optional<StackFingerprint>> stack = (*from)->GetStack(*options.stack_id);
    if (!stack.ok()) return fail(stack.status());
    if (!stack->has_value()) {
      return bad_input("stack " + *options.stack_id + " is not in " + StoreTargetLabel(source) +
                       " ('convguard db stacks --db ...' lists the stacks a store holds)");
    }
  }
  StatusOr<std::unique_ptr<Store>> to = push ? OpenStore(other) : OpenStoreFromFlags(flags);
  if (!to.ok()) return fail(to.status());

  options.source_label = SourceLabel(source);
  options.prefer_incoming = flags.Has("--prefer-incoming");
  options.progress = [&action, last_line = int64_t{0}](const TransferProgress& p) mutable {
    if (p.records_done == 0) {
      std::fprintf(stderr, "%s: stack %s (%d of %d): %s\n", action.c_str(), p.stack_id.c_str(),
                   p.stack_number, p.stacks, Plural(p.records, "record", "records").c_str());
      last_line = 0;
    } else if (p.records_done / kProgressEvery > last_line / kProgressEvery) {
      std::fprintf(stderr, "%s: stack %s: %s of %s records merged\n", action.c_str(),
                   p.stack_id.c_str(), Thousands(p.records_done).c_str(),
                   Thousands(p.records).c_str());
      last_line = p.records_done;
    }
  };

  TransferReport report;
  const Status s = TransferStore(**from, **to, options, &report);
  const std::string destination_label = StoreTargetLabel(destination);
  std::string heading =
      push ? "pushed into " + destination_label
           : "pulled from " + StoreTargetLabel(source) + " into " + destination_label;
  heading += ": " + Plural(report.stacks_done, "stack", "stacks") + " in " +
             Plural(report.transactions, "transaction", "transactions");
  if (!s.ok()) {
    heading = action + " stopped by an error; committed before it (" +
              Plural(report.transactions, "transaction", "transactions") + ", " +
              Plural(report.stacks_done, "stack", "stacks") + " complete):";
  }
  PrintReport(heading, report);
  std::fflush(stdout);
  PrintConflicts(report, action, destination_label, options.prefer_incoming, flags.Has("--long"));
  if (!s.ok()) return fail(s);
  return kExitOk;
}

}  // namespace convguard::cli
