// MIOpenDriver command lines, the form MIOpen logs with MIOPEN_ENABLE_LOGGING_CMD=1:
//
//   conv -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -g 1 -F 1
//
// The flag table below mirrors ConvDriver::AddCmdLineArgs (MIOpen driver/conv_driver.hpp):
// same short letters, long names and defaults, so that a command means here what it means
// to MIOpenDriver. Like MIOpen's InputFlags, every flag takes exactly one value in the next
// word ("-n 1" or "--batchsize 1"). Unlike MIOpenDriver, a repeated flag is an error
// instead of "last one wins", because a repeated size is almost always a mistake.
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

constexpr std::string_view kForm = "miopen-driver";

enum class Arg {
  kBatch,
  kInC,
  kInH,
  kInW,
  kOutC,
  kFilH,
  kFilW,
  kPadH,
  kPadW,
  kStrideH,
  kStrideW,
  kDilH,
  kDilW,
  kGroups,
  kForw,
  kBias,
  kInLayout,
  kOutLayout,
  kFilLayout,
  kMode,
  kPadMode,
  kSpatialDim,
  kTensorVect,
  kVectorLength,
  kInCast,
  kOutCast,
  kWeiCast,
  kHelp,
  kIgnored,  // accepted, does not change the problem
};

struct Flag {
  char short_name;
  std::string_view long_name;
  std::string_view old_long_name;  // a name older MIOpenDriver versions used, or ""
  Arg arg;
  std::string_view default_value;  // MIOpenDriver's default, used when the flag is absent
};

constexpr std::array kFlags = {
    Flag{'n', "batchsize", "", Arg::kBatch, "100"},
    Flag{'c', "in_channels", "", Arg::kInC, "3"},
    Flag{'H', "in_h", "", Arg::kInH, "32"},
    Flag{'W', "in_w", "", Arg::kInW, "32"},
    Flag{'k', "out_channels", "", Arg::kOutC, "32"},
    Flag{'y', "fil_h", "", Arg::kFilH, "3"},
    Flag{'x', "fil_w", "", Arg::kFilW, "3"},
    Flag{'p', "pad_h", "", Arg::kPadH, "0"},
    Flag{'q', "pad_w", "", Arg::kPadW, "0"},
    Flag{'u', "conv_stride_h", "conv_stride_0", Arg::kStrideH, "1"},
    Flag{'v', "conv_stride_w", "conv_stride_1", Arg::kStrideW, "1"},
    Flag{'l', "dilation_h", "", Arg::kDilH, "1"},
    Flag{'j', "dilation_w", "", Arg::kDilW, "1"},
    Flag{'g', "group_count", "", Arg::kGroups, "1"},
    Flag{'F', "forw", "", Arg::kForw, "0"},
    Flag{'b', "bias", "", Arg::kBias, "0"},
    Flag{'I', "in_layout", "", Arg::kInLayout, "NCHW"},
    Flag{'O', "out_layout", "", Arg::kOutLayout, "NCHW"},
    Flag{'f', "fil_layout", "", Arg::kFilLayout, "NCHW"},
    Flag{'m', "mode", "", Arg::kMode, "conv"},
    Flag{'z', "pad_mode", "", Arg::kPadMode, "default"},
    Flag{'_', "spatial_dim", "", Arg::kSpatialDim, "2"},
    Flag{'Z', "tensor_vect", "", Arg::kTensorVect, "0"},
    Flag{'L', "vector_length", "", Arg::kVectorLength, "1"},
    Flag{'U', "in_cast_type", "", Arg::kInCast, "-1"},
    Flag{'T', "out_cast_type", "", Arg::kOutCast, "-1"},
    Flag{'R', "wei_cast_type", "", Arg::kWeiCast, "-1"},
    // Depth sizes: only read when --spatial_dim is 3, which convguard rejects.
    Flag{'!', "in_d", "", Arg::kIgnored, ""},
    Flag{'@', "fil_d", "", Arg::kIgnored, ""},
    Flag{'#', "conv_stride_d", "", Arg::kIgnored, ""},
    Flag{'$', "pad_d", "", Arg::kIgnored, ""},
    Flag{'^', "dilation_d", "", Arg::kIgnored, ""},
    Flag{'%', "trans_output_pad_d", "", Arg::kIgnored, ""},
    // Output padding: only read in transposed mode (-m trans), which convguard rejects.
    Flag{'Y', "trans_output_pad_h", "", Arg::kIgnored, ""},
    Flag{'X', "trans_output_pad_w", "", Arg::kIgnored, ""},
    // Run controls, data files and solver choice: how MIOpenDriver runs, not what.
    // pad_val only names verification-cache files; padding is always zeros.
    Flag{'r', "pad_val", "", Arg::kIgnored, ""},
    Flag{'i', "iter", "", Arg::kIgnored, ""},
    Flag{'V', "verify", "", Arg::kIgnored, ""},
    Flag{'C', "verification_cache", "", Arg::kIgnored, ""},
    Flag{'t', "time", "", Arg::kIgnored, ""},
    Flag{'w', "wall", "", Arg::kIgnored, ""},
    Flag{'s', "search", "", Arg::kIgnored, ""},
    Flag{'P', "printconv", "", Arg::kIgnored, ""},
    Flag{'o', "dump_output", "", Arg::kIgnored, ""},
    Flag{'d', "in_data", "", Arg::kIgnored, ""},
    Flag{'e', "weights", "", Arg::kIgnored, ""},
    Flag{'a', "in_bias", "", Arg::kIgnored, ""},
    Flag{'D', "dout_data", "", Arg::kIgnored, ""},
    Flag{'S', "solution", "", Arg::kIgnored, ""},
    Flag{'G', "gpualloc", "", Arg::kIgnored, ""},
    Flag{'h', "help", "", Arg::kHelp, ""},
};

