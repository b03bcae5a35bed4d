// JSON Lines export and import over JsonLinesStorage. Contract: jsonl.h; format and
// import rules: docs/store.md.
#include "store/jsonl.h"

#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "core/json_records.h"
#include "os/system.h"
#include "store/stored_records.h"

namespace convguard {
namespace {

using nlohmann::json;

std::string KeyText(const VerdictKey& k) {
  return k.stack_id + " / " + k.problem + " / " + k.algorithm;
}

// One line of an export: a record plus the envelope field that says what it is.
void AppendLine(json line, const char* type, std::string& out) {
  line["type"] = type;
  out += DumpJson(line);
  out += '\n';
}

// Validates one line of an import; adds what it holds to `input`. `verdict_lines` holds
// the line of every key seen so far.
Status ParseImportLine(std::string_view text, int line, JsonLinesImport& input,
                       std::map<std::vector<std::string>, int>& verdict_lines) {
  CG_ASSIGN_OR_RETURN(json j, ParseJson(text));
  if (!j.is_object()) return Status::InvalidArgument("expected a JSON object");
  auto type_it = j.find("type");
  if (type_it == j.end() || !type_it->is_string()) {
    return Status::InvalidArgument(
        "field 'type' is missing or not a string; allowed "
        "\"stack\", \"verdict\"");
  }
  const std::string type = type_it->get<std::string>();
  j.erase("type");
  if (type == "stack") {
    JsonLinesImport::StackLine s;
    s.line = line;
    std::string id;
    for (auto [name, out] : {std::pair<const char*, std::string*>{"id", &id},
                             {"first_seen", &s.first_seen},
                             {"last_seen", &s.last_seen}}) {
      auto it = j.find(name);
      if (it == j.end()) continue;
      if (!it->is_string()) {
        return Status::InvalidArgument("field '" + std::string(name) + "': expected a string");
      }
      *out = it->get<std::string>();
      j.erase(it);
    }
    CG_ASSIGN_OR_RETURN(s.fingerprint, StackFromJson(j));
    const std::string computed = s.fingerprint.Id();
    if (!id.empty() && id != computed) {
      return Status::InvalidArgument("stack id " + id + " does not match its fingerprint (" +
                                     computed + ")");
    }
    auto [it, inserted] = input.stacks.try_emplace(computed, s);
    if (!inserted) {
      if (!SameIdentity(it->second.fingerprint, s.fingerprint)) {
        return Status::InvalidArgument("stack " + computed +
                                       " differs from the stack of the same id on line " +
                                       std::to_string(it->second.line));
      }
      // The same stack twice (concatenated exports).
      JsonLinesImport::StackLine& merged = it->second;
      if (!s.first_seen.empty() &&
          (merged.first_seen.empty() || s.first_seen < merged.first_seen)) {
        merged.first_seen = s.first_seen;
      }
      if (s.last_seen > merged.last_seen) merged.last_seen = s.last_seen;
    }
    return Status::Ok();
  }
  if (type == "verdict") {
    CG_ASSIGN_OR_RETURN(Verdict v, VerdictFromJson(j));
    auto [it, inserted] = verdict_lines.try_emplace({v.stack_id, v.problem, v.algorithm}, line);
    if (!inserted) {
      return Status::InvalidArgument("a second verdict for " + KeyText(KeyOf(v)) +
                                     " (the first is on line " + std::to_string(it->second) + ")");
    }
    input.verdicts.push_back({line, std::move(v)});
    return Status::Ok();
  }
  return Status::InvalidArgument("field 'type': unknown record type '" + type +
                                 "'; allowed \"stack\", \"verdict\"");
}

}  // namespace

StatusOr<std::string> DumpJsonLines(JsonLinesStorage& storage, const VerdictFilter& filter) {
  CG_ASSIGN_OR_RETURN(std::vector<Verdict> verdicts, storage.SelectVerdicts(filter));
  const bool everything = !filter.stack_id && !filter.kind && !filter.problem && filter.limit == -1;
  std::optional<std::set<std::string>> stack_ids;
  if (!everything) {
    stack_ids.emplace();
    for (const Verdict& v : verdicts) stack_ids->insert(v.stack_id);
    if (filter.stack_id) stack_ids->insert(*filter.stack_id);
  }
  CG_ASSIGN_OR_RETURN(std::vector<StoredStack> stacks, storage.SelectStacks(stack_ids));

  std::string out;
  for (const StoredStack& s : stacks) {
    json line = ToJson(s.fingerprint);
    line["id"] = s.id;
    line["first_seen"] = s.first_seen;
    line["last_seen"] = s.last_seen;
    AppendLine(std::move(line), "stack", out);
  }
  for (const Verdict& v : verdicts) AppendLine(ToJson(v), "verdict", out);
  return out;
}

StatusOr<JsonLinesImport> ParseJsonLines(const std::string& text) {
  JsonLinesImport input;
  std::map<std::vector<std::string>, int> verdict_lines;
  int line = 0;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view content(text.data() + start, end - start);
    start = end + 1;
    ++line;
    if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
    if (content.find_first_not_of(" \t") == std::string_view::npos) continue;
    Status s = ParseImportLine(content, line, input, verdict_lines);
    if (!s.ok()) return Status(s.code(), "line " + std::to_string(line) + ": " + s.message());
  }
  return input;
}

StatusOr<ImportReport> ApplyJsonLines(JsonLinesStorage& storage, const JsonLinesImport& input,
                                      bool replace) {
  // Against the store, under the caller's write lock; nothing is written before all passed.
  for (const auto& [id, s] : input.stacks) {
    CG_ASSIGN_OR_RETURN(std::optional<StoredStack> stored, storage.ReadStack(id));
    if (stored && !SameIdentity(stored->fingerprint, s.fingerprint)) {
      return Status::InvalidArgument("line " + std::to_string(s.line) + ": stack " + id +
                                     " differs from the stack stored under the same id");
    }
  }
  for (const JsonLinesImport::VerdictLine& v : input.verdicts) {
    if (input.stacks.contains(v.verdict.stack_id)) continue;
    CG_ASSIGN_OR_RETURN(bool known, storage.HasStack(v.verdict.stack_id));
    if (!known) {
      return Status::InvalidArgument("line " + std::to_string(v.line) +
                                     ": verdict refers to stack " + v.verdict.stack_id +
                                     ", which is neither in the input nor in the store");
    }
  }

  const std::string now = os::UtcNowIso8601();
  for (const auto& [id, s] : input.stacks) {
    const std::string& first = s.first_seen.empty() ? now : s.first_seen;
    const std::string& last = s.last_seen.empty() ? first : s.last_seen;
    CG_RETURN_IF_ERROR(storage.WriteStack(s.fingerprint, first, last));
  }
  ImportReport report;
  for (const JsonLinesImport::VerdictLine& line_verdict : input.verdicts) {
    const Verdict& v = line_verdict.verdict;
    const std::string record = VerdictRecord(v);
    CG_ASSIGN_OR_RETURN(std::optional<std::string> old, storage.ReadVerdictRecord(KeyOf(v)));
    if (old) {
      if (SameVerdict(*old, record)) {
        ++report.identical;
        continue;
      }
      if (!replace) {
        ++report.kept_existing;
        continue;
      }
      ++report.replaced;
    } else {
      ++report.inserted;
    }
    CG_RETURN_IF_ERROR(storage.WriteVerdict(v, record, old));
  }
  return report;
}

}  // namespace convguard
