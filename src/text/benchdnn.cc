// oneDNN benchdnn convolution problems: optional knobs, then one descriptor.
//
//   --dir=FWD_D mb1ic16ih64iw64oc32oh64ow64kh3kw3sh1sw1ph1pw1dh0dw0
//
// The descriptor rules follow benchdnn's str2desc and sanitize_desc
// (tests/benchdnn/conv/conv_aux.cpp, tests/benchdnn/utils.cpp in oneDNN):
//  - defaults: mb 2, g 1, strides 1, dilation 0 (benchdnn's dilation counts the gaps, so
//    dh0 is a dense kernel and convguard's dilation is dh + 1);
//  - a missing output size is computed from symmetric padding (ph, default 0); a missing
//    padding is computed from the output size: ph = ((oh-1)*sh - ih + ekh) / 2;
//  - the end (bottom/right) padding is implied: (oh-1)*sh - ih + ekh - ph;
//  - if no w value is given at all, every w value copies its h value (square problem); if
//    only w values are given, h is 1 with a 1-tall kernel (a 1-D problem);
//  - '_' between fields is ignored and "n<name>" ends the descriptor with a name.
// The default direction of benchdnn's conv driver is FWD_B, i.e. forward WITH bias.
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

constexpr std::string_view kForm = "benchdnn";

// Descriptor fields in benchdnn's print order.
constexpr std::array<std::string_view, 22> kFieldNames = {
    "g",  "mb", "ic", "id", "ih", "iw", "oc", "od", "oh", "ow", "kd",
    "kh", "kw", "sd", "sh", "sw", "pd", "ph", "pw", "dd", "dh", "dw"};

struct Descriptor {
  std::array<std::optional<int64_t>, kFieldNames.size()> value;
  std::array<std::string_view, kFieldNames.size()> token;  // e.g. "ic16", for messages

  static size_t Index(std::string_view name) {
    for (size_t i = 0; i < kFieldNames.size(); ++i) {
      if (kFieldNames[i] == name) return i;
    }
    return kFieldNames.size();
  }
  const std::optional<int64_t>& Get(std::string_view name) const { return value[Index(name)]; }
  std::string_view Token(std::string_view name) const { return token[Index(name)]; }
};

// Reads benchdnn's descriptor grammar into raw field values, without defaults.
StatusOr<Descriptor> ReadDescriptor(std::string_view text) {
  Descriptor d;
  size_t pos = 0;
  while (pos < text.size()) {
    const char ch = text[pos];
    if (ch == '_') {  // benchdnn ignores '_' between fields
      ++pos;
      continue;
    }
    if (ch == 'n') break;  // "n<name>": the rest is a name, which does not change the problem
    size_t field = kFieldNames.size();
    size_t name_length = 0;
    for (size_t i = 0; i < kFieldNames.size(); ++i) {
      if (StartsWith(text.substr(pos), kFieldNames[i])) {
        field = i;
        name_length = kFieldNames[i].size();
        break;
      }
    }
    if (field == kFieldNames.size()) {
      if (IsSpace(ch)) {
        return Invalid(kForm, "unexpected " + Quote(Trim(text.substr(pos))) +
                                  " after the descriptor (options go before it; one descriptor "
                                  "per problem)");
      }
      return Invalid(kForm, "unknown field at " + Quote(text.substr(pos)) + " in descriptor " +
                                Quote(text) +
                                " (fields: g mb ic ih iw oc oh ow kh kw sh sw ph pw dh dw, then "
                                "an optional n<name>)");
    }
    const std::string_view name = kFieldNames[field];
    size_t end = pos + name_length;
    if (end < text.size() && text[end] == '-') {
      size_t stop = end + 1;
      while (stop < text.size() && IsDigit(text[stop])) ++stop;
      return Invalid(kForm, "field " + Quote(text.substr(pos, stop - pos)) +
                                ": negative numbers are not allowed");
    }
    if (end >= text.size() || !IsDigit(text[end])) {
      return Invalid(kForm,
                     "field " + Quote(name) + " at " + Quote(text.substr(pos)) + " has no number");
    }
    int64_t v = 0;
    const bool fits = AccumulateDigits(text, &end, &v);
    const std::string_view token = text.substr(pos, end - pos);
    if (!fits) {
      return FormError(
          StatusCode::kOutOfRange, kForm,
          "field " + Quote(token) + " is too large (at most " + std::to_string(kMaxNumber) + ")");
    }
    if (d.value[field]) {
      return Invalid(kForm, "field " + Quote(token) + " repeats " + Quote(d.token[field]) +
                                " (each field may appear once)");
    }
    d.value[field] = v;
    d.token[field] = token;
    pos = end;
  }
  return d;
}

