#include "convguard/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

#include "convguard/fill.h"
#include "convguard/reference.h"

namespace convguard {
namespace {

std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

// Checks of the REQUIRES clauses; each returns an empty string when satisfied.
std::string CheckResultSize(const Problem& p, size_t size, std::string_view what) {
  const ResultView view(p);
  if (static_cast<int64_t>(size) != view.elements()) {
    return std::string(what) + " has " + std::to_string(size) + " elements; the " +
           std::string(TensorName(view.role(), p.direction)) + " tensor of this problem has " +
           std::to_string(view.elements());
  }
  return {};
}

std::string CheckOffsets(const Problem& p, std::span<const int64_t> offsets) {
  const int64_t elements = ResultView(p).elements();
  for (size_t i = 0; i < offsets.size(); ++i) {
    if (offsets[i] < 0 || offsets[i] >= elements) {
      return "sample offset #" + std::to_string(i) + " = " + std::to_string(offsets[i]) +
             " is out of range; allowed 0.." + std::to_string(elements - 1);
    }
  }
  return {};
}

// The Comparison of a call that broke its REQUIRES: nothing compared, not a pass.
Comparison Misuse(const Problem& p, double tolerance, std::string error) {
  Comparison cmp;
  cmp.tolerance = tolerance;
  cmp.trust_level = TrustNonzeroLevel(p);
  cmp.mistrusted = true;
  cmp.error = std::move(error);
  return cmp;
}

// The comparison over `count` elements; at(i) gives (offset, reference value) of the
// i-th. Two passes: the first finds the scale, the second the errors.
template <typename At>
Comparison Compare(const Problem& p, std::span<const float> result, int64_t count, At at,
                   double tolerance) {
  Comparison cmp;
  cmp.tolerance = tolerance;
  cmp.trust_level = TrustNonzeroLevel(p);
  cmp.checked = count;
  double max_ref = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double ref = at(i).second;
    max_ref = std::max(max_ref, std::fabs(ref));
    cmp.reference_nonzero += ref != 0.0;
  }
  cmp.scale = std::max(1.0, max_ref);
  const double allowed = tolerance * cmp.scale;

  int64_t first_non_finite = -1;
  int64_t worst_error_offset = -1;
  double worst_got = 0, worst_ref = 0;
  for (int64_t i = 0; i < count; ++i) {
    const auto [offset, ref] = at(i);
    const double got = result[static_cast<size_t>(offset)];
    if (!std::isfinite(got)) {
      if (cmp.non_finite++ == 0) {
        first_non_finite = offset;
        cmp.worst_result = got;
        cmp.worst_reference = ref;
      }
      continue;
    }
    const double err = std::fabs(got - ref);
    if (err > allowed) ++cmp.mismatches;
    if (err > cmp.max_abs_error) {
      cmp.max_abs_error = err;
      worst_error_offset = offset;
      worst_got = got;
      worst_ref = ref;
    }
  }
  cmp.max_rel_error = cmp.max_abs_error / cmp.scale;
  if (first_non_finite >= 0) {
    cmp.worst_offset = first_non_finite;
  } else if (worst_error_offset >= 0) {
    cmp.worst_offset = worst_error_offset;
    cmp.worst_result = worst_got;
    cmp.worst_reference = worst_ref;
  }
  if (cmp.worst_offset >= 0) cmp.worst_location = ResultView(p).Describe(cmp.worst_offset);
  cmp.mistrusted = count == 0 || static_cast<double>(cmp.reference_nonzero) <
                                     cmp.trust_level * static_cast<double>(count);
  return cmp;
}

}  // namespace

std::string Comparison::Summary() const {
  if (!error.empty()) return "not compared: " + error;
  std::string s = "checked " + std::to_string(checked) + ": " + std::to_string(mismatches) +
                  (mismatches == 1 ? " mismatch, " : " mismatches, ") + std::to_string(non_finite) +
                  " non-finite, max error " + FormatNumber(max_abs_error) + " (rel " +
                  FormatNumber(max_rel_error) + ", tolerance " + FormatNumber(tolerance) + ")";
  if (worst_offset >= 0) {
    s += " at " + worst_location + ": got " + FormatNumber(worst_result) + " expected " +
         FormatNumber(worst_reference);
  }
  const double nz =
      checked > 0 ? 100.0 * static_cast<double>(reference_nonzero) / static_cast<double>(checked)
                  : 0.0;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "; reference nonzero %.1f%%", nz);
  s += buf;
  if (mistrusted) {
    std::snprintf(buf, sizeof(buf), " (mistrusted: below %.1f%%)", 100.0 * trust_level);
    s += buf;
  }
  return s;
}

