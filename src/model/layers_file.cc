// Convolution layers as a framework saw them (convguard/problem_source.h, ReadLayersFile).
//
// The file is written by a program (convguard.torch), so the reader is strict: every
// field has its type, every problem validates, and the first thing wrong is named with
// the layer's index. Untrusted text never reaches a message unescaped: names are cut and
// control bytes replaced.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "convguard/problem_source.h"
#include "convguard/text_forms.h"

namespace convguard {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr size_t kMaxLayersFileBytes = 64 * 1024 * 1024;

// A value from the file, fit for a one-line message.
std::string Shown(std::string_view text) {
  std::string out;
  for (char ch : text.substr(0, 120)) {
    const auto c = static_cast<unsigned char>(ch);
    out += (c < 0x20 || c == 0x7f) ? '?' : ch;
  }
  return text.size() > 120 ? out + "..." : out;
}

}  // namespace

bool LooksLikeLayers(std::string_view bytes) {
  const size_t first = bytes.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && bytes[first] == '{' &&
         bytes.find("\"convguard_layers\"") != std::string_view::npos;
}

StatusOr<ModelConvs> ParseLayers(std::string_view text, const std::string& origin) {
  const std::string where = "layers file '" + origin + "'";
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument(where + " is not a JSON object");
  }
  if (!j.contains("convguard_layers") || !j["convguard_layers"].is_number_integer() ||
      j["convguard_layers"].get<int64_t>() != 1) {
    return Status::InvalidArgument(where + ": \"convguard_layers\" must be 1 (the version this " +
                                   "build reads)");
  }
  ModelConvs out;
  out.format = "layers";
  out.origin = origin;
  if (j.contains("origin")) {
    if (!j["origin"].is_string())
      return Status::InvalidArgument(where + ": \"origin\" must be a string");
    out.origin = j["origin"].get<std::string>();
  }
  if (j.contains("notes")) {
    if (!j["notes"].is_array())
      return Status::InvalidArgument(where + ": \"notes\" must be a list");
    for (const json& n : j["notes"]) {
      if (!n.is_string()) return Status::InvalidArgument(where + ": every note must be a string");
      out.notes.push_back(n.get<std::string>());
    }
  }
  if (!j.contains("layers") || !j["layers"].is_array()) {
    return Status::InvalidArgument(where + ": \"layers\" must be a list of layers");
  }
  int64_t index = 0;
  for (const json& l : j["layers"]) {
    const std::string at = where + ", layer " + std::to_string(index++);
    if (!l.is_object()) return Status::InvalidArgument(at + ": not a JSON object");
    ModelConv conv;
    for (const char* field : {"name", "op"}) {
      if (!l.contains(field) || !l[field].is_string()) {
        return Status::InvalidArgument(at + ": \"" + field + "\" must be a string");
      }
    }
    conv.name = l["name"].get<std::string>();
    conv.op = l["op"].get<std::string>();
    if (l.contains("calls")) {
      if (!l["calls"].is_number_integer() || l["calls"].get<int64_t>() < 1) {
        return Status::InvalidArgument(at + " ('" + Shown(conv.name) +
                                       "'): \"calls\" must be a whole number >= 1");
      }
      conv.calls = l["calls"].get<int64_t>();
    }
    const bool has_problem = l.contains("problem");
    const bool has_unsupported = l.contains("unsupported");
    if (has_problem == has_unsupported) {
      return Status::InvalidArgument(at + " ('" + Shown(conv.name) +
                                     "'): give exactly one of \"problem\" and \"unsupported\"");
    }
    if (has_unsupported) {
      if (!l["unsupported"].is_string() || l["unsupported"].get<std::string>().empty()) {
        return Status::InvalidArgument(at + " ('" + Shown(conv.name) +
                                       "'): \"unsupported\" must be a non-empty reason");
      }
      conv.unsupported = l["unsupported"].get<std::string>();
    } else {
      if (!l["problem"].is_string()) {
        return Status::InvalidArgument(at + " ('" + Shown(conv.name) +
                                       "'): \"problem\" must be a string");
      }
      const std::string problem = l["problem"].get<std::string>();
      StatusOr<Problem> p = ParseProblem(problem);
      if (!p.ok()) {
        return Status::InvalidArgument(at + " ('" + Shown(conv.name) + "'): problem '" +
                                       Shown(problem) + "': " + p.status().message());
      }
      if (Status valid = Validate(*p); !valid.ok()) {
        return Status::InvalidArgument(at + " ('" + Shown(conv.name) + "'): problem '" +
                                       Shown(problem) + "': " + valid.message());
      }
      conv.problem = *p;
    }
    out.convs.push_back(std::move(conv));
  }
  return out;
}

StatusOr<ModelConvs> ReadLayersFile(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) {
    return Status::NotFound("layers file '" + path + "' does not exist");
  }
  if (fs::is_directory(st)) {
    return Status::InvalidArgument("layers file '" + path + "' is a directory, not a file");
  }
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return Status::IOError("cannot read layers file '" + path + "': " + ec.message());
  if (size > kMaxLayersFileBytes) {
    return Status::InvalidArgument("layers file '" + path + "' is larger than 64 MiB");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot open layers file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IOError("error while reading layers file '" + path + "'");
  return ParseLayers(text.str(), path);
}

}  // namespace convguard