// One spatial dimension (h or w) after benchdnn's derivations, in convguard's terms.
struct Dim {
  int64_t in = 1, kernel = 1, stride = 1, dilation = 1, pad_begin = 0, pad_end = 0, out = 1;
};

// benchdnn's integer division truncates toward zero; keep that for negative numerators so
// the derived padding is the one benchdnn would use.
int64_t TruncDiv(int64_t a, int64_t b) { return a / b; }

// The end padding convguard reads from a (begin padding, output size) pair. benchdnn's own
// end padding is (o-1)*s - i + ek - p, which is smaller than p whenever the stride leaves
// rows unused; when the output size agrees with symmetric padding, convguard takes the end
// padding equal to the begin padding instead (the unused rows are never read, so the
// computation is the same) so that symmetric problems stay symmetric.
int64_t ResolveEndPad(int64_t in, int64_t out, int64_t ek, int64_t stride, int64_t begin) {
  const int64_t symmetric_span = in + 2 * begin - ek;
  if (symmetric_span >= 0 && symmetric_span / stride + 1 == out) return begin;
  return (out - 1) * stride - in + ek - begin;
}

// Applies benchdnn's derivations to one dimension. `x` is "h" or "w".
StatusOr<Dim> ResolveDim(const Descriptor& d, char x) {
  auto name = [x](char prefix) { return std::string{prefix, x}; };
  const auto& i = d.Get(name('i'));
  const auto& k = d.Get(name('k'));
  const auto& o = d.Get(name('o'));
  const auto& s = d.Get(name('s'));
  const auto& p = d.Get(name('p'));
  const auto& dil = d.Get(name('d'));
  if (!i || !k) {
    const std::string missing = !i ? name('i') : name('k');
    return Invalid(kForm, "missing " + Quote(missing) + ": a descriptor that gives any " +
                              std::string(1, x) + " value needs both " + Quote(name('i')) +
                              " and " + Quote(name('k')));
  }
  Dim r;
  r.in = *i;
  r.kernel = *k;
  r.stride = s.value_or(1);
  r.dilation = dil.value_or(0) + 1;
  const int64_t ek = (r.kernel - 1) * r.dilation + 1;
  if (!o) {
    r.pad_begin = p.value_or(0);
    const int64_t span = r.in + 2 * r.pad_begin - ek;
    if (span < 0) {
      return Invalid(kForm, "the kernel " + Quote(d.Token(name('k'))) + " (" + std::to_string(ek) +
                                " with dilation) does not fit " + Quote(d.Token(name('i'))) +
                                " with " + name('p') + std::to_string(r.pad_begin) +
                                " padding on each side");
    }
    r.out = span / r.stride + 1;
    r.pad_end = r.pad_begin;
    return r;
  }
  r.out = *o;
  r.pad_begin = p ? *p : TruncDiv((r.out - 1) * r.stride - r.in + ek, 2);
  if (r.pad_begin < 0) {
    return Unsupported(kForm,
                       Quote(d.Token(name('o'))) + " with " + Quote(d.Token(name('i'))) + " and " +
                           Quote(d.Token(name('k'))) + " implies a negative padding " + name('p') +
                           std::to_string(r.pad_begin) + " (cropping); convguard needs pads >= 0");
  }
  r.pad_end = ResolveEndPad(r.in, r.out, ek, r.stride, r.pad_begin);
  if (r.pad_end < 0) {
    return Unsupported(kForm, Quote(d.Token(name('o'))) + " implies a negative " +
                                  std::string(x == 'h' ? "bottom" : "right") + " padding of " +
                                  std::to_string(r.pad_end) +
                                  " (benchdnn's end padding (o-1)*s - i + ek - p); convguard "
                                  "needs pads >= 0");
  }
  return r;
}