std::string AllowedShortFlags() {
  std::string out;
  for (const Flag& f : kFlags) {
    if (f.arg == Arg::kHelp) continue;
    if (!out.empty()) out += ' ';
    out += '-';
    out += f.short_name;
  }
  return out;
}

std::string AllowedLongFlags() {
  std::string out;
  for (const Flag& f : kFlags) {
    if (f.arg == Arg::kHelp) continue;
    if (!out.empty()) out += ' ';
    out += "--";
    out += f.long_name;
  }
  return out;
}

std::optional<size_t> FindShort(char c) {
  for (size_t i = 0; i < kFlags.size(); ++i) {
    if (kFlags[i].short_name == c) return i;
  }
  return std::nullopt;
}

std::optional<size_t> FindLong(std::string_view name) {
  for (size_t i = 0; i < kFlags.size(); ++i) {
    if (kFlags[i].long_name == name ||
        (!kFlags[i].old_long_name.empty() && kFlags[i].old_long_name == name)) {
      return i;
    }
  }
  return std::nullopt;
}

// One flag occurrence: how it was spelled (for messages) and its value word.
struct Given {
  std::string_view spelling;
  std::string_view value;
};

class Args {
 public:
  explicit Args(const std::array<std::optional<Given>, kFlags.size()>& given) : given_(given) {}

  const Flag& FlagOf(Arg arg) const { return kFlags[IndexOf(arg)]; }
  std::string_view Value(Arg arg) const {
    const size_t i = IndexOf(arg);
    return given_[i] ? given_[i]->value : kFlags[i].default_value;
  }
  bool Present(Arg arg) const { return given_[IndexOf(arg)].has_value(); }
  // "flag '-n'" or "flag '--batchsize'", as the user wrote it.
  std::string What(Arg arg) const {
    const size_t i = IndexOf(arg);
    if (given_[i]) return "flag " + Quote(given_[i]->spelling);
    return "default of flag " + Quote(std::string("-") + kFlags[i].short_name);
  }
  StatusOr<int64_t> Number(Arg arg) const { return ParseCount(kForm, What(arg), Value(arg)); }

 private:
  static size_t IndexOf(Arg arg) {
    for (size_t i = 0; i < kFlags.size(); ++i) {
      if (kFlags[i].arg == arg) return i;
    }
    return 0;  // unreachable: every non-ignored Arg has exactly one row
  }
  const std::array<std::optional<Given>, kFlags.size()>& given_;
};

