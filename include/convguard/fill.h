// convguard/fill.h — input data whose correct convolution result is exact.
//
// The idea is oneDNN benchdnn's: fill the operands with small integers and enough
// zeros that every sum the convolution forms is an integer the problem's data type
// holds exactly. Then every correct algorithm that multiplies and adds (direct, GEMM,
// implicit GEMM, split reductions, atomics, any summation order, TF32 multiplies)
// produces the reference bit for bit, and any difference is a real error rather than
// rounding. Transform-based algorithms (Winograd, FFT) are the exception: they divide,
// so they round even on integer data.
//
// The bound. A type with `digits` significand bits (f32: 24, f16: 11, bf16: 8) holds
// every integer of magnitude <= 2^digits. FillExact guarantees, for every element of
// the result, that the sum of |product| over all its terms (plus |bias|) is at most
// 2^digits of the problem's dtype. That bounds every partial sum in every order and
// every single product, so:
//   - f32: accumulation in f32 is exact; the result is exact.
//   - f16/bf16: we bound by the output type, not by the f32 accumulator most hardware
//     uses, because the result is finally rounded to f16/bf16 and must survive that,
//     and because some kernels accumulate in the half type itself: with the tighter
//     bound those are exact too. Inputs (|value| <= 32) are exact in every dtype.
//
// How the bound is met. One operand of each direction is "dense", the other "sparse":
//   forward:          x dense; w sparse, per output channel k (the c/g*r*s weights that
//                     meet in one y element); bias dense.
//   backward-data:    dy dense; w sparse, per input channel column (the k/g*r*s weights
//                     that meet in one dx element).
//   backward-weights: x dense; dy sparse, per output channel k (the n*oh*ow values that
//                     meet in one dw element).
// Dense values are drawn from the nonzero integers in [-dense_max, dense_max]; each
// sparse slice gets exactly `nonzero_terms` nonzero values in [-sparse_max, sparse_max]
// at random positions, the rest zero. Since every term of a result element takes its
// sparse factor from one slice, no element sums more than nonzero_terms nonzero
// products: the bound holds by construction, not merely on average as benchdnn's
// Bernoulli density does. The magnitudes are the largest pair from a ladder
// (32x32, 32x16, 16x16, ..., 2x1, 1x1) that keeps the slices fully dense
// (accumulation_length() * dense_max * sparse_max <= 2^digits, bias counted as one
// term); when even 1x1 cannot, values are +-1 and nonzero_terms = 2^digits minus the
// bias term.
//
// Values are a hash of (seed, tensor, logical index), so they do not depend on the
// layout: an NCHW and an NHWC problem of the same shape get the same logical tensors.
//
// Thread-safety: reentrant, no shared state.
#pragma once

#include <cstdint>
#include <span>

#include "convguard/problem.h"
#include "convguard/reference.h"
#include "convguard/tensor.h"

namespace convguard {

// Significand bits of a dtype, counting the implicit bit: 24, 11, 8.
int ExactIntegerDigits(DataType t);
// 2^ExactIntegerDigits(t): every integer of at most this magnitude is exact in t.
double ExactIntegerLimit(DataType t);

// What FillExact does (or did) for a problem.
struct FillSummary {
  TensorRole dense = TensorRole::kInput;    // the dense operand
  TensorRole sparse = TensorRole::kWeight;  // the operand sparsified per slice
  int64_t dense_max = 1;                    // dense values: nonzero, |v| <= dense_max
  int64_t sparse_max = 1;                   // sparse nonzeros: |v| <= sparse_max
  int64_t bias_max = 0;                     // forward bias: nonzero, |v| <= bias_max; 0 = none
  int64_t terms = 0;          // products per result element at most (accumulation_length()
                              // without the bias term); also the length of a sparse slice
  int64_t nonzero_terms = 0;  // nonzero values per sparse slice (<= terms)
  double density = 1.0;       // nonzero_terms / terms
  double max_abs_result = 0;  // guaranteed bound on |any partial sum| of any result element
  double exact_limit = 0;     // ExactIntegerLimit(dtype); max_abs_result <= exact_limit
};

// The fill FillExact would perform for `p`, without touching data.
// REQUIRES: Validate(p).ok().
FillSummary PlanExactFill(const Problem& p);

// Fills the tensors `p`'s direction READS (forward: input, weight, bias if p.bias;
// backward-data: output (dy) and weight; backward-weights: input and output (dy)) as
// described above, deterministically for a given seed; different seeds give different
// data. The result tensor is left untouched (poison it before a backend writes it).
// Tensors it fills are resized to p's sizes if needed. Returns PlanExactFill(p).
// REQUIRES: Validate(p).ok().
FillSummary FillExact(const Problem& p, uint64_t seed, ConvTensors<double>& t);

// Fills with quiet NaN, so that any element a backend fails to write is seen by the
// comparison as non-finite.
void PoisonWithNaN(std::span<float> data);
void PoisonWithNaN(std::span<double> data);

// Copies every tensor of `exact` into float32 (exactly: FillExact's values are small
// integers) and poisons the tensor p's direction produces with NaN, so that an element a
// backend fails to write shows. `io`'s tensors are resized as needed.
void ToFloatOperands(const Problem& p, const ConvTensors<double>& exact, ConvTensors<float>& io);

}  // namespace convguard