// benchdnn decides whether a dimension is "given" the way sanitize_desc does: a size, or a
// non-default stride, padding or dilation.
bool DimGiven(const Descriptor& d, char x) {
  auto has = [&](char prefix) { return d.Get(std::string{prefix, x}).has_value(); };
  auto val = [&](char prefix) { return *d.Get(std::string{prefix, x}); };
  return has('i') || has('k') || has('o') || (has('d') && val('d') != 0) ||
         (has('s') && val('s') != 1) || (has('p') && val('p') >= 1);
}

StatusOr<Problem> DescriptorToProblem(std::string_view text) {
  if (text.empty()) return Invalid(kForm, "no descriptor; expected e.g. mb2ic16ih64oc32oh64kh3ph1");
  CG_ASSIGN_OR_RETURN(Descriptor d, ReadDescriptor(text));

  for (std::string_view name : {"id", "od", "kd", "sd", "pd", "dd"}) {
    if (d.Get(name)) {
      return Unsupported(kForm, "field " + Quote(d.Token(name)) +
                                    " describes a depth: 3-D convolutions are not supported "
                                    "(convguard handles 1-D and 2-D descriptors)");
    }
  }
  // benchdnn reads 0 as "absent" for these; writing it is a mistake convguard points out.
  for (std::string_view name :
       {"g", "mb", "ic", "oc", "ih", "iw", "oh", "ow", "kh", "kw", "sh", "sw"}) {
    if (d.Get(name) && *d.Get(name) == 0) {
      return Invalid(kForm, "field " + Quote(d.Token(name)) + ": " + std::string(name) +
                                " must be at least 1 (leave a field out to use its default)");
    }
  }
  for (std::string_view name : {"ic", "oc"}) {
    if (!d.Get(name)) {
      return Invalid(kForm, "missing " + Quote(name) + " in descriptor " + Quote(text) +
                                " (ic and oc are required)");
    }
  }

  const bool h_given = DimGiven(d, 'h');
  const bool w_given = DimGiven(d, 'w');
  if (!h_given && !w_given) {
    return Invalid(kForm,
                   "descriptor " + Quote(text) + " has no spatial size (give at least ih and kh)");
  }
  Dim h, w;
  if (h_given) {
    CG_ASSIGN_OR_RETURN(h, ResolveDim(d, 'h'));
  }
  if (w_given) {
    CG_ASSIGN_OR_RETURN(w, ResolveDim(d, 'w'));
  } else {
    // Square promotion. benchdnn overwrites any explicit default-valued w field (sw1, pw0,
    // dw0) with the h value; silently dropping what was written would surprise, so a
    // conflicting one is an error.
    w = h;
    const std::array<std::pair<std::string_view, int64_t>, 3> copied = {
        std::pair<std::string_view, int64_t>{"sw", h.stride},
        {"pw", h.pad_begin},
        {"dw", h.dilation - 1}};
    for (const auto& [name, copied_value] : copied) {
      if (d.Get(name) && *d.Get(name) != copied_value) {
        return Invalid(kForm, "field " + Quote(d.Token(name)) +
                                  " conflicts with square promotion: with no iw or kw given, "
                                  "benchdnn copies every w value from h (here " +
                                  std::string(name) + std::to_string(copied_value) +
                                  "); give iw and kw too, or drop " + Quote(d.Token(name)));
      }
    }
  }
  // A 1-D descriptor (w only) leaves h at the Dim defaults: one row, a 1-tall kernel.

  Problem p;
  p.n = d.Get("mb").value_or(2);
  p.groups = d.Get("g").value_or(1);
  p.c = *d.Get("ic");
  p.k = *d.Get("oc");
  p.h = h.in;
  p.r = h.kernel;
  p.stride_h = h.stride;
  p.dilation_h = h.dilation;
  p.pad_top = h.pad_begin;
  p.pad_bottom = h.pad_end;
  p.w = w.in;
  p.s = w.kernel;
  p.stride_w = w.stride;
  p.dilation_w = w.dilation;
  p.pad_left = w.pad_begin;
  p.pad_right = w.pad_end;
  return p;
}

