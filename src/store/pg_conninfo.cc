// Reading a libpq connection string's secrets. Contract: pg_conninfo.h.
#include "store/pg_conninfo.h"

#include <algorithm>
#include <vector>

namespace convguard::pg {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecoded(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct Span {
  size_t pos = 0;
  size_t len = 0;
};

// Where the passwords of `conninfo` are, as written. Reads the two forms as libpq does
// (its URI parser ends the credentials at the first '@' before any '/'); a string it
// cannot read to the end is still scanned as far as it goes.
std::vector<Span> SecretSpans(std::string_view conninfo) {
  std::vector<Span> spans;
  for (std::string_view scheme : {"postgresql://", "postgres://"}) {
    if (!StartsWith(conninfo, scheme)) continue;
    const size_t start = scheme.size();
    size_t end = start;
    while (end < conninfo.size() && conninfo[end] != '@' && conninfo[end] != '/') ++end;
    if (end < conninfo.size() && conninfo[end] == '@') {
      const size_t colon = conninfo.find(':', start);
      if (colon < end) spans.push_back({colon + 1, end - colon - 1});
    }
    const size_t query = conninfo.find('?', start);
    if (query == std::string_view::npos) return spans;
    size_t p = query + 1;
    while (p <= conninfo.size()) {
      size_t amp = conninfo.find('&', p);
      if (amp == std::string_view::npos) amp = conninfo.size();
      const std::string_view pair = conninfo.substr(p, amp - p);
      const size_t eq = pair.find('=');
      if (eq != std::string_view::npos && PercentDecoded(pair.substr(0, eq)) == "password") {
        spans.push_back({p + eq + 1, pair.size() - eq - 1});
      }
      p = amp + 1;
    }
    return spans;
  }
  // keyword = value pairs; a value is bare or single-quoted with backslash escapes.
  size_t p = 0;
  auto skip_spaces = [&] {
    while (p < conninfo.size() && (conninfo[p] == ' ' || conninfo[p] == '\t' ||
                                   conninfo[p] == '\n' || conninfo[p] == '\r')) {
      ++p;
    }
  };
  while (true) {
    skip_spaces();
    if (p >= conninfo.size()) return spans;
    const size_t key_start = p;
    while (p < conninfo.size() && conninfo[p] != '=' && conninfo[p] != ' ' && conninfo[p] != '\t') {
      ++p;
    }
    const std::string_view key = conninfo.substr(key_start, p - key_start);
    skip_spaces();
    if (p >= conninfo.size() || conninfo[p] != '=') return spans;
    ++p;
    skip_spaces();
    const size_t value_start = p;
    if (p < conninfo.size() && conninfo[p] == '\'') {
      ++p;
      while (p < conninfo.size() && conninfo[p] != '\'') p += conninfo[p] == '\\' ? 2 : 1;
      p = std::min(p + 1, conninfo.size());
    } else {
      while (p < conninfo.size() && conninfo[p] != ' ' && conninfo[p] != '\t' &&
             conninfo[p] != '\n' && conninfo[p] != '\r') {
        p += conninfo[p] == '\\' ? 2 : 1;
      }
      p = std::min(p, conninfo.size());
    }
    if (key == "password") spans.push_back({value_start, p - value_start});
  }
}

std::string ReplaceAll(std::string text, std::string_view what, std::string_view with) {
  if (what.empty()) return text;
  for (size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + with.size())) {
    text.replace(at, what.size(), with);
  }
  return text;
}

}  // namespace

bool IsConnectionString(std::string_view target) {
  return StartsWith(target, "postgresql://") || StartsWith(target, "postgres://") ||
         target.find('=') != std::string_view::npos;
}

std::string ScrubSecrets(std::string text, std::string_view conninfo) {
  for (const Span& span : SecretSpans(conninfo)) {
    const std::string_view secret = conninfo.substr(span.pos, span.len);
    std::string bare(secret);
    if (bare.size() >= 2 && bare.front() == '\'' && bare.back() == '\'') {
      bare = bare.substr(1, bare.size() - 2);
    }
    std::string unescaped;
    for (size_t i = 0; i < bare.size(); ++i) {
      if (bare[i] == '\\' && i + 1 < bare.size()) ++i;
      unescaped += bare[i];
    }
    for (const std::string& form : {std::string(secret), bare, unescaped, PercentDecoded(secret)}) {
      text = ReplaceAll(std::move(text), form, "***");
    }
  }
  return text;
}

std::string RedactConnectionString(std::string_view conninfo) {
  std::string out(conninfo);
  std::vector<Span> spans = SecretSpans(conninfo);
  for (auto it = spans.rbegin(); it != spans.rend(); ++it) out.replace(it->pos, it->len, "***");
  return out;
}

}  // namespace convguard::pg
