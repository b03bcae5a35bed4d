// rewrite/tensor_copy.h — moving boxes of values between a problem's tensors and its
// children's: channel slices, spatial windows, batch chunks, filter slices.
//
// Every tensor of a convolution is a 4-D array with logical axes (n, c, h, w) stored in
// one of two memory orders (see tensor.h):
//   input  x / dx:  (n, c, h, w)
//   output y / dy:  (n, k, oh, ow)
//   weight w / dw:  (k, c/groups, r, s)   (NCHW stores [k][c/g][r][s], NHWC [k][r][s][c/g])
// so one set of box operations serves all three. A box is an origin and an extent in
// logical coordinates. The operations merge the innermost axes that are contiguous in
// both source and destination into one run and move each run with memcpy (or one
// vectorisable loop for additions), so the inner loop never recomputes an index:
// an NCHW channel slice of one image is a single run, an NHWC pixel's channels are one
// run, a full-width window of rows is one run.
//
// These copies are the per-call cost of a rewrite; nothing here allocates.
//
// Thread-safety: pure functions over caller-owned memory.
#pragma once

#include <cstdint>
#include <span>

#include "convguard/device.h"
#include "convguard/problem.h"
#include "convguard/status.h"

namespace convguard::rewrite {

// A point or an extent in logical (n, c, h, w) coordinates.
struct Dims4 {
  int64_t n = 0;
  int64_t c = 0;
  int64_t h = 0;
  int64_t w = 0;
  friend bool operator==(const Dims4&, const Dims4&) = default;
  int64_t elements() const { return n * c * h * w; }
};

// A whole tensor: its logical sizes and memory order.
struct TensorShape4 {
  Dims4 dims;
  Layout layout = Layout::kNCHW;
};

// The shapes of a valid problem's tensors.
TensorShape4 InputShape(const Problem& p);   // (n, c, h, w)
TensorShape4 OutputShape(const Problem& p);  // (n, k, out_h, out_w)
TensorShape4 WeightShape(const Problem& p);  // (k, c/groups, r, s)

// dst[dst_origin + i] = src[src_origin + i] for every i in the extent.
// REQUIRES: both shapes have the same layout; both boxes lie inside their tensors.
void CopyBox(const float* src, const TensorShape4& src_shape, const Dims4& src_origin, float* dst,
             const TensorShape4& dst_shape, const Dims4& dst_origin, const Dims4& extent);

// dst[dst_origin + i] += src[src_origin + i] for every i in the extent.
// REQUIRES: as CopyBox.
void AddBox(const float* src, const TensorShape4& src_shape, const Dims4& src_origin, float* dst,
            const TensorShape4& dst_shape, const Dims4& dst_origin, const Dims4& extent);

// dst[origin + i] = +0 for every i in the extent. REQUIRES: the box lies inside.
void ZeroBox(float* dst, const TensorShape4& shape, const Dims4& origin, const Dims4& extent);

// dst[origin + i] = channel_values[i.c] for every i in the extent: a forward output box
// that is bias only. channel_values has extent.c values (for channels origin.c onwards).
// REQUIRES: the box lies inside.
void FillBoxByChannel(float* dst, const TensorShape4& shape, const Dims4& origin,
                      const Dims4& extent, const float* channel_values);

// CopyBox on device memory (elements of `element_bytes` bytes, the problem's dtype):
// the same runs, each group of them one CopyRows queued on `memory` (a channel slice or
// a channel padding is a single 2-D copy). Offsets are in elements.
// REQUIRES: as CopyBox.
[[nodiscard]] Status CopyBoxOnDevice(DeviceMemory& memory, int64_t element_bytes, const void* src,
                                     const TensorShape4& src_shape, const Dims4& src_origin,
                                     void* dst, const TensorShape4& dst_shape,
                                     const Dims4& dst_origin, const Dims4& extent);

// dst[i] += src[i]. REQUIRES: equal sizes.
void AddInto(std::span<float> dst, std::span<const float> src);

}  // namespace convguard::rewrite