// The knobs before the descriptor, as far as they change the problem.
struct Knobs {
  std::optional<Direction> direction;
  bool bias = true;  // benchdnn's default direction is FWD_B
  std::optional<DataType> dtype;
  std::optional<Layout> src_layout, wei_layout, dst_layout;
  int64_t mb_override = 0;
};

constexpr std::string_view kAllowedKnobs =
    "--dir= --dt= --cfg= --stag= --wtag= --dtag= --mb= --alg=, and --conv";

Status ParseDir(std::string_view v, Knobs* k) {
  if (v.find(',') != std::string_view::npos) {
    return Invalid(kForm, "--dir=" + std::string(v) +
                              " lists several directions; convguard probes one direction per "
                              "problem");
  }
  struct Row {
    std::string_view name;
    Direction dir;
    bool bias;
  };
  static constexpr std::array<Row, 6> kDirs = {{
      {"FWD_B", Direction::kForward, true},
      {"FWD_D", Direction::kForward, false},
      {"FWD_I", Direction::kForward, false},  // inference: the same computation as FWD_D
      {"BWD_D", Direction::kBackwardData, false},
      {"BWD_W", Direction::kBackwardWeights, false},
      {"BWD_WB", Direction::kBackwardWeights, true},
  }};
  for (const Row& row : kDirs) {
    if (v == row.name) {
      k->direction = row.dir;
      k->bias = row.bias;
      return Status::Ok();
    }
  }
  return Invalid(kForm, "unknown direction " + Quote(v) +
                            " in --dir (allowed: FWD_B FWD_D FWD_I BWD_D BWD_W BWD_WB)");
}

StatusOr<DataType> DataTypeOf(std::string_view option, std::string_view v) {
  if (v == "f32") return DataType::kF32;
  if (v == "f16") return DataType::kF16;
  if (v == "bf16") return DataType::kBF16;
  static constexpr std::array<std::string_view, 12> kOther = {
      "s8",   "u8",      "s32",     "f64", "f8_e5m2", "f8_e4m3",
      "e8m0", "f4_e2m1", "f4_e3m0", "s4",  "u4",      "bf8"};
  for (std::string_view other : kOther) {
    if (v == other) {
      return Unsupported(kForm, std::string(option) + ": data type " + Quote(v) +
                                    " is not one convguard runs (allowed: f32 f16 bf16)");
    }
  }
  return Invalid(
      kForm, std::string(option) + ": unknown data type " + Quote(v) + " (allowed: f32 f16 bf16)");
}

Status ParseDt(std::string_view v, Knobs* k) {
  const std::vector<std::string_view> parts = Split(v, ':');
  if (parts.size() != 1 && parts.size() != 3) {
    return Invalid(
        kForm, "--dt=" + std::string(v) + " takes one type or three (src:wei:dst), e.g. --dt=f16");
  }
  std::optional<DataType> common;
  for (std::string_view part : parts) {
    CG_ASSIGN_OR_RETURN(DataType t, DataTypeOf("--dt", part));
    if (common && *common != t) {
      return Unsupported(kForm, "--dt=" + std::string(v) +
                                    " mixes data types; convguard runs one type for all tensors");
    }
    common = t;
  }
  k->dtype = common;
  return Status::Ok();
}

Status ParseCfg(std::string_view v, Knobs* k) {
  if (v == "f32")
    k->dtype = DataType::kF32;
  else if (v == "f16")
    k->dtype = DataType::kF16;
  else if (v == "bf16bf16bf16")
    k->dtype = DataType::kBF16;
  else {
    return Unsupported(kForm, "--cfg=" + std::string(v) +
                                  " is not a configuration convguard runs (allowed: f32 f16 "
                                  "bf16bf16bf16)");
  }
  return Status::Ok();
}

