// Grid specs: `key=values` tokens expanded into the cartesian product of problems.
// Grammar and order are documented in convguard/problem_source.h.
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <vector>

#include "convguard/problem.h"
#include "convguard/problem_source.h"
#include "convguard/status.h"

namespace convguard {
namespace {

// In expansion order: the first key varies slowest, the last fastest.
enum class Key {
  kN,
  kC,
  kH,
  kHW,
  kW,
  kK,
  kR,
  kRS,
  kS,
  kP,
  kPH,
  kPW,
  kPT,
  kPL,
  kPB,
  kPR,
  kU,
  kUH,
  kUW,
  kD,
  kDH,
  kDW,
  kG,
  kBias,
  kDtype,
  kLayout,
  kDir,
  kCount,
};
constexpr size_t kKeyCount = static_cast<size_t>(Key::kCount);

enum class ValueKind {
  kNumber,        // non-negative integers and ranges
  kNumberOrSame,  // numbers, or `same` (pads derived from the kernel)
  kBit,           // 0 or 1
  kDtype,
  kLayout,
  kDir,
};

struct KeyInfo {
  Key key;
  std::string_view name;
  ValueKind kind;
};

constexpr std::array<KeyInfo, kKeyCount> kKeys = {{
    {Key::kN, "n", ValueKind::kNumber},         {Key::kC, "c", ValueKind::kNumber},
    {Key::kH, "h", ValueKind::kNumber},         {Key::kHW, "hw", ValueKind::kNumber},
    {Key::kW, "w", ValueKind::kNumber},         {Key::kK, "k", ValueKind::kNumber},
    {Key::kR, "r", ValueKind::kNumber},         {Key::kRS, "rs", ValueKind::kNumber},
    {Key::kS, "s", ValueKind::kNumber},         {Key::kP, "p", ValueKind::kNumberOrSame},
    {Key::kPH, "ph", ValueKind::kNumberOrSame}, {Key::kPW, "pw", ValueKind::kNumberOrSame},
    {Key::kPT, "pt", ValueKind::kNumber},       {Key::kPL, "pl", ValueKind::kNumber},
    {Key::kPB, "pb", ValueKind::kNumber},       {Key::kPR, "pr", ValueKind::kNumber},
    {Key::kU, "u", ValueKind::kNumber},         {Key::kUH, "uh", ValueKind::kNumber},
    {Key::kUW, "uw", ValueKind::kNumber},       {Key::kD, "d", ValueKind::kNumber},
    {Key::kDH, "dh", ValueKind::kNumber},       {Key::kDW, "dw", ValueKind::kNumber},
    {Key::kG, "g", ValueKind::kNumber},         {Key::kBias, "bias", ValueKind::kBit},
    {Key::kDtype, "dtype", ValueKind::kDtype},  {Key::kLayout, "layout", ValueKind::kLayout},
    {Key::kDir, "dir", ValueKind::kDir},
}};

// Pairs of keys that set the same field; at most one of each pair may be given.
constexpr std::array<std::pair<Key, Key>, 18> kOverlaps = {{
    {Key::kHW, Key::kH},
    {Key::kHW, Key::kW},
    {Key::kRS, Key::kR},
    {Key::kRS, Key::kS},
    {Key::kP, Key::kPH},
    {Key::kP, Key::kPW},
    {Key::kP, Key::kPT},
    {Key::kP, Key::kPL},
    {Key::kP, Key::kPB},
    {Key::kP, Key::kPR},
    {Key::kPH, Key::kPT},
    {Key::kPH, Key::kPB},
    {Key::kPW, Key::kPL},
    {Key::kPW, Key::kPR},
    {Key::kU, Key::kUH},
    {Key::kU, Key::kUW},
    {Key::kD, Key::kDH},
    {Key::kD, Key::kDW},
}};

// Stands for `same` among the values of p, ph and pw (real values are >= 0).
constexpr int64_t kSame = -1;

const KeyInfo& Info(Key key) { return kKeys[static_cast<size_t>(key)]; }

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string AllowedKeys() {
  std::string out;
  for (const KeyInfo& k : kKeys) {
    if (!out.empty()) out += ' ';
    out += k.name;
  }
  return out;
}

// The names a symbolic key accepts, in the order of their enum values.
std::vector<std::string_view> SymbolNames(ValueKind kind) {
  switch (kind) {
    case ValueKind::kDtype:
      return {DataTypeName(DataType::kF32), DataTypeName(DataType::kF16),
              DataTypeName(DataType::kBF16)};
    case ValueKind::kLayout: return {LayoutName(Layout::kNCHW), LayoutName(Layout::kNHWC)};
    case ValueKind::kDir:
      return {DirectionName(Direction::kForward), DirectionName(Direction::kBackwardData),
              DirectionName(Direction::kBackwardWeights)};
    default: return {};
  }
}

std::string JoinNames(const std::vector<std::string_view>& names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// One comma-separated item of a key's values, not yet expanded.
struct Item {
  enum class Kind { kSingle, kArithmetic, kGeometric } kind = Kind::kSingle;
  int64_t first = 0;
  int64_t last = 0;
  int64_t step = 1;  // the increment, or the factor of a geometric range

  int64_t Count() const {
    switch (kind) {
      case Kind::kSingle: return 1;
      case Kind::kArithmetic: {
        // 0 <= first <= last, so the difference cannot overflow; the + 1 can, for
        // 0..INT64_MAX, and then the count saturates and the grid is rejected as too large.
        int64_t count = 0;
        if (__builtin_add_overflow((last - first) / step, 1, &count)) {
          return std::numeric_limits<int64_t>::max();
        }
        return count;
      }
      case Kind::kGeometric: {
        int64_t count = 0;
        for (int64_t v = first;;) {
          ++count;
          if (__builtin_mul_overflow(v, step, &v) || v > last) break;
        }
        return count;
      }
    }
    return 0;
  }

  void AppendTo(std::vector<int64_t>& out) const {
    switch (kind) {
      case Kind::kSingle: out.push_back(first); return;
      case Kind::kArithmetic:
        // Stepping from first by step never passes last + step, and last <= INT64_MAX,
        // so test before adding to avoid overflow.
        for (int64_t v = first;; v += step) {
          out.push_back(v);
          if (last - v < step) break;
        }
        return;
      case Kind::kGeometric:
        for (int64_t v = first;;) {
          out.push_back(v);
          if (__builtin_mul_overflow(v, step, &v) || v > last) break;
        }
        return;
    }
  }
};

struct Axis {
  Key key;
  std::string token;  // as written, for messages
  std::vector<Item> items;
  int64_t count = 0;
  std::vector<int64_t> values;  // filled only once the grid size is accepted
};

Status KeyError(std::string_view token, const std::string& what) {
  return Status::InvalidArgument("grid " + Quote(token) + ": " + what);
}

StatusOr<int64_t> ParseNumber(std::string_view token, std::string_view text) {
  int64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (text.empty()) return KeyError(token, "empty value");
  if (text[0] == '-' || text[0] == '+') {
    return KeyError(token, Quote(text) + " is not a non-negative integer");
  }
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec == std::errc::result_out_of_range) {
    return KeyError(token, Quote(text) + " does not fit in 64 bits");
  }
  if (ec != std::errc() || ptr != end) {
    return KeyError(token, Quote(text) + " is not a non-negative integer");
  }
  return value;
}

// Parses one numeric item: `v`, `a..b`, `a..b:step` or `a..b:*factor`.
StatusOr<Item> ParseNumericItem(std::string_view token, std::string_view text) {
  Item item;
  const size_t dots = text.find("..");
  if (dots == std::string_view::npos) {
    CG_ASSIGN_OR_RETURN(item.first, ParseNumber(token, text));
    item.last = item.first;
    return item;
  }
  std::string_view first_text = text.substr(0, dots);
  std::string_view rest = text.substr(dots + 2);
  std::string_view last_text = rest;
  std::string_view step_text;
  const size_t colon = rest.find(':');
  item.kind = Item::Kind::kArithmetic;
  if (colon != std::string_view::npos) {
    last_text = rest.substr(0, colon);
    step_text = rest.substr(colon + 1);
    if (!step_text.empty() && step_text[0] == '*') {
      item.kind = Item::Kind::kGeometric;
      step_text.remove_prefix(1);
    }
    if (step_text.empty()) return KeyError(token, "range " + Quote(text) + " has an empty step");
  }
  CG_ASSIGN_OR_RETURN(item.first, ParseNumber(token, first_text));
  CG_ASSIGN_OR_RETURN(item.last, ParseNumber(token, last_text));
  if (!step_text.empty()) {
    CG_ASSIGN_OR_RETURN(item.step, ParseNumber(token, step_text));
  }
  if (item.first > item.last) {
    return KeyError(token, "bad range " + Quote(text) + ": start " + std::to_string(item.first) +
                               " is above end " + std::to_string(item.last));
  }
  if (item.kind == Item::Kind::kArithmetic && item.step == 0) {
    return KeyError(token, "range " + Quote(text) + " has a zero step");
  }
  if (item.kind == Item::Kind::kGeometric) {
    if (item.step < 2) {
      return KeyError(token, "geometric range " + Quote(text) +
                                 " needs a factor of at least 2, got " + std::to_string(item.step));
    }
    if (item.first == 0) {
      return KeyError(token, "geometric range " + Quote(text) + " must start above 0");
    }
  }
  return item;
}

StatusOr<Item> ParseItem(const KeyInfo& info, std::string_view token, std::string_view text) {
  if (text.empty()) return KeyError(token, "empty item in the value list");
  switch (info.kind) {
    case ValueKind::kNumberOrSame:
      if (text == "same") return Item{Item::Kind::kSingle, kSame, kSame, 1};
      [[fallthrough]];
    case ValueKind::kNumber:
      if (text == "same") {
        return KeyError(token, "'same' is allowed only for p, ph and pw");
      }
      return ParseNumericItem(token, text);
    case ValueKind::kBit: {
      CG_ASSIGN_OR_RETURN(Item item, ParseNumericItem(token, text));
      if (item.last > 1) {
        return KeyError(token, Quote(text) + " is not allowed; bias is 0 or 1");
      }
      return item;
    }
    case ValueKind::kDtype:
    case ValueKind::kLayout:
    case ValueKind::kDir: {
      const std::vector<std::string_view> names = SymbolNames(info.kind);
      for (size_t i = 0; i < names.size(); ++i) {
        if (text == names[i]) {
          const auto v = static_cast<int64_t>(i);
          return Item{Item::Kind::kSingle, v, v, 1};
        }
      }
      return KeyError(token, Quote(text) + " is not a " + std::string(info.name) +
                                 " (allowed: " + JoinNames(names) + ")");
    }
  }
  return Status::Internal("unhandled grid value kind");
}

std::string ValueText(Key key, int64_t v) {
  const ValueKind kind = Info(key).kind;
  if (kind == ValueKind::kNumberOrSame && v == kSame) return "same";
  if (kind == ValueKind::kDtype || kind == ValueKind::kLayout || kind == ValueKind::kDir) {
    return std::string(SymbolNames(kind)[static_cast<size_t>(v)]);
  }
  return std::to_string(v);
}

// Parses the spec into axes ordered by key, checking keys, overlaps and requirements.
StatusOr<std::vector<Axis>> ParseSpec(std::string_view spec) {
  std::array<std::optional<Axis>, kKeyCount> by_key;
  size_t pos = 0;
  auto is_space = [](char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
  };
  while (pos < spec.size()) {
    while (pos < spec.size() && is_space(spec[pos])) ++pos;
    if (pos >= spec.size()) break;
    size_t end = pos;
    while (end < spec.size() && !is_space(spec[end])) ++end;
    const std::string_view token = spec.substr(pos, end - pos);
    pos = end;

    const size_t eq = token.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument("grid token " + Quote(token) +
                                     " is not key=values (keys: " + AllowedKeys() + ")");
    }
    const std::string_view name = token.substr(0, eq);
    const std::string_view values = token.substr(eq + 1);
    const KeyInfo* info = nullptr;
    for (const KeyInfo& k : kKeys) {
      if (k.name == name) info = &k;
    }
    if (info == nullptr) {
      return Status::InvalidArgument("grid " + Quote(token) + ": unknown key " + Quote(name) +
                                     " (allowed: " + AllowedKeys() + ")");
    }
    std::optional<Axis>& slot = by_key[static_cast<size_t>(info->key)];
    if (slot.has_value()) {
      return Status::InvalidArgument("grid " + Quote(token) + ": duplicate key " + Quote(name) +
                                     " (already given as " + Quote(slot->token) + ")");
    }
    if (values.empty()) return KeyError(token, "no values after '='");

    Axis axis{info->key, std::string(token), {}, 0, {}};
    size_t start = 0;
    while (true) {
      const size_t comma = values.find(',', start);
      const std::string_view text = values.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      CG_ASSIGN_OR_RETURN(Item item, ParseItem(*info, token, text));
      if (__builtin_add_overflow(axis.count, item.Count(), &axis.count)) {
        return Status::OutOfRange("grid " + Quote(token) + ": value count overflows 64 bits");
      }
      axis.items.push_back(item);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    slot = std::move(axis);
  }

  for (const auto& [a, b] : kOverlaps) {
    const auto& first = by_key[static_cast<size_t>(a)];
    const auto& second = by_key[static_cast<size_t>(b)];
    if (first && second) {
      return Status::InvalidArgument("grid keys " + Quote(Info(a).name) + " and " +
                                     Quote(Info(b).name) + " overlap (" + Quote(first->token) +
                                     " and " + Quote(second->token) +
                                     " set the same field); give one of them");
    }
  }
  auto has = [&](Key k) { return by_key[static_cast<size_t>(k)].has_value(); };
  if (!has(Key::kC)) return Status::InvalidArgument("grid is missing required key 'c'");
  if (!has(Key::kK)) return Status::InvalidArgument("grid is missing required key 'k'");
  if (!has(Key::kH) && !has(Key::kHW)) {
    return Status::InvalidArgument("grid is missing required key 'h' or 'hw'");
  }
  if (!has(Key::kR) && !has(Key::kRS)) {
    return Status::InvalidArgument("grid is missing required key 'r' or 'rs'");
  }

  std::vector<Axis> axes;
  for (auto& slot : by_key) {
    if (slot) axes.push_back(std::move(*slot));
  }
  return axes;
}

// A pad pair (before, after) of PyTorch's padding='same' for one axis.
std::pair<int64_t, int64_t> SamePads(int64_t kernel, int64_t dilation) {
  int64_t total = 0;
  if (__builtin_mul_overflow(dilation, kernel - 1, &total)) {
    total = std::numeric_limits<int64_t>::max();  // Validate rejects the pads
  }
  return {total / 2, total - total / 2};
}

// Builds the problem of one combination; `value[key]` is set for every given key.
Problem BuildProblem(const std::array<std::optional<int64_t>, kKeyCount>& value) {
  auto get = [&](Key k) { return value[static_cast<size_t>(k)]; };
  Problem p;
  if (auto v = get(Key::kN)) p.n = *v;
  if (auto v = get(Key::kC)) p.c = *v;
  if (auto v = get(Key::kH)) p.h = *v;
  if (auto v = get(Key::kHW)) p.h = *v;
  p.w = get(Key::kW).value_or(get(Key::kHW).value_or(p.h));
  if (auto v = get(Key::kK)) p.k = *v;
  if (auto v = get(Key::kR)) p.r = *v;
  if (auto v = get(Key::kRS)) p.r = *v;
  p.s = get(Key::kS).value_or(get(Key::kRS).value_or(p.r));
  if (auto v = get(Key::kU)) p.stride_h = p.stride_w = *v;
  if (auto v = get(Key::kUH)) p.stride_h = *v;
  if (auto v = get(Key::kUW)) p.stride_w = *v;
  if (auto v = get(Key::kD)) p.dilation_h = p.dilation_w = *v;
  if (auto v = get(Key::kDH)) p.dilation_h = *v;
  if (auto v = get(Key::kDW)) p.dilation_w = *v;
  if (auto v = get(Key::kG)) p.groups = *v;
  if (auto v = get(Key::kBias)) p.bias = *v != 0;
  if (auto v = get(Key::kDtype)) p.dtype = static_cast<DataType>(*v);
  if (auto v = get(Key::kLayout)) p.layout = static_cast<Layout>(*v);
  if (auto v = get(Key::kDir)) p.direction = static_cast<Direction>(*v);

  // Pads last: `same` depends on the kernel and dilation set above.
  auto set_h = [&](int64_t v) {
    if (v == kSame) {
      std::tie(p.pad_top, p.pad_bottom) = SamePads(p.r, p.dilation_h);
    } else {
      p.pad_top = p.pad_bottom = v;
    }
  };
  auto set_w = [&](int64_t v) {
    if (v == kSame) {
      std::tie(p.pad_left, p.pad_right) = SamePads(p.s, p.dilation_w);
    } else {
      p.pad_left = p.pad_right = v;
    }
  };
  if (auto v = get(Key::kP)) {
    set_h(*v);
    set_w(*v);
  }
  if (auto v = get(Key::kPH)) set_h(*v);
  if (auto v = get(Key::kPW)) set_w(*v);
  if (auto v = get(Key::kPT)) p.pad_top = *v;
  if (auto v = get(Key::kPL)) p.pad_left = *v;
  if (auto v = get(Key::kPB)) p.pad_bottom = *v;
  if (auto v = get(Key::kPR)) p.pad_right = *v;
  return p;
}

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t HashProblem(const Problem& p) {
  uint64_t h = 0;
  for (int64_t v : {p.n,
                    p.c,
                    p.h,
                    p.w,
                    p.k,
                    p.r,
                    p.s,
                    p.pad_top,
                    p.pad_left,
                    p.pad_bottom,
                    p.pad_right,
                    p.stride_h,
                    p.stride_w,
                    p.dilation_h,
                    p.dilation_w,
                    p.groups,
                    int64_t{p.bias},
                    static_cast<int64_t>(p.dtype),
                    static_cast<int64_t>(p.layout),
                    static_cast<int64_t>(p.direction)}) {
    h = Mix(h ^ static_cast<uint64_t>(v));
  }
  return h;
}

// Indices into the kept problems, hashed and compared by the problem they name, so that
// duplicate detection stores no second copy of each problem.
struct IndexHash {
  const std::vector<Problem>* problems;
  size_t operator()(size_t i) const { return static_cast<size_t>(HashProblem((*problems)[i])); }
};
struct IndexEqual {
  const std::vector<Problem>* problems;
  bool operator()(size_t a, size_t b) const { return (*problems)[a] == (*problems)[b]; }
};

}  // namespace

StatusOr<GridExpansion> ExpandGrid(std::string_view spec, const GridOptions& options) {
  CG_ASSIGN_OR_RETURN(std::vector<Axis> axes, ParseSpec(spec));

  // Size the grid from the counts alone, so that an enormous grid costs nothing.
  int64_t combinations = 1;
  bool overflow = false;
  std::string shape;
  for (const Axis& axis : axes) {
    if (!shape.empty()) shape += " x ";
    shape += std::string(Info(axis.key).name) + ":" + std::to_string(axis.count);
    overflow = overflow || __builtin_mul_overflow(combinations, axis.count, &combinations);
  }
  if (overflow) {
    return Status::OutOfRange("grid combination count overflows 64 bits (" + shape + ")");
  }
  if (combinations > options.max_problems) {
    return Status::OutOfRange("grid has " + std::to_string(combinations) + " combinations (" +
                              shape +
                              "), over max_problems = " + std::to_string(options.max_problems));
  }

  for (Axis& axis : axes) {
    axis.values.reserve(static_cast<size_t>(axis.count));
    for (const Item& item : axis.items) item.AppendTo(axis.values);
  }

  GridExpansion out;
  out.combinations = combinations;
  Status first_skipped;
  // Reserve for the worst case: the count is already bounded by options.max_problems.
  out.problems.reserve(static_cast<size_t>(combinations));
  std::unordered_set<size_t, IndexHash, IndexEqual> seen(
      static_cast<size_t>(combinations), IndexHash{&out.problems}, IndexEqual{&out.problems});
  std::vector<size_t> index(axes.size(), 0);
  std::array<std::optional<int64_t>, kKeyCount> value;
  for (int64_t done = 0; done < combinations; ++done) {
    for (size_t a = 0; a < axes.size(); ++a) {
      value[static_cast<size_t>(axes[a].key)] = axes[a].values[index[a]];
    }
    const Problem p = BuildProblem(value);
    Status valid = Validate(p, options.limits);
    if (!valid.ok()) {
      if (out.skipped_invalid == 0) {
        std::string point;
        for (size_t a = 0; a < axes.size(); ++a) {
          if (!point.empty()) point += ' ';
          point += std::string(Info(axes[a].key).name) + "=" +
                   ValueText(axes[a].key, axes[a].values[index[a]]);
        }
        out.first_skipped_reason = point + ": " + valid.message();
        first_skipped = Status(valid.code(), out.first_skipped_reason);
      }
      ++out.skipped_invalid;
    } else {
      out.problems.push_back(p);
      if (!seen.insert(out.problems.size() - 1).second) {
        out.problems.pop_back();
        ++out.duplicates_removed;
      }
    }
    // Odometer step: the last axis varies fastest.
    for (size_t a = axes.size(); a-- > 0;) {
      if (++index[a] < axes[a].values.size()) break;
      index[a] = 0;
    }
  }

  if (out.problems.empty()) {
    return Status(first_skipped.code(),
                  "every one of the " + std::to_string(combinations) +
                      " grid combinations is invalid; the first: " + first_skipped.message());
  }
  return out;
}

}  // namespace convguard
