// MIOpen's problem key, the string MIOpen writes into its find-db and perf-db:
//
//   C-Hi-Wi-YxX-K-Ho-Wo-N-PadHxPadW-StrideHxStrideW-DilHxDilW-Bias-Layout-Precision-Direction
//   16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F            (+ "_gG" when groups != 1)
//
// Facts taken from MIOpen's ProblemDescription::Serialize (src/conv/problem_description.cpp)
// and its constructor, which are what make this form match real database keys:
//  - For backward directions MIOpen builds the description with the tensors swapped
//    ("in" is y for Backward*, "out" is x), so in B and W keys the first C-Hi-Wi group is
//    the forward output (K, Ho, Wo) and the second group is the forward input (C, H, W).
//  - The layout is written once when all three tensors are NCHW; otherwise the input,
//    weights and output layouts are all written, so an NHWC problem reads
//    "...-0-NHWC-NHWC-NHWC-FP32-F". Older MIOpen wrote a single layout; both parse.
//  - Optional parts follow '_': "_gG" for groups, "_ci/_cw/_co<type>" for cast types.
#include <algorithm>
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

constexpr std::string_view kForm = "miopen-key";
constexpr std::string_view kShape =
    "C-Hi-Wi-YxX-K-Ho-Wo-N-PadHxPadW-StrideHxStrideW-DilHxDilW-Bias-Layout-Precision-Direction";

std::string_view PrecisionName(DataType t) {
  switch (t) {
    case DataType::kF32: return "FP32";
    case DataType::kF16: return "FP16";
    case DataType::kBF16: return "BF16";
  }
  return "?";
}

// MIOpen's other type names (GetDataTypeName); keys with these are real but not runnable
// by convguard, so they are kUnsupported rather than malformed.
constexpr std::array<std::string_view, 11> kOtherPrecisions = {
    "FP32", "FP16", "BF16", "INT8x4", "INT8", "INT32", "INT64", "FP64", "FP8", "BFP8", "BF8"};

// True when `s` is a concatenation of MIOpen type names, which is how MIOpen spells a
// key whose input, weight and output types differ (EncodeDataTypesForKey).
bool IsMiopenTypeConcatenation(std::string_view s) {
  if (s.empty()) return true;
  for (std::string_view name : kOtherPrecisions) {
    if (StartsWith(s, name) && IsMiopenTypeConcatenation(s.substr(name.size()))) return true;
  }
  return false;
}

StatusOr<DataType> ParsePrecision(std::string_view f) {
  if (f == "FP32") return DataType::kF32;
  if (f == "FP16") return DataType::kF16;
  if (f == "BF16") return DataType::kBF16;
  if (IsMiopenTypeConcatenation(f)) {
    return Unsupported(kForm, "precision " + Quote(f) +
                                  " is not one convguard runs (allowed: FP32 FP16 BF16; mixed "
                                  "input/weight/output types are not supported)");
  }
  return Invalid(kForm, "unknown precision " + Quote(f) + " (allowed: FP32 FP16 BF16)");
}

StatusOr<Layout> ParseLayout(std::string_view f) {
  if (f == "NCHW") return Layout::kNCHW;
  if (f == "NHWC") return Layout::kNHWC;
  if (f == "CHWN" || f == "NCDHW" || f == "NDHWC" || StartsWith(f, "NCHWc") ||
      StartsWith(f, "CHWNc")) {
    return Unsupported(kForm,
                       "layout " + Quote(f) + " is not one convguard runs (allowed: NCHW NHWC)");
  }
  return Invalid(kForm, "unknown layout " + Quote(f) + " (allowed: NCHW NHWC)");
}

StatusOr<Direction> ParseDirection(std::string_view f) {
  if (f == "F") return Direction::kForward;
  if (f == "B") return Direction::kBackwardData;
  if (f == "W") return Direction::kBackwardWeights;
  return Invalid(kForm, "unknown direction " + Quote(f) +
                            " (allowed: F forward, B backward data, W backward weights)");
}

StatusOr<int64_t> Number(std::string_view label, std::string_view field) {
  return ParseCount(kForm, "field " + std::string(label), field);
}

