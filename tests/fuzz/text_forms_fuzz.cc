// libFuzzer entry point for the four problem text forms (src/text: canonical, MIOpen key,
// MIOpenDriver arguments, benchdnn; include/convguard/text_forms.h).
//
// Any bytes are a problem text to read, by form detection and by each form's parser. The
// parsers must not crash, throw or hang, and every problem they return must hold together.
// Properties checked on every input:
//   - ParseProblem (detected form, and each form named) fails only with kInvalidArgument,
//     kOutOfRange or kUnsupported, with a message that starts with the form it tried;
//   - a parsed problem passes Validate and reads back as itself from its canonical text,
//     by detection and as canonical;
//   - for every form F whose printer accepts the problem, the printed text is detected as
//     F, parses (as F and by detection) to a problem with the same canonical text, and
//     prints again to the same text: print(parse(print(p))) == print(p); a printer that
//     refuses a valid problem says kUnsupported.
// The same round trips also run on a problem built field by field from the input bytes
// (small values, and values at the 2^31 ceiling), so that the printers meet shapes no
// parser would produce, such as asymmetric padding with huge dilations.
// A broken property aborts with a message, which libFuzzer reports as a crash.
//
// Built by scripts/fuzz.sh; seeds in tests/fuzz/corpus/text_forms/.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "convguard/problem.h"
#include "convguard/status.h"
#include "convguard/text_forms.h"
#include "fuzz/fuzz_check.h"

namespace {

using namespace convguard;

constexpr std::string_view kTarget = "text_forms_fuzz";
// Problem texts are one line; longer inputs only repeat work.
constexpr size_t kMaxInputBytes = 4096;

constexpr std::array<TextForm, 4> kForms = {TextForm::kCanonical, TextForm::kMiopenKey,
                                            TextForm::kMiopenDriver, TextForm::kBenchdnn};

void Check(bool ok, std::string_view what, std::string_view detail = "") {
  if (!ok) fuzz::Fail(kTarget, what, detail);
}

void CheckParseError(const Status& s, TextForm form, std::string_view text) {
  const StatusCode code = s.code();
  Check(code == StatusCode::kInvalidArgument || code == StatusCode::kOutOfRange ||
            code == StatusCode::kUnsupported,
        "a parser failed with another code", s.ToString() + " for " + std::string(text));
  const std::string prefix = std::string(TextFormName(form)) + ": ";
  Check(s.message().starts_with(prefix), "a parse error does not name its form",
        s.message() + " (expected it to start with '" + prefix + "')");
}

// The round trips of a valid problem through every form.
void CheckRoundTrips(const Problem& p) {
  const std::string canonical = ToCanonical(p);
  Check(Validate(p).ok(), "a parsed problem fails Validate", canonical);

  StatusOr<Problem> back = ParseProblem(canonical);
  Check(back.ok() && *back == p, "canonical text does not read back by detection", canonical);
  back = ParseProblem(canonical, TextForm::kCanonical);
  Check(back.ok() && *back == p, "canonical text does not read back", canonical);

  for (TextForm form : kForms) {
    const std::string form_name(TextFormName(form));
    StatusOr<std::string> printed = PrintProblem(p, form);
    if (!printed.ok()) {
      Check(printed.status().code() == StatusCode::kUnsupported,
            "a printer refuses a valid problem with another code than kUnsupported",
            form_name + " of " + canonical + ": " + printed.status().ToString());
      continue;
    }
    Check(DetectTextForm(*printed) == form, "printed text is detected as another form",
          form_name + " " + *printed + " detected as " +
              std::string(TextFormName(DetectTextForm(*printed))));
    StatusOr<Problem> parsed = ParseProblem(*printed, form);
    Check(parsed.ok(), "printed text does not parse",
          form_name + " " + *printed + ": " + (parsed.ok() ? "" : parsed.status().ToString()));
    Check(ToCanonical(*parsed) == canonical, "printed text reads back as another problem",
          form_name + " " + *printed + " of " + canonical + " reads as " + ToCanonical(*parsed));
    StatusOr<Problem> detected = ParseProblem(*printed);
    Check(detected.ok() && ToCanonical(*detected) == canonical,
          "printed text reads back as another problem by detection", form_name + " " + *printed);
    StatusOr<std::string> again = PrintProblem(*parsed, form);
    Check(again.ok() && *again == *printed, "print(parse(print(p))) != print(p)",
          form_name + " " + *printed + " -> " + (again.ok() ? *again : again.status().ToString()));
  }
}

// Reads the input bytes as the fields of a problem, cycling through them.
class FieldBytes {
 public:
  explicit FieldBytes(std::string_view bytes) : bytes_(bytes) {}

  uint8_t Byte() { return static_cast<uint8_t>(bytes_[at_++ % bytes_.size()]); }

  // Mostly small values (0 included, so that Validate's lower bounds are met), sometimes
  // one near a limit.
  int64_t Value() {
    static constexpr std::array<int64_t, 8> kLarge = {int64_t{1} << 31,
                                                      (int64_t{1} << 31) - 1,
                                                      int64_t{1} << 20,
                                                      65535,
                                                      65536,
                                                      100000,
                                                      int64_t{1} << 16,
                                                      4096};
    const uint8_t b = Byte();
    if (b < 224) return b % 40;
    return kLarge[b % kLarge.size()];
  }

 private:
  std::string_view bytes_;
  size_t at_ = 0;
};

Problem ProblemFromBytes(std::string_view bytes) {
  FieldBytes f(bytes);
  Problem p;
  p.n = f.Value();
  p.c = f.Value();
  p.h = f.Value();
  p.w = f.Value();
  p.k = f.Value();
  p.r = f.Value();
  p.s = f.Value();
  p.pad_top = f.Value();
  p.pad_left = f.Value();
  p.pad_bottom = f.Value();
  p.pad_right = f.Value();
  p.stride_h = f.Value();
  p.stride_w = f.Value();
  p.dilation_h = f.Value();
  p.dilation_w = f.Value();
  p.groups = f.Value();
  const uint8_t flags = f.Byte();
  p.bias = (flags & 1) != 0;
  p.dtype = static_cast<DataType>((flags >> 1) % 3);
  p.layout = static_cast<Layout>((flags >> 3) & 1);
  p.direction = static_cast<Direction>((flags >> 4) % 3);
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInputBytes) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const TextForm detected_form = DetectTextForm(text);
  StatusOr<Problem> detected = ParseProblem(text);
  if (detected.ok()) {
    CheckRoundTrips(*detected);
  } else {
    CheckParseError(detected.status(), detected_form, text);
  }
  for (TextForm form : kForms) {
    StatusOr<Problem> p = ParseProblem(text, form);
    if (!p.ok()) {
      CheckParseError(p.status(), form, text);
      continue;
    }
    if (form == detected_form) {
      Check(detected.ok() && *detected == *p, "detection and the detected form's parser disagree",
            std::string(text));
    }
    CheckRoundTrips(*p);
  }

  if (size > 0) {
    const Problem p = ProblemFromBytes(text);
    if (Validate(p).ok()) CheckRoundTrips(p);
  }
  return 0;
}
