// The canonical form: convguard's own descriptor and the key of every stored verdict.
//
//   n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd      (grammar: docs/problem-forms.md)
//
// The printer is deterministic (one spelling per problem) because the string is a
// database key; the parser is lenient about order and defaults because people type it.
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/text_forms.h"
#include "text/text_util.h"

namespace convguard {
namespace text_internal {
namespace {

constexpr std::string_view kForm = "canonical";

// Field letters in print order. Index = position in kFieldLetters.
constexpr std::string_view kFieldLetters = "nchwkrspudg";
enum FieldIndex { kN, kC, kH, kW, kK, kR, kS, kP, kU, kD, kG, kFieldCount };

constexpr std::string_view kAllowedTokens =
    "allowed fields: n c h w k r s p u d g; keywords: f32 f16 bf16 nchw nhwc fwd bwd-data "
    "bwd-weights bias";

constexpr std::string_view FieldMeaning(int field) {
  switch (field) {
    case kN: return "batch";
    case kC: return "input channels";
    case kH: return "input height";
    case kW: return "input width";
    case kK: return "output channels";
    case kR: return "kernel height";
    case kS: return "kernel width";
    case kP: return "padding";
    case kU: return "stride";
    case kD: return "dilation";
    case kG: return "groups";
  }
  return "?";
}

std::optional<DataType> DataTypeKeyword(std::string_view t) {
  if (t == "f32") return DataType::kF32;
  if (t == "f16") return DataType::kF16;
  if (t == "bf16") return DataType::kBF16;
  return std::nullopt;
}
std::optional<Layout> LayoutKeyword(std::string_view t) {
  if (t == "nchw") return Layout::kNCHW;
  if (t == "nhwc") return Layout::kNHWC;
  return std::nullopt;
}
std::optional<Direction> DirectionKeyword(std::string_view t) {
  if (t == "fwd") return Direction::kForward;
  if (t == "bwd-data") return Direction::kBackwardData;
  if (t == "bwd-weights") return Direction::kBackwardWeights;
  return std::nullopt;
}
bool IsKeyword(std::string_view t) {
  return DataTypeKeyword(t) || LayoutKeyword(t) || DirectionKeyword(t) || t == "bias";
}

// "2" when both values agree, else "2x1": the compressed spelling of a (h, w) pair.
std::string PairText(int64_t h, int64_t w) {
  if (h == w) return std::to_string(h);
  return std::to_string(h) + "x" + std::to_string(w);
}

std::string PadText(const Problem& p) {
  if (p.pad_top == p.pad_bottom && p.pad_left == p.pad_right) {
    return PairText(p.pad_top, p.pad_left);
  }
  return std::to_string(p.pad_top) + "x" + std::to_string(p.pad_left) + "x" +
         std::to_string(p.pad_bottom) + "x" + std::to_string(p.pad_right);
}

// Remembers which keyword class a token already set, to reject "f32_f16".
struct KeywordSeen {
  std::string_view dtype, layout, direction, bias;
};

Status RepeatError(std::string_view token, std::string_view what, std::string_view earlier) {
  return Invalid(kForm, "token " + Quote(token) + " repeats the " + std::string(what) +
                            " (already " + Quote(earlier) + "; each may appear once)");
}

}  // namespace

bool LooksLikeCanonicalToken(std::string_view token) {
  if (IsKeyword(token)) return true;
  if (token.size() < 2 || kFieldLetters.find(token[0]) == std::string_view::npos) return false;
  if (!IsDigit(token[1])) return false;
  for (char ch : token.substr(1)) {
    if (!IsDigit(ch) && ch != 'x') return false;
  }
  return true;
}

StatusOr<Problem> ParseCanonical(std::string_view input) {
  const std::string_view text = Trim(input);
  if (text.empty()) {
    return Invalid(kForm, "empty text; expected '_'-separated tokens such as c16_h64_k32_r3");
  }

  std::array<std::optional<std::vector<int64_t>>, kFieldCount> fields;
  std::array<std::string_view, kFieldCount> field_token{};
  KeywordSeen seen;
  Problem p;

  for (std::string_view token : Split(text, '_')) {
    if (token.empty()) {
      return Invalid(kForm, "empty token in " + Quote(text) +
                                " (tokens are separated by exactly one '_', with none at "
                                "either end)");
    }
    if (auto t = DataTypeKeyword(token)) {
      if (!seen.dtype.empty()) return RepeatError(token, "data type", seen.dtype);
      seen.dtype = token;
      p.dtype = *t;
      continue;
    }
    if (auto l = LayoutKeyword(token)) {
      if (!seen.layout.empty()) return RepeatError(token, "layout", seen.layout);
      seen.layout = token;
      p.layout = *l;
      continue;
    }
    if (auto d = DirectionKeyword(token)) {
      if (!seen.direction.empty()) return RepeatError(token, "direction", seen.direction);
      seen.direction = token;
      p.direction = *d;
      continue;
    }
    if (token == "bias") {
      if (!seen.bias.empty()) return RepeatError(token, "bias flag", seen.bias);
      seen.bias = token;
      p.bias = true;
      continue;
    }

    const size_t field = kFieldLetters.find(token[0]);
    if (field == std::string_view::npos) {
      return Invalid(kForm, "token " + Quote(token) + " has unknown field " +
                                Quote(token.substr(0, 1)) + " (" + std::string(kAllowedTokens) +
                                ")");
    }
    if (fields[field]) {
      return Invalid(kForm, "token " + Quote(token) + " repeats field " +
                                Quote(token.substr(0, 1)) + " (already " +
                                Quote(field_token[field]) + "; each field may appear once)");
    }
    const std::string what = "token " + Quote(token);
    const std::string_view value = token.substr(1);
    if (value.empty()) {
      return Invalid(kForm, what + " has no value (write e.g. " + std::string(token) + "1)");
    }
    std::vector<int64_t> numbers;
    if (field == kP) {
      CG_ASSIGN_OR_RETURN(numbers, ParseCountList(kForm, what, value, {1, 2, 4},
                                                  "padding takes 1 (all sides), 2 (h x w) or 4 "
                                                  "(top x left x bottom x right) values"));
    } else if (field == kU || field == kD) {
      CG_ASSIGN_OR_RETURN(numbers,
                          ParseCountList(kForm, what, value, {1, 2},
                                         std::string(FieldMeaning(static_cast<int>(field))) +
                                             " takes 1 value or 2 (h x w)"));
    } else {
      CG_ASSIGN_OR_RETURN(int64_t v, ParseCount(kForm, what, value));
      numbers.push_back(v);
    }
    fields[field] = std::move(numbers);
    field_token[field] = token;
  }

  for (int required : {kC, kH, kK, kR}) {
    if (!fields[required]) {
      return Invalid(kForm, "missing required field " + Quote(kFieldLetters.substr(required, 1)) +
                                " (" + std::string(FieldMeaning(required)) + ") in " + Quote(text) +
                                "; c, h, k and r are required");
    }
  }

  auto scalar = [&](int f, int64_t fallback) { return fields[f] ? (*fields[f])[0] : fallback; };
  p.n = scalar(kN, 1);
  p.c = scalar(kC, 0);
  p.h = scalar(kH, 0);
  p.w = scalar(kW, p.h);  // square promotion: a missing width is the height
  p.k = scalar(kK, 0);
  p.r = scalar(kR, 0);
  p.s = scalar(kS, p.r);
  p.groups = scalar(kG, 1);
  if (fields[kP]) {
    const std::vector<int64_t>& v = *fields[kP];
    if (v.size() == 1) {
      p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = v[0];
    } else if (v.size() == 2) {
      p.pad_top = p.pad_bottom = v[0];
      p.pad_left = p.pad_right = v[1];
    } else {
      p.pad_top = v[0];
      p.pad_left = v[1];
      p.pad_bottom = v[2];
      p.pad_right = v[3];
    }
  }
  if (fields[kU]) {
    p.stride_h = (*fields[kU])[0];
    p.stride_w = fields[kU]->back();
  }
  if (fields[kD]) {
    p.dilation_h = (*fields[kD])[0];
    p.dilation_w = fields[kD]->back();
  }
  CG_RETURN_IF_ERROR(ValidateFor(kForm, p));
  return p;
}

}  // namespace text_internal

std::string ToCanonical(const Problem& p) {
  using text_internal::PadText;
  using text_internal::PairText;
  std::string out;
  out.reserve(64);
  out += "n" + std::to_string(p.n);
  out += "_c" + std::to_string(p.c);
  out += "_h" + std::to_string(p.h);
  out += "_w" + std::to_string(p.w);
  out += "_k" + std::to_string(p.k);
  out += "_r" + std::to_string(p.r);
  out += "_s" + std::to_string(p.s);
  out += "_p" + PadText(p);
  out += "_u" + PairText(p.stride_h, p.stride_w);
  out += "_d" + PairText(p.dilation_h, p.dilation_w);
  out += "_g" + std::to_string(p.groups);
  if (p.bias) out += "_bias";
  out += "_";
  out += DataTypeName(p.dtype);
  out += "_";
  out += LayoutName(p.layout);
  out += "_";
  out += DirectionName(p.direction);
  return out;
}

}  // namespace convguard