// A memory tag: nullopt for "any" (the library chooses), else the layout it names.
StatusOr<std::optional<Layout>> ParseTag(std::string_view option, std::string_view v) {
  if (v == "any") return std::optional<Layout>();
  if (v == "abx" || v == "abcd" || v == "nchw" || v == "oihw") return std::optional(Layout::kNCHW);
  if (v == "axb" || v == "acdb" || v == "nhwc" || v == "ohwi") return std::optional(Layout::kNHWC);
  return Unsupported(kForm, std::string(option) + "=" + std::string(v) +
                                " is not a layout convguard runs (allowed: any, abx or abcd or "
                                "nchw for NCHW, axb or acdb or nhwc for NHWC)");
}

StatusOr<Knobs> ParseKnobs(const std::vector<std::string_view>& words) {
  Knobs k;
  std::vector<std::string_view> seen;
  for (std::string_view word : words) {
    if (word == "--conv") continue;  // the driver selector; it is this form's only driver
    const size_t eq = word.find('=');
    const std::string_view name = word.substr(0, eq);
    if (eq == std::string_view::npos) {
      return Invalid(kForm, "option " + Quote(word) +
                                " has no '=value' (write e.g. --dir=FWD_D; "
                                "allowed: " +
                                std::string(kAllowedKnobs) + ")");
    }
    const std::string_view value = word.substr(eq + 1);
    for (std::string_view earlier : seen) {
      if (earlier == name) {
        return Invalid(kForm, "option " + Quote(word) + " repeats " + Quote(name) +
                                  " (each option may appear once)");
      }
    }
    seen.push_back(name);
    if (name == "--dir") {
      CG_RETURN_IF_ERROR(ParseDir(value, &k));
    } else if (name == "--dt" || name == "--cfg") {
      for (std::string_view earlier : seen) {
        if (earlier != name && (earlier == "--dt" || earlier == "--cfg")) {
          return Invalid(kForm, "option " + Quote(word) + " repeats the data type already set by " +
                                    Quote(earlier) + " (give --dt or --cfg, not both)");
        }
      }
      CG_RETURN_IF_ERROR(name == "--dt" ? ParseDt(value, &k) : ParseCfg(value, &k));
    } else if (name == "--stag") {
      CG_ASSIGN_OR_RETURN(k.src_layout, ParseTag(name, value));
    } else if (name == "--wtag") {
      CG_ASSIGN_OR_RETURN(k.wei_layout, ParseTag(name, value));
    } else if (name == "--dtag") {
      CG_ASSIGN_OR_RETURN(k.dst_layout, ParseTag(name, value));
    } else if (name == "--mb") {
      CG_ASSIGN_OR_RETURN(k.mb_override, ParseCount(kForm, "option " + Quote(word), value));
    } else if (name == "--alg") {
      // The algorithm is how oneDNN computes, not what.
      if (value != "DIRECT" && value != "WINO" && value != "AUTO" && value != "direct" &&
          value != "wino" && value != "auto") {
        return Invalid(kForm, "option " + Quote(word) + " (allowed: DIRECT WINO AUTO)");
      }
    } else if (StartsWith(name, "--attr-")) {
      return Unsupported(kForm, "option " + Quote(word) +
                                    " adds attributes (scales, zero points, post-ops) that change "
                                    "the computation; convguard probes the plain convolution");
    } else {
      return Invalid(kForm, "unknown option " + Quote(word) +
                                " (allowed: " + std::string(kAllowedKnobs) + ")");
    }
  }
  return k;
}

}  // namespace