double DefaultTolerance(const Problem& p, bool exact_filled) {
  if (exact_filled) return 0.0;
  const double u_out = std::ldexp(1.0, -ExactIntegerDigits(p.dtype));
  const double u_f32 = std::ldexp(1.0, -24);
  const double terms = static_cast<double>(std::max<int64_t>(1, p.accumulation_length()));
  return 4.0 * u_out + 16.0 * std::sqrt(terms) * u_f32;
}

double TrustNonzeroLevel(const Problem& p) {
  constexpr double kBase = 0.3;
  switch (p.direction) {
    case Direction::kForward: return kBase;
    case Direction::kBackwardData: return kBase / static_cast<double>(p.stride_h * p.stride_w);
    case Direction::kBackwardWeights: {
      const int64_t taps = p.r * p.s;
      const int64_t least = std::min({taps, p.h * p.w, p.out_h() * p.out_w()});
      return kBase * static_cast<double>(least) / static_cast<double>(taps);
    }
  }
  return kBase;
}

Comparison CompareFull(const Problem& p, std::span<const float> result,
                       std::span<const double> reference, double tolerance) {
  std::string error = CheckResultSize(p, result.size(), "result");
  if (error.empty()) error = CheckResultSize(p, reference.size(), "reference");
  if (!error.empty()) return Misuse(p, tolerance, std::move(error));
  return Compare(
      p, result, static_cast<int64_t>(reference.size()),
      [&](int64_t i) { return std::pair<int64_t, double>(i, reference[static_cast<size_t>(i)]); },
      tolerance);
}

Comparison CompareSampled(const Problem& p, std::span<const float> result,
                          std::span<const int64_t> offsets,
                          std::span<const double> reference_values, double tolerance) {
  std::string error = CheckResultSize(p, result.size(), "result");
  if (error.empty() && offsets.size() != reference_values.size()) {
    error = std::to_string(offsets.size()) + " sample offsets but " +
            std::to_string(reference_values.size()) + " reference values; they must pair up";
  }
  if (error.empty()) error = CheckOffsets(p, offsets);
  if (!error.empty()) return Misuse(p, tolerance, std::move(error));
  return Compare(
      p, result, static_cast<int64_t>(offsets.size()),
      [&](int64_t i) {
        return std::pair<int64_t, double>(offsets[static_cast<size_t>(i)],
                                          reference_values[static_cast<size_t>(i)]);
      },
      tolerance);
}

Comparison CompareSampledWithReference(const Problem& p, std::span<const float> result,
                                       const ConvTensors<double>& inputs,
                                       std::span<const int64_t> offsets, double tolerance) {
  std::string error = CheckResultSize(p, result.size(), "result");
  if (error.empty()) error = CheckOffsets(p, offsets);
  if (!error.empty()) return Misuse(p, tolerance, std::move(error));
  const bool sized = static_cast<int64_t>(inputs.input.size()) == p.input_elements() &&
                     static_cast<int64_t>(inputs.weight.size()) == p.weight_elements() &&
                     static_cast<int64_t>(inputs.output.size()) == p.output_elements() &&
                     static_cast<int64_t>(inputs.bias.size()) >=
                         (p.direction == Direction::kForward ? p.bias_elements() : 0);
  if (!sized) {
    return Misuse(p, tolerance,
                  "the float64 input tensors are not sized for this problem (allocate them "
                  "with ConvTensors<double>::Allocate)");
  }
  const std::vector<double> values = ReferenceValuesAt(p, inputs, offsets);
  return CompareSampled(p, result, offsets, values, tolerance);
}

std::string_view CheckModeName(CheckMode m) {
  switch (m) {
    case CheckMode::kNone: return "none";
    case CheckMode::kSampled: return "sampled";
    case CheckMode::kFull: return "full";
  }
  return "?";
}

StatusOr<CheckMode> ParseCheckMode(std::string_view name) {
  if (name == "none") return CheckMode::kNone;
  if (name == "sampled") return CheckMode::kSampled;
  if (name == "full") return CheckMode::kFull;
  return Status::InvalidArgument("check mode '" + std::string(name) +
                                 "' is unknown (allowed: none, sampled, full)");
}

}  // namespace convguard
