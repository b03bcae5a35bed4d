// convguard/reference.h — the float64 reference convolution, full and sampled.
//
// Every result a backend produces is checked against these functions. They follow
// the definitions in problem.h literally (zero padding outside the input, asymmetric
// pads, stride, dilation, groups, forward bias) and use no algorithmic tricks, so
// that they can be trusted more than anything they check.
//
//   forward:          y[n,k,oh,ow]  = b[k] + sum_{c in group(k), r, s} x[n,c,ih,iw] * w[k,c',r,s]
//   backward-data:    dx[n,c,ih,iw] = sum_{k in group(c), r, s, (oh,ow) reaching (ih,iw)}
//                                         dy[n,k,oh,ow] * w[k,c',r,s]
//   backward-weights: dw[k,c',r,s]  = sum_{n, oh, ow} x[n,c,ih,iw] * dy[n,k,oh,ow]
// with ih = oh*stride_h - pad_top + r*dilation_h, iw = ow*stride_w - pad_left + s*dilation_w,
// c' = c mod (c/groups), and input points outside [0,h) x [0,w) contributing zero.
// Bias only enters the forward result; backward-weights does not compute a bias
// gradient.
//
// The "result tensor" of a problem is the ConvTensors member its direction computes
// (forward: output y; backward-data: input dx; backward-weights: weight dw). ResultView
// describes it as a 4-D logical array so that samplers, comparisons and reports can
// walk it without knowing the direction or the layout.
//
// Thread-safety: every function is reentrant; none keeps state. Concurrent calls are
// safe as long as no two of them write the same ConvTensors.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "convguard/problem.h"
#include "convguard/tensor.h"

namespace convguard {

// Which member of ConvTensors a tensor is.
enum class TensorRole { kInput, kWeight, kOutput };

// The member a direction computes: forward -> kOutput, backward-data -> kInput,
// backward-weights -> kWeight.
TensorRole ResultRole(Direction d);

// The name of a tensor in a direction: "x", "w", "y", "b" for forward inputs/outputs;
// "dx", "dw", "dy" for the gradients of the backward directions.
std::string_view TensorName(TensorRole role, Direction d);

// The result tensor of a problem as a 4-D logical array.
//   forward:          (n, k, oh, ow)      in ConvTensors::output
//   backward-data:    (n, c, h, w)        in ConvTensors::input
//   backward-weights: (k, c/groups, r, s) in ConvTensors::weight
// The last two logical dimensions are always the spatial plane. Offsets are element
// offsets into the result vector under the problem's layout (see tensor.h).
// A value type; REQUIRES Validate(p).ok() at construction.
class ResultView {
 public:
  using Index = std::array<int64_t, 4>;

  explicit ResultView(const Problem& p);

  TensorRole role() const { return role_; }
  const Index& dims() const { return dims_; }
  int64_t elements() const { return dims_[0] * dims_[1] * dims_[2] * dims_[3]; }

  // Logical index -> element offset. REQUIRES 0 <= i[d] < dims()[d].
  int64_t Offset(const Index& i) const {
    return i[0] * strides_[0] + i[1] * strides_[1] + i[2] * strides_[2] + i[3] * strides_[3];
  }
  // Element offset -> logical index. REQUIRES 0 <= offset < elements().
  Index IndexOf(int64_t offset) const;

  // The logical axis that the groups split (1 for forward and backward-data, where it
  // is k or c; 0 for backward-weights, where it is k) and its size per group.
  int group_axis() const { return group_axis_; }
  int64_t per_group() const { return per_group_; }

  // A readable location, e.g. "y[n=0,k=3,oh=5,ow=7]" or "dw[k=1,c=0,r=2,s=2]".
  std::string Describe(int64_t offset) const;