StatusOr<DataType> CommandDataType(std::string_view word) {
  if (word == "conv") return DataType::kF32;
  if (word == "convfp16") return DataType::kF16;
  if (word == "convbfp16") return DataType::kBF16;
  if (StartsWith(word, "conv")) {
    return Unsupported(kForm, "command " + Quote(word) +
                                  " uses a data type convguard does not run (allowed: conv, "
                                  "convfp16, convbfp16)");
  }
  return Invalid(kForm, "command " + Quote(word) +
                            " is not a convolution (allowed: conv, convfp16, convbfp16, "
                            "optionally after the MIOpenDriver program name)");
}

StatusOr<Direction> DirectionOf(const Args& a) {
  const char* several =
      "; convguard probes one direction per problem: use -F 1 (forward), -F 2 (backward "
      "data) or -F 4 (backward weights)";
  if (!a.Present(Arg::kForw)) {
    return Invalid(kForm, std::string("no -F flag: MIOpenDriver's default -F 0 runs forward, "
                                      "backward data and backward weights") +
                              several);
  }
  CG_ASSIGN_OR_RETURN(int64_t forw, a.Number(Arg::kForw));
  switch (forw) {
    case 1: return Direction::kForward;
    case 2: return Direction::kBackwardData;
    case 4: return Direction::kBackwardWeights;
    case 0:
    case 3:
    case 5:
    case 6:
    case 7:
      return Invalid(kForm, a.What(Arg::kForw) + " = " + std::to_string(forw) +
                                " selects several directions (a sum of 1 fwd, 2 bwd, 4 wrw; "
                                "0 = all)" +
                                several);
    default:
      return Invalid(kForm, a.What(Arg::kForw) + " = " + std::to_string(forw) +
                                " is not a direction (allowed: 1 forward, 2 backward data, 4 "
                                "backward weights)");
  }
}

StatusOr<Layout> LayoutOf(const Args& a, Arg arg) {
  const std::string_view v = a.Value(arg);
  if (v == "NCHW") return Layout::kNCHW;
  if (v == "NHWC") return Layout::kNHWC;
  if (v == "CHWN" || v == "NCDHW" || v == "NDHWC") {
    return Unsupported(kForm, a.What(arg) + " = " + Quote(v) +
                                  " is a layout convguard does not run (allowed: NCHW NHWC)");
  }
  return Invalid(kForm, a.What(arg) + " = " + Quote(v) + " is not a layout (allowed: NCHW NHWC)");
}