StatusOr<Problem> ParseBenchdnn(std::string_view input) {
  const std::string_view text = Trim(input);
  // The knobs are the leading "--" words (after an optional program name); the descriptor
  // is everything after them, so a quoted name may contain spaces.
  std::vector<std::string_view> knob_words;
  size_t pos = 0;
  bool first = true;
  while (pos < text.size()) {
    while (pos < text.size() && IsSpace(text[pos])) ++pos;
    size_t end = pos;
    while (end < text.size() && !IsSpace(text[end])) ++end;
    const std::string_view word = text.substr(pos, end - pos);
    const bool program = first && EndsWith(word, "benchdnn");
    first = false;
    if (!program && !StartsWith(word, "--")) break;
    if (!program) knob_words.push_back(word);
    pos = end;
  }
  CG_ASSIGN_OR_RETURN(Knobs knobs, ParseKnobs(knob_words));
  CG_ASSIGN_OR_RETURN(Problem p, DescriptorToProblem(text.substr(pos)));

  if (knobs.mb_override > 0) p.n = knobs.mb_override;
  p.direction = knobs.direction.value_or(Direction::kForward);
  p.bias = knobs.bias;
  p.dtype = knobs.dtype.value_or(DataType::kF32);
  std::optional<Layout> layout;
  for (const std::optional<Layout>& tag : {knobs.src_layout, knobs.wei_layout, knobs.dst_layout}) {
    if (!tag) continue;
    if (layout && *layout != *tag) {
      return Unsupported(kForm,
                         "--stag, --wtag and --dtag name different layouts; convguard runs "
                         "one layout for all tensors");
    }
    layout = tag;
  }
  p.layout = layout.value_or(Layout::kNCHW);
  CG_RETURN_IF_ERROR(ValidateFor(kForm, p));
  return p;
}

}  // namespace text_internal

StatusOr<std::string> ToBenchdnn(const Problem& p) {
  using namespace text_internal;
  CG_RETURN_IF_ERROR(ValidateFor(kForm, p));
  CG_RETURN_IF_ERROR(RequireReadableOutputSize(kForm, p));
  std::string dir;
  switch (p.direction) {
    case Direction::kForward: dir = p.bias ? "FWD_B" : "FWD_D"; break;
    case Direction::kBackwardData:
      if (p.bias) {
        return Unsupported(kForm,
                           "benchdnn has no backward-data direction with bias (BWD_D "
                           "computes no bias gradient)");
      }
      dir = "BWD_D";
      break;
    case Direction::kBackwardWeights: dir = p.bias ? "BWD_WB" : "BWD_W"; break;
  }
  // benchdnn has no end-padding field: it is implied by the output size. Refuse problems
  // whose end padding the parser would read back differently.
  const int64_t bottom = ResolveEndPad(p.h, p.out_h(), p.effective_r(), p.stride_h, p.pad_top);
  const int64_t right = ResolveEndPad(p.w, p.out_w(), p.effective_s(), p.stride_w, p.pad_left);
  if (bottom != p.pad_bottom || right != p.pad_right) {
    return Unsupported(kForm, "benchdnn implies the bottom/right padding from oh/ow; with ph" +
                                  std::to_string(p.pad_top) + " pw" + std::to_string(p.pad_left) +
                                  " oh" + std::to_string(p.out_h()) + " ow" +
                                  std::to_string(p.out_w()) + " it reads as bottom " +
                                  std::to_string(bottom) + " right " + std::to_string(right) +
                                  ", not " + std::to_string(p.pad_bottom) + " and " +
                                  std::to_string(p.pad_right) +
                                  " (extra padding rows that the stride never reaches)");
  }
  auto num = [](int64_t v) { return std::to_string(v); };
  std::string out = "--dir=" + dir + " ";
  if (p.dtype != DataType::kF32) {
    out += "--dt=";
    out += DataTypeName(p.dtype);
    out += " ";
  }
  if (p.layout == Layout::kNHWC) out += "--stag=axb --dtag=axb ";
  if (p.groups != 1) out += "g" + num(p.groups);
  out += "mb" + num(p.n) + "ic" + num(p.c) + "ih" + num(p.h) + "iw" + num(p.w);
  out += "oc" + num(p.k) + "oh" + num(p.out_h()) + "ow" + num(p.out_w());
  out += "kh" + num(p.r) + "kw" + num(p.s);
  out += "sh" + num(p.stride_h) + "sw" + num(p.stride_w);
  out += "ph" + num(p.pad_top) + "pw" + num(p.pad_left);
  out += "dh" + num(p.dilation_h - 1) + "dw" + num(p.dilation_w - 1);
  return out;
}

}  // namespace convguard