// Parses "AxB" (a pair for H and W).
StatusOr<std::vector<int64_t>> Pair(std::string_view label, std::string_view field) {
  return ParseCountList(kForm, "field " + std::string(label), field, {2},
                        "a 2-D key has exactly two (H x W)");
}

}  // namespace

StatusOr<Problem> ParseMiopenKey(std::string_view input) {
  const std::string_view text = Trim(input);
  if (text.empty())
    return Invalid(kForm, std::string("empty text; expected ") + std::string(kShape));

  const size_t underscore = text.find('_');
  const std::string_view main = text.substr(0, underscore);
  const std::vector<std::string_view> f = Split(main, '-');

  // A 3-D key has a number where the 2-D key has YxX, and ZxYxX one field later.
  if (f.size() >= 5 && f[3].find('x') == std::string_view::npos &&
      std::count(f[4].begin(), f[4].end(), 'x') == 2) {
    return Unsupported(kForm, "3-D problem key " + Quote(text) + " (kernel " + Quote(f[4]) +
                                  "); convguard handles 2-D convolutions");
  }
  if (f.size() != 15 && f.size() != 17) {
    return Invalid(kForm, "expected 15 '-'-separated fields " + std::string(kShape) +
                              " (17 when the input, weights and output layouts are listed "
                              "separately), got " +
                              std::to_string(f.size()) + " in " + Quote(main));
  }
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i].empty()) {
      return Invalid(kForm, "field " + std::to_string(i + 1) + " of " + Quote(main) +
                                " is empty (a stray or doubled '-'; numbers cannot be negative)");
    }
  }

  const bool three_layouts = f.size() == 17;
  const std::string_view precision_field = f[three_layouts ? 15 : 13];
  const std::string_view direction_field = f[three_layouts ? 16 : 14];

  Problem p;
  CG_ASSIGN_OR_RETURN(p.direction, ParseDirection(direction_field));
  const bool forward = p.direction == Direction::kForward;
  CG_ASSIGN_OR_RETURN(int64_t c1, Number("C", f[0]));
  CG_ASSIGN_OR_RETURN(int64_t h1, Number("Hi", f[1]));
  CG_ASSIGN_OR_RETURN(int64_t w1, Number("Wi", f[2]));
  CG_ASSIGN_OR_RETURN(std::vector<int64_t> kernel, Pair("YxX", f[3]));
  CG_ASSIGN_OR_RETURN(int64_t c2, Number("K", f[4]));
  CG_ASSIGN_OR_RETURN(int64_t h2, Number("Ho", f[5]));
  CG_ASSIGN_OR_RETURN(int64_t w2, Number("Wo", f[6]));
  CG_ASSIGN_OR_RETURN(p.n, Number("N", f[7]));
  CG_ASSIGN_OR_RETURN(std::vector<int64_t> pads, Pair("PadHxPadW", f[8]));
  CG_ASSIGN_OR_RETURN(std::vector<int64_t> strides, Pair("StrideHxStrideW", f[9]));
  CG_ASSIGN_OR_RETURN(std::vector<int64_t> dilations, Pair("DilHxDilW", f[10]));
  if (f[11] != "0" && f[11] != "1") {
    return Invalid(kForm, "field Bias is " + Quote(f[11]) + " (allowed: 0 or 1)");
  }
  p.bias = f[11] == "1";

  CG_ASSIGN_OR_RETURN(p.layout, ParseLayout(f[12]));
  if (three_layouts) {
    for (size_t i : {size_t{13}, size_t{14}}) {
      CG_ASSIGN_OR_RETURN(Layout other, ParseLayout(f[i]));
      if (other != p.layout) {
        return Unsupported(kForm, "mixed layouts " + Quote(f[12]) + ", " + Quote(f[13]) + ", " +
                                      Quote(f[14]) +
                                      " (input, weights, output); convguard runs one layout "
                                      "for all tensors");
      }
    }
  }
  CG_ASSIGN_OR_RETURN(p.dtype, ParsePrecision(precision_field));

  // Optional "_"-separated parts after the main key.
  if (underscore != std::string_view::npos) {
    bool groups_seen = false;
    for (std::string_view part : Split(text.substr(underscore + 1), '_')) {
      if (StartsWith(part, "g") && part.size() > 1 && IsDigit(part[1])) {
        if (groups_seen) {
          return Invalid(kForm, "suffix " + Quote("_" + std::string(part)) +
                                    " repeats the group count (it may appear once)");
        }
        groups_seen = true;
        CG_ASSIGN_OR_RETURN(p.groups, ParseCount(kForm, "suffix " + Quote("_" + std::string(part)),
                                                 part.substr(1)));
      } else if (StartsWith(part, "ci") || StartsWith(part, "cw") || StartsWith(part, "co")) {
        return Unsupported(kForm, "cast-type suffix " + Quote("_" + std::string(part)) +
                                      "; convguard computes in the tensors' own type");
      } else {
        return Invalid(kForm, "unknown suffix " + Quote("_" + std::string(part)) +
                                  " (allowed: _gG with G the group count)");
      }
    }
  }

  p.r = kernel[0];
  p.s = kernel[1];
  p.pad_top = p.pad_bottom = pads[0];
  p.pad_left = p.pad_right = pads[1];
  p.stride_h = strides[0];
  p.stride_w = strides[1];
  p.dilation_h = dilations[0];
  p.dilation_w = dilations[1];
  // See the file comment: backward keys list the output side first.
  const int64_t out_h_field = forward ? h2 : h1;
  const int64_t out_w_field = forward ? w2 : w1;
  p.c = forward ? c1 : c2;
  p.h = forward ? h1 : h2;
  p.w = forward ? w1 : w2;
  p.k = forward ? c2 : c1;
  CG_RETURN_IF_ERROR(ValidateFor(kForm, p));

  const std::string_view h_label = forward ? "Ho" : "Hi";
  const std::string_view w_label = forward ? "Wo" : "Wi";
  const std::string side = forward ? "" : " (the output side comes first in a B or W key)";
  if (out_h_field != p.out_h()) {
    return Invalid(kForm, "field " + std::string(h_label) + " = " + std::to_string(out_h_field) +
                              " does not match the output height " + std::to_string(p.out_h()) +
                              " given by the input height, kernel, padding, stride and "
                              "dilation" +
                              side);
  }
  if (out_w_field != p.out_w()) {
    return Invalid(kForm, "field " + std::string(w_label) + " = " + std::to_string(out_w_field) +
                              " does not match the output width " + std::to_string(p.out_w()) +
                              " given by the input width, kernel, padding, stride and "
                              "dilation" +
                              side);
  }
  return p;
}

}  // namespace text_internal