// Flags that must keep their default for the problem to be one convguard can express.
Status CheckModeFlags(const Args& a) {
  const std::string_view mode = a.Value(Arg::kMode);
  if (mode == "trans") {
    return Unsupported(kForm, a.What(Arg::kMode) +
                                  " = 'trans' is a transposed convolution; convguard runs "
                                  "-m conv only");
  }
  if (mode != "conv") {
    return Invalid(kForm, a.What(Arg::kMode) + " = " + Quote(mode) + " (allowed: conv, trans)");
  }
  const std::string_view pad_mode = a.Value(Arg::kPadMode);
  if (pad_mode == "same" || pad_mode == "valid") {
    return Unsupported(kForm, a.What(Arg::kPadMode) + " = " + Quote(pad_mode) +
                                  " lets MIOpen compute the padding; convguard needs explicit "
                                  "-p/-q with -z default");
  }
  if (pad_mode != "default") {
    return Invalid(kForm, a.What(Arg::kPadMode) + " = " + Quote(pad_mode) +
                              " (allowed: default, same, valid)");
  }
  CG_ASSIGN_OR_RETURN(int64_t spatial, a.Number(Arg::kSpatialDim));
  if (spatial == 3) {
    return Unsupported(
        kForm, a.What(Arg::kSpatialDim) + " = 3 is a 3-D convolution; convguard handles 2-D");
  }
  if (spatial != 2) {
    return Invalid(kForm, a.What(Arg::kSpatialDim) + " = " + std::to_string(spatial) +
                              " (allowed: 2, or 3 for 3-D)");
  }
  CG_ASSIGN_OR_RETURN(int64_t vect, a.Number(Arg::kTensorVect));
  CG_ASSIGN_OR_RETURN(int64_t vlen, a.Number(Arg::kVectorLength));
  if (vect != 0 || vlen != 1) {
    return Unsupported(kForm, "vectorized tensors (" + a.What(Arg::kTensorVect) + " = " +
                                  std::to_string(vect) + ", " + a.What(Arg::kVectorLength) + " = " +
                                  std::to_string(vlen) + "); convguard needs -Z 0 -L 1");
  }
  for (Arg cast : {Arg::kInCast, Arg::kOutCast, Arg::kWeiCast}) {
    if (a.Value(cast) != "-1") {
      return Unsupported(kForm, a.What(cast) + " = " + Quote(a.Value(cast)) +
                                    " casts a tensor; convguard computes in the tensors' own "
                                    "type (leave it at -1)");
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Problem> ParseMiopenDriver(std::string_view input) {
  const std::vector<std::string_view> words = SplitWhitespace(input);
  size_t i = 0;
  if (!words.empty() && (words[0] == "MIOpenDriver" || EndsWith(words[0], "/MIOpenDriver"))) {
    ++i;
  }
  if (i >= words.size()) {
    return Invalid(kForm,
                   "no command; expected e.g. 'conv -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 "
                   "-F 1'");
  }
  Problem p;
  CG_ASSIGN_OR_RETURN(p.dtype, CommandDataType(words[i]));
  ++i;

  std::array<std::optional<Given>, kFlags.size()> given;
  for (; i < words.size(); i += 2) {
    const std::string_view word = words[i];
    std::optional<size_t> index;
    if (StartsWith(word, "--")) {
      const size_t eq = word.find('=');
      if (eq != std::string_view::npos && FindLong(word.substr(2, eq - 2))) {
        return Invalid(
            kForm,
            "flag " + Quote(word) + ": MIOpenDriver takes the value as the next word (write " +
                Quote(std::string(word.substr(0, eq)) + " " + std::string(word.substr(eq + 1))) +
                ")");
      }
      index = FindLong(word.substr(2));
      if (!index) {
        return Invalid(kForm,
                       "unknown flag " + Quote(word) + " (allowed: " + AllowedLongFlags() + ")");
      }
    } else if (word.size() == 2 && word[0] == '-') {
      index = FindShort(word[1]);
      if (!index) {
        return Invalid(kForm,
                       "unknown flag " + Quote(word) + " (allowed: " + AllowedShortFlags() + ")");
      }
    } else if (word.size() > 2 && word[0] == '-') {
      return Invalid(kForm, "flag " + Quote(word) +
                                " is not one letter; MIOpenDriver flags are '-X VALUE' or "
                                "'--name VALUE' with the value as the next word");
    } else {
      return Invalid(kForm, "unexpected argument " + Quote(word) +
                                " where a flag was expected (every flag is followed by one "
                                "value, e.g. '-n 16')");
    }
    if (kFlags[*index].arg == Arg::kHelp) {
      return Invalid(kForm, "flag " + Quote(word) +
                                " asks MIOpenDriver for help; it describes "
                                "no problem");
    }
    if (i + 1 >= words.size()) {
      return Invalid(kForm, "flag " + Quote(word) + " has no value (it must be followed by one)");
    }
    if (given[*index]) {
      return Invalid(kForm, "flag " + Quote(word) + " repeats " + Quote(given[*index]->spelling) +
                                " (each flag may appear once)");
    }
    given[*index] = Given{word, words[i + 1]};
  }

  const Args a(given);
  CG_RETURN_IF_ERROR(CheckModeFlags(a));
  CG_ASSIGN_OR_RETURN(p.n, a.Number(Arg::kBatch));
  CG_ASSIGN_OR_RETURN(p.c, a.Number(Arg::kInC));
  CG_ASSIGN_OR_RETURN(p.h, a.Number(Arg::kInH));
  CG_ASSIGN_OR_RETURN(p.w, a.Number(Arg::kInW));
  CG_ASSIGN_OR_RETURN(p.k, a.Number(Arg::kOutC));
  CG_ASSIGN_OR_RETURN(p.r, a.Number(Arg::kFilH));
  CG_ASSIGN_OR_RETURN(p.s, a.Number(Arg::kFilW));
  CG_ASSIGN_OR_RETURN(int64_t pad_h, a.Number(Arg::kPadH));
  CG_ASSIGN_OR_RETURN(int64_t pad_w, a.Number(Arg::kPadW));
  p.pad_top = p.pad_bottom = pad_h;
  p.pad_left = p.pad_right = pad_w;
  CG_ASSIGN_OR_RETURN(p.stride_h, a.Number(Arg::kStrideH));
  CG_ASSIGN_OR_RETURN(p.stride_w, a.Number(Arg::kStrideW));
  CG_ASSIGN_OR_RETURN(p.dilation_h, a.Number(Arg::kDilH));
  CG_ASSIGN_OR_RETURN(p.dilation_w, a.Number(Arg::kDilW));
  CG_ASSIGN_OR_RETURN(p.groups, a.Number(Arg::kGroups));
  CG_ASSIGN_OR_RETURN(p.direction, DirectionOf(a));

  const std::string_view bias = a.Value(Arg::kBias);
  if (bias != "0" && bias != "1") {
    return Invalid(kForm, a.What(Arg::kBias) + " = " + Quote(bias) + " (allowed: 0 or 1)");
  }
  p.bias = bias == "1";

  CG_ASSIGN_OR_RETURN(Layout in_layout, LayoutOf(a, Arg::kInLayout));
  CG_ASSIGN_OR_RETURN(Layout fil_layout, LayoutOf(a, Arg::kFilLayout));
  CG_ASSIGN_OR_RETURN(Layout out_layout, LayoutOf(a, Arg::kOutLayout));
  if (in_layout != fil_layout || in_layout != out_layout) {
    return Unsupported(kForm, "mixed layouts: input " + Quote(a.Value(Arg::kInLayout)) +
                                  ", filter " + Quote(a.Value(Arg::kFilLayout)) + ", output " +
                                  Quote(a.Value(Arg::kOutLayout)) +
                                  " (absent ones default to NCHW); convguard runs one layout "
                                  "for all tensors: give -I, -f and -O together");
  }
  p.layout = in_layout;

  CG_RETURN_IF_ERROR(ValidateFor(kForm, p));
  return p;
}

}  // namespace text_internal

StatusOr<std::string> ToMiopenDriver(const Problem& p) {
  using namespace text_internal;
  CG_RETURN_IF_ERROR(ValidateFor(kForm, p));
  CG_RETURN_IF_ERROR(RequireSymmetricPads(kForm, p));
  auto num = [](int64_t v) { return std::to_string(v); };
  std::string out;
  switch (p.dtype) {
    case DataType::kF32: out = "conv"; break;
    case DataType::kF16: out = "convfp16"; break;
    case DataType::kBF16: out = "convbfp16"; break;
  }
  out += " -n " + num(p.n) + " -c " + num(p.c) + " -H " + num(p.h) + " -W " + num(p.w);
  out += " -k " + num(p.k) + " -y " + num(p.r) + " -x " + num(p.s);
  out += " -p " + num(p.pad_top) + " -q " + num(p.pad_left);
  out += " -u " + num(p.stride_h) + " -v " + num(p.stride_w);
  out += " -l " + num(p.dilation_h) + " -j " + num(p.dilation_w);
  out += " -g " + num(p.groups);
  switch (p.direction) {
    case Direction::kForward: out += " -F 1"; break;
    case Direction::kBackwardData: out += " -F 2"; break;
    case Direction::kBackwardWeights: out += " -F 4"; break;
  }
  if (p.bias) out += " -b 1";
  if (p.layout == Layout::kNHWC) out += " -I NHWC -O NHWC -f NHWC";
  return out;
}

}  // namespace convguard
