// convguard/compare.h — a backend's result checked against the float64 reference.
//
// The error measure. For the checked elements let
//   scale = max(1, max |reference|)
// and call an element a mismatch when |result - reference| > tolerance * scale.
// Measuring errors against the largest reference magnitude (not each element's own)
// keeps rounding in a result that cancels to near zero from looking like a huge
// relative error, while an indexing, halo or padding bug still moves elements by about
// the size of typical values. The floor of 1 makes the test absolute for tiny data.
// With tolerance 0 (the default for exactly filled data, see fill.h) any difference at
// all is a mismatch.
//
// Non-finite results (NaN, +-Inf) are counted in `non_finite` and not in `mismatches`;
// an element still holding the NaN poison of PoisonWithNaN is non-finite. A verdict
// layer maps non_finite > 0 or mismatches > 0 to WRONG.
//
// Misuse. The functions REQUIRE spans sized for the problem and offsets in range. A
// violation is a bug in the caller, not a property of the backend; it is still caught in
// every build and reported in the Comparison: `error` says what was wrong, nothing is
// compared (checked == 0), passed() is false and mistrusted is true, so no verdict
// layer can read it as a pass.
//
// Trust (after benchdnn). A comparison proves little when most reference values are
// zero: a backend that wrote zeros, or nothing, into a zero-initialized buffer would
// pass. `mistrusted` is set when the nonzero fraction of the checked reference values
// is below TrustNonzeroLevel(p), or when nothing was checked.
//
// Thread-safety: reentrant, no shared state.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "convguard/problem.h"
#include "convguard/status.h"
#include "convguard/tensor.h"

namespace convguard {

// How a worker checks a result against the float64 reference.
enum class CheckMode {
  kNone,     // no check (timing only)
  kSampled,  // corners, borders, group edges and random interior points (the default)
  kFull,     // every element
};
std::string_view CheckModeName(CheckMode m);  // "none", "sampled", "full"
// Errors: kInvalidArgument naming the allowed modes.
StatusOr<CheckMode> ParseCheckMode(std::string_view name);

struct Comparison {
  int64_t checked = 0;            // elements compared
  int64_t mismatches = 0;         // finite results off by more than tolerance * scale
  int64_t non_finite = 0;         // NaN or Inf results
  int64_t reference_nonzero = 0;  // checked elements whose reference value is not 0
  double max_abs_error = 0;       // max |result - reference| over finite results
  double max_rel_error = 0;       // max_abs_error / scale: the quantity held to tolerance
  int64_t worst_offset = -1;      // result-tensor offset of the first non-finite result if
                                  // any, else of the largest error; -1 when all are equal
  bool mistrusted = false;        // too few nonzero reference values to prove anything

  double tolerance = 0;     // the tolerance applied
  double scale = 1;         // max(1, max |reference| over the checked elements)
  double trust_level = 0;   // TrustNonzeroLevel(p) that `mistrusted` was judged by
  double worst_result = 0;  // result and reference at worst_offset
  double worst_reference = 0;
  std::string worst_location;  // e.g. "y[n=0,k=3,oh=5,ow=7]"; empty when worst_offset < 0
  std::string error;           // non-empty when the call violated its REQUIRES (see above)

  // True when nothing is wrong: no mismatches, no non-finite values, no misuse. (Trust
  // is a separate question: see mistrusted.)
  bool passed() const { return mismatches == 0 && non_finite == 0 && error.empty(); }

  // One line, e.g. "checked 131072: 1 mismatch, 0 non-finite, max error 3 (rel 2.1e-05,
  // tolerance 0) at y[n=0,k=3,oh=5,ow=7]: got 145 expected 142; reference nonzero 99.2%".
  std::string Summary() const;
};

// Tolerance for comparing a result of `p` against the float64 reference, in the units
// of the error measure above.
//   exact_filled (inputs from FillExact): 0. Every multiply-add algorithm reproduces
//     the exact integer; a transform-based one (Winograd, FFT) may not, and a caller
//     that knows it ran one should pass the inexact tolerance instead.
//   otherwise: 4 u_out + 16 sqrt(terms) u_f32, where u_out = 2^-digits of p.dtype (the
//     final rounding of the result) and the second term is f32 accumulation over
//     p.accumulation_length() terms, a generous bound on the typical (sqrt) growth of
//     rounding error relative to the largest magnitude. It assumes the inputs given to
//     the backend are exactly the reference's inputs (already representable in the
//     dtype), f32 multiplies for f32 (no TF32), and f32 accumulation for f16/bf16.
double DefaultTolerance(const Problem& p, bool exact_filled);

// The least fraction of nonzero reference values for a trusted comparison (benchdnn's
// rule): 0.3 for forward; 0.3 / (stride_h * stride_w) for backward-data, where strides
// leave input points that no output reaches; 0.3 * min(r*s, h*w, oh*ow) / (r*s) for
// backward-weights, where taps that only ever see padding have zero gradient.
double TrustNonzeroLevel(const Problem& p);

// Compares every element of `result` with `reference` (both the full result tensor of
// `p`, same layout).
// REQUIRES: Validate(p).ok(); both spans have ResultView(p).elements() elements.
Comparison CompareFull(const Problem& p, std::span<const float> result,
                       std::span<const double> reference, double tolerance);

// Compares result[offsets[i]] with reference_values[i] for every i (values from
// ReferenceValuesAt, or gathered from a full reference).
// REQUIRES: Validate(p).ok(); result has ResultView(p).elements() elements; offsets and
// reference_values have the same length; every offset is in [0, elements).
Comparison CompareSampled(const Problem& p, std::span<const float> result,
                          std::span<const int64_t> offsets,
                          std::span<const double> reference_values, double tolerance);

// CompareSampled with the reference values computed by ReferenceAt from `inputs` (the
// float64 tensors the backend's inputs were converted from).
// REQUIRES: as CompareSampled, and `inputs` sized as by ConvTensors<double>::Allocate(p).
Comparison CompareSampledWithReference(const Problem& p, std::span<const float> result,
                                       const ConvTensors<double>& inputs,
                                       std::span<const int64_t> offsets, double tolerance);

}  // namespace convguard