StatusOr<std::string> ToMiopenKey(const Problem& p) {
  using namespace text_internal;
  CG_RETURN_IF_ERROR(ValidateFor(kForm, p));
  CG_RETURN_IF_ERROR(RequireSymmetricPads(kForm, p));
  CG_RETURN_IF_ERROR(RequireReadableOutputSize(kForm, p));
  const bool forward = p.direction == Direction::kForward;
  auto num = [](int64_t v) { return std::to_string(v); };
  // MIOpen's "in" and "out" tensors: swapped for backward directions (file comment).
  const std::string x_group = num(p.c) + "-" + num(p.h) + "-" + num(p.w);
  const std::string y_group = num(p.k) + "-" + num(p.out_h()) + "-" + num(p.out_w());
  std::string key = forward ? x_group : y_group;
  key += "-" + num(p.r) + "x" + num(p.s);
  key += "-" + (forward ? y_group : x_group);
  key += "-" + num(p.n);
  key += "-" + num(p.pad_top) + "x" + num(p.pad_left);
  key += "-" + num(p.stride_h) + "x" + num(p.stride_w);
  key += "-" + num(p.dilation_h) + "x" + num(p.dilation_w);
  key += p.bias ? "-1" : "-0";
  key += p.layout == Layout::kNCHW ? "-NCHW" : "-NHWC-NHWC-NHWC";
  key += "-";
  key += PrecisionName(p.dtype);
  switch (p.direction) {
    case Direction::kForward: key += "-F"; break;
    case Direction::kBackwardData: key += "-B"; break;
    case Direction::kBackwardWeights: key += "-W"; break;
  }
  if (p.groups != 1) key += "_g" + num(p.groups);
  return key;
}

}  // namespace convguard