 private:
  TensorRole role_;
  Direction direction_;
  Index dims_;
  Index strides_;             // element stride of each logical axis
  std::array<int, 4> order_;  // logical axes from slowest to fastest in memory
  int group_axis_;
  int64_t per_group_;
};

// The result vector of `t` for `p`'s direction.
template <typename T>
std::vector<T>& ResultTensor(const Problem& p, ConvTensors<T>& t) {
  switch (ResultRole(p.direction)) {
    case TensorRole::kInput: return t.input;
    case TensorRole::kWeight: return t.weight;
    case TensorRole::kOutput: break;
  }
  return t.output;
}
template <typename T>
const std::vector<T>& ResultTensor(const Problem& p, const ConvTensors<T>& t) {
  switch (ResultRole(p.direction)) {
    case TensorRole::kInput: return t.input;
    case TensorRole::kWeight: return t.weight;
    case TensorRole::kOutput: break;
  }
  return t.output;
}

// Loop nests of the full reference. Both compute the same sums; they differ only in
// which dimension is innermost (and so in summation order, which matters only for
// data that is not exactly representable). kAuto picks the one that walks memory
// contiguously for the layout: kSpatialInner for NCHW, kChannelInner for NHWC.
// The explicit choices exist for tests and benchmarks.
enum class ReferenceLoops { kAuto, kSpatialInner, kChannelInner };

// Computes the direction's result tensor of `p` in float64 from the other tensors of
// `t`; the result tensor is fully overwritten, the others are only read.
// REQUIRES: Validate(p).ok(); t sized as by ConvTensors<double>::Allocate(p) (the bias
// vector is read only for forward with p.bias); the tensors read hold finite values.
// Cost: p.macs() multiply-adds on one thread, plus small scratch buffers (a packed copy
// of the weights for kChannelInner); no allocation proportional to the data tensors.
void ReferenceConvolution(const Problem& p, ConvTensors<double>& t,
                          ReferenceLoops loops = ReferenceLoops::kAuto);

// Computes one element of the result tensor directly, reading only `t`'s other
// tensors: the same sum as ReferenceConvolution, over p.accumulation_length() terms
// (backward-data skips the (oh, ow) that do not reach the point).
// REQUIRES: as ReferenceConvolution; 0 <= result_offset < ResultView(p).elements().
double ReferenceAt(const Problem& p, const ConvTensors<double>& t, int64_t result_offset);

// ReferenceAt for each offset, in order.
std::vector<double> ReferenceValuesAt(const Problem& p, const ConvTensors<double>& t,
                                      std::span<const int64_t> result_offsets);

// Multiply-adds ChooseSamplePoints aims to stay under: points * accumulation_length.
inline constexpr int64_t kSampleMacBudget = int64_t{1} << 27;

// Chooses result elements worth checking when a full reference is too costly.
// Returns sorted, unique element offsets into the result tensor, containing:
//  1. edges: for each of the first and last index of logical axes 0 and 1, the border
//     of the spatial plane (first and last row, first and last column); each border
//     line is thinned to at most 64 evenly spaced points that keep both its ends, so
//     the four plane corners are always in;
//  2. group boundaries: for every group (at most 64 groups, evenly spaced, first and
//     last kept), the first and last channel of the group on the group axis, at the
//     four plane corners and the plane centre, for the first and last index of the
//     other leading axis;
//  3. up to `interior_points` random points (seeded by `seed`, deterministic) whose
//     spatial coordinates avoid the plane border where the plane has an interior;
//     duplicates are dropped, so fewer may be returned.
// Cap: ReferenceAt on every point costs about size() * accumulation_length()
// multiply-adds. While that exceeds kSampleMacBudget, edges and groups are thinned
// (64 -> 16 -> 4 -> 2 points per line and groups); if even 2 is too many, only the
// corners remain; the random points get whatever budget is left. The (at most 16)
// plane corners of (first, last) x (first, last) are kept whatever the cost.
// REQUIRES: Validate(p).ok(); interior_points >= 0.
std::vector<int64_t> ChooseSamplePoints(const Problem& p, int64_t interior_points, uint64_t seed);

}  // namespace convguard
