// convguard/text_forms.h — parsing and printing a Problem in every text form it has.
//
// Forms:
//   kCanonical   convguard's own descriptor, the store key and repro form, e.g.
//                n1_c16_h64_w64_k32_r3_s3_p1_u1_d1_g1_f32_nchw_fwd
//                (grammar in docs/problem-forms.md).
//   kMiopenKey   MIOpen's problem key, e.g.
//                16-64-64-3x3-32-64-64-1-1x1-1x1-1x1-0-NCHW-FP32-F
//   kMiopenDriver MIOpenDriver arguments, e.g.
//                conv -n 1 -c 16 -H 64 -W 64 -k 32 -y 3 -x 3 -p 1 -q 1 -u 1 -v 1 -l 1 -j 1 -g 1 -F
//                1
//   kBenchdnn    oneDNN benchdnn convolution descriptor, optionally preceded by
//                --dir=, --dt= and --stag= options, e.g. mb2ic16ih64oc32oh64kh3ph1
//
// Every printer emits one canonical spelling for its form; every parser accepts that
// spelling and the documented variants, and print(parse(print(p))) == print(p).
// Parsers validate the resulting Problem (Validate with default limits) and return
// kInvalidArgument with a message that quotes the offending token. Printers return
// kUnsupported when the form cannot express the problem (e.g. MIOpen forms and
// asymmetric padding).
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "convguard/problem.h"
#include "convguard/status.h"

namespace convguard {

enum class TextForm { kCanonical, kMiopenKey, kMiopenDriver, kBenchdnn };

std::string_view TextFormName(
    TextForm f);  // "canonical", "miopen-key", "miopen-driver", "benchdnn"

// Guesses the form of `text` from its shape (see docs/problem-forms.md):
// starts with "conv" -> driver; has '-' separated fields ending in F/B/W -> MIOpen key;
// has '_' or is made of n/c/h/w/k/r/s tokens -> canonical; otherwise benchdnn.
TextForm DetectTextForm(std::string_view text);

StatusOr<Problem> ParseProblem(std::string_view text, TextForm form);
// Detects the form, then parses. The error message names the form it tried.
StatusOr<Problem> ParseProblem(std::string_view text);

// Canonical printing cannot fail for a valid problem.
std::string ToCanonical(const Problem& p);
StatusOr<std::string> ToMiopenKey(const Problem& p);
StatusOr<std::string> ToMiopenDriver(const Problem& p);
StatusOr<std::string> ToBenchdnn(const Problem& p);
StatusOr<std::string> PrintProblem(const Problem& p, TextForm form);

}  // namespace convguard
