// convguard/problem.h — one 2-D convolution as a plain value.
//
// A Problem is a shape, not data: batch n, input channels c, input height h and width
// w, output channels k, kernel r x s (height x width), asymmetric zero padding, stride,
// dilation (1 = dense), groups, bias, dtype, layout and direction. It has one canonical
// text form (see text_forms.h) that round-trips and keys every stored verdict.
//
// The sizes always describe the forward convolution x[n,c,h,w] * w[k,c/g,r,s] ->
// y[n,k,oh,ow]; the direction says which of x, w, y is computed from the other two:
//   forward:          y  = conv(x, w) (+ bias)
//   backward-data:    dx = conv_transpose(dy, w)
//   backward-weights: dw = correlate(x, dy)
//
// Validate() must pass before anything is sized or allocated from a Problem; the
// derived quantities below assume a valid problem.
//
// Thread-safety: a value type; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "convguard/status.h"

namespace convguard {

enum class DataType { kF32, kF16, kBF16 };
enum class Layout { kNCHW, kNHWC };
enum class Direction { kForward, kBackwardData, kBackwardWeights };

std::string_view DataTypeName(DataType t);    // "f32", "f16", "bf16"
std::string_view LayoutName(Layout l);        // "nchw", "nhwc"
std::string_view DirectionName(Direction d);  // "fwd", "bwd-data", "bwd-weights"
int64_t DataTypeBytes(DataType t);            // 4, 2, 2

struct Problem {
  int64_t n = 1;
  int64_t c = 1;
  int64_t h = 1;
  int64_t w = 1;
  int64_t k = 1;
  int64_t r = 1;  // kernel height
  int64_t s = 1;  // kernel width
  int64_t pad_top = 0;
  int64_t pad_left = 0;
  int64_t pad_bottom = 0;
  int64_t pad_right = 0;
  int64_t stride_h = 1;
  int64_t stride_w = 1;
  int64_t dilation_h = 1;  // 1 = dense kernel
  int64_t dilation_w = 1;
  int64_t groups = 1;
  bool bias = false;
  DataType dtype = DataType::kF32;
  Layout layout = Layout::kNCHW;
  Direction direction = Direction::kForward;

  friend bool operator==(const Problem&, const Problem&) = default;

  // Derived quantities. REQUIRE: Validate(*this).ok().
  int64_t effective_r() const { return (r - 1) * dilation_h + 1; }
  int64_t effective_s() const { return (s - 1) * dilation_w + 1; }
  int64_t out_h() const { return (h + pad_top + pad_bottom - effective_r()) / stride_h + 1; }
  int64_t out_w() const { return (w + pad_left + pad_right - effective_s()) / stride_w + 1; }
  int64_t c_per_group() const { return c / groups; }
  int64_t k_per_group() const { return k / groups; }

  int64_t input_elements() const { return n * c * h * w; }
  int64_t weight_elements() const { return k * c_per_group() * r * s; }
  int64_t output_elements() const { return n * k * out_h() * out_w(); }
  int64_t bias_elements() const { return bias ? k : 0; }
  int64_t input_bytes() const { return input_elements() * DataTypeBytes(dtype); }
  int64_t weight_bytes() const { return weight_elements() * DataTypeBytes(dtype); }
  int64_t output_bytes() const { return output_elements() * DataTypeBytes(dtype); }
  int64_t bias_bytes() const { return bias_elements() * DataTypeBytes(dtype); }
  int64_t total_bytes() const {
    return input_bytes() + weight_bytes() + output_bytes() + bias_bytes();
  }
  // Multiply-accumulates of the direct algorithm (the same for every direction).
  int64_t macs() const { return output_elements() * c_per_group() * r * s; }
  // 2 * MACs (+ one add per output element for a forward bias).
  int64_t flops() const {
    return 2 * macs() + ((bias && direction == Direction::kForward) ? output_elements() : 0);
  }
  // Number of products summed into one element of the tensor this direction computes.
  int64_t accumulation_length() const;
};

// Limits that Validate() enforces beyond "the shape makes sense".
struct ValidationLimits {
  // The sum of all tensor bytes may not exceed this. Default: 16 GiB.
  int64_t max_total_bytes = int64_t{16} << 30;
};

// Checks every field and the combinations; the message names the field and the
// allowed range, e.g. "k = 30 must be divisible by groups = 4". Returns kInvalidArgument
// for a malformed shape and kOutOfRange when sizes overflow or exceed the limits.
Status Validate(const Problem& p, const ValidationLimits& limits = {});

}  // namespace convguard
