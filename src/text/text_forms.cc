// Form detection and dispatch for the text forms (see text_forms.h and
// docs/problem-forms.md). The per-form grammars live in canonical.cc, miopen_key.cc,
// miopen_driver.cc and benchdnn.cc.
#include "convguard/text_forms.h"

#include <string>
#include <string_view>
#include <vector>

#include "text/text_util.h"

namespace convguard {

std::string_view TextFormName(TextForm f) {
  switch (f) {
    case TextForm::kCanonical: return "canonical";
    case TextForm::kMiopenKey: return "miopen-key";
    case TextForm::kMiopenDriver: return "miopen-driver";
    case TextForm::kBenchdnn: return "benchdnn";
  }
  return "?";
}

TextForm DetectTextForm(std::string_view input) {
  using namespace text_internal;
  const std::string_view text = Trim(input);
  const std::vector<std::string_view> words = SplitWhitespace(text);
  const std::string_view first = words.empty() ? std::string_view() : words[0];

  // A program name or a driver command is unambiguous; no other form starts like these.
  if (StartsWith(first, "conv") || EndsWith(first, "MIOpenDriver")) return TextForm::kMiopenDriver;
  if (StartsWith(text, "--") || EndsWith(first, "benchdnn")) return TextForm::kBenchdnn;

  // MIOpen keys are '-'-separated and start with a number (C) and end in the direction;
  // neither canonical tokens nor benchdnn fields start with a digit. The '_' suffix
  // ("_g2") is not part of the '-' fields.
  const std::string_view main = text.substr(0, text.find('_'));
  if (main.find('-') != std::string_view::npos) {
    const std::string_view last = main.substr(main.rfind('-') + 1);
    if ((!main.empty() && IsDigit(main[0])) || last == "F" || last == "B" || last == "W") {
      return TextForm::kMiopenKey;
    }
  }

  // Canonical when most '_' tokens look canonical: a typo in one token should still be
  // reported by the canonical parser (naming the token), while benchdnn descriptors, even
  // with '_' between groups ("ic3ih227_oc96oh55_kh11"), have almost no such tokens.
  const std::vector<std::string_view> tokens = Split(text, '_');
  size_t canonical_like = 0;
  for (std::string_view t : tokens) {
    if (LooksLikeCanonicalToken(t)) ++canonical_like;
  }
  if (!text.empty() && 2 * canonical_like > tokens.size()) return TextForm::kCanonical;
  return TextForm::kBenchdnn;
}

StatusOr<Problem> ParseProblem(std::string_view text, TextForm form) {
  switch (form) {
    case TextForm::kCanonical: return text_internal::ParseCanonical(text);
    case TextForm::kMiopenKey: return text_internal::ParseMiopenKey(text);
    case TextForm::kMiopenDriver: return text_internal::ParseMiopenDriver(text);
    case TextForm::kBenchdnn: return text_internal::ParseBenchdnn(text);
  }
  return Status::Internal("ParseProblem: unknown TextForm value " +
                          std::to_string(static_cast<int>(form)));
}

StatusOr<Problem> ParseProblem(std::string_view text) {
  // Every parser's messages start with its form name, so the caller can tell which form
  // was tried when detection guessed something other than what was meant.
  return ParseProblem(text, DetectTextForm(text));
}

StatusOr<std::string> PrintProblem(const Problem& p, TextForm form) {
  switch (form) {
    case TextForm::kCanonical: return ToCanonical(p);
    case TextForm::kMiopenKey: return ToMiopenKey(p);
    case TextForm::kMiopenDriver: return ToMiopenDriver(p);
    case TextForm::kBenchdnn: return ToBenchdnn(p);
  }
  return Status::Internal("PrintProblem: unknown TextForm value " +
                          std::to_string(static_cast<int>(form)));
}

}  // namespace convguard
