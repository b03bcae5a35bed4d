#include "convguard/problem.h"

#include <string>

namespace convguard {
namespace {

// Every size field is capped so that pairwise products cannot overflow int64 before
// the checked products below run.
constexpr int64_t kMaxField = int64_t{1} << 31;

Status CheckRange(std::string_view field, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    return Status::InvalidArgument(std::string(field) + " = " + std::to_string(value) +
                                   " is out of range; allowed " + std::to_string(lo) + ".." +
                                   std::to_string(hi));
  }
  return Status::Ok();
}

// Multiplies the factors, reporting overflow of int64 as kOutOfRange naming `what`.
StatusOr<int64_t> CheckedProduct(std::string_view what, std::initializer_list<int64_t> factors) {
  int64_t product = 1;
  for (int64_t f : factors) {
    if (__builtin_mul_overflow(product, f, &product)) {
      return Status::OutOfRange(std::string(what) + " overflows a 64-bit element count");
    }
  }
  return product;
}

}  // namespace

std::string_view DataTypeName(DataType t) {
  switch (t) {
    case DataType::kF32: return "f32";
    case DataType::kF16: return "f16";
    case DataType::kBF16: return "bf16";
  }
  return "?";
}

std::string_view LayoutName(Layout l) {
  switch (l) {
    case Layout::kNCHW: return "nchw";
    case Layout::kNHWC: return "nhwc";
  }
  return "?";
}

std::string_view DirectionName(Direction d) {
  switch (d) {
    case Direction::kForward: return "fwd";
    case Direction::kBackwardData: return "bwd-data";
    case Direction::kBackwardWeights: return "bwd-weights";
  }
  return "?";
}

int64_t DataTypeBytes(DataType t) { return t == DataType::kF32 ? 4 : 2; }

int64_t Problem::accumulation_length() const {
  switch (direction) {
    case Direction::kForward: return c_per_group() * r * s + (bias ? 1 : 0);
    // An upper bound: with stride > 1 fewer (k, r, s) terms reach each input point.
    case Direction::kBackwardData: return k_per_group() * r * s;
    case Direction::kBackwardWeights: return n * out_h() * out_w();
  }
  return 0;
}

Status Validate(const Problem& p, const ValidationLimits& limits) {
  CG_RETURN_IF_ERROR(CheckRange("n (batch)", p.n, 1, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("c (input channels)", p.c, 1, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("h (input height)", p.h, 1, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("w (input width)", p.w, 1, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("k (output channels)", p.k, 1, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("r (kernel height)", p.r, 1, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("s (kernel width)", p.s, 1, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("pad top", p.pad_top, 0, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("pad left", p.pad_left, 0, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("pad bottom", p.pad_bottom, 0, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("pad right", p.pad_right, 0, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("stride h", p.stride_h, 1, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("stride w", p.stride_w, 1, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("dilation h", p.dilation_h, 1, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("dilation w", p.dilation_w, 1, kMaxField));
  CG_RETURN_IF_ERROR(CheckRange("groups", p.groups, 1, kMaxField));

  if (p.c % p.groups != 0) {
    return Status::InvalidArgument("c = " + std::to_string(p.c) +
                                   " must be divisible by groups = " + std::to_string(p.groups));
  }
  if (p.k % p.groups != 0) {
    return Status::InvalidArgument("k = " + std::to_string(p.k) +
                                   " must be divisible by groups = " + std::to_string(p.groups));
  }
  // Fields are < 2^31, so these sums and products fit in int64.
  const int64_t padded_h = p.h + p.pad_top + p.pad_bottom;
  const int64_t padded_w = p.w + p.pad_left + p.pad_right;
  if (p.effective_r() > padded_h) {
    return Status::InvalidArgument(
        "dilated kernel height (r - 1) * dilation_h + 1 = " + std::to_string(p.effective_r()) +
        " exceeds padded input height h + pad_top + pad_bottom = " + std::to_string(padded_h));
  }
  if (p.effective_s() > padded_w) {
    return Status::InvalidArgument(
        "dilated kernel width (s - 1) * dilation_w + 1 = " + std::to_string(p.effective_s()) +
        " exceeds padded input width w + pad_left + pad_right = " + std::to_string(padded_w));
  }

  CG_ASSIGN_OR_RETURN(int64_t in_elems, CheckedProduct("input n*c*h*w", {p.n, p.c, p.h, p.w}));
  CG_ASSIGN_OR_RETURN(int64_t wei_elems,
                      CheckedProduct("weights k*(c/groups)*r*s", {p.k, p.c / p.groups, p.r, p.s}));
  CG_ASSIGN_OR_RETURN(int64_t out_elems,
                      CheckedProduct("output n*k*oh*ow", {p.n, p.k, p.out_h(), p.out_w()}));
  CG_ASSIGN_OR_RETURN(int64_t macs, CheckedProduct("multiply-accumulate count",
                                                   {out_elems, p.c / p.groups, p.r, p.s}));
  (void)macs;
  int64_t total = 0;
  for (int64_t e : {in_elems, wei_elems, out_elems, p.bias ? p.k : 0}) {
    int64_t bytes = 0;
    if (__builtin_mul_overflow(e, DataTypeBytes(p.dtype), &bytes) ||
        __builtin_add_overflow(total, bytes, &total)) {
      return Status::OutOfRange("tensor bytes overflow 64 bits");
    }
  }
  if (total > limits.max_total_bytes) {
    return Status::OutOfRange("tensors need " + std::to_string(total) +
                              " bytes, over the memory ceiling of " +
                              std::to_string(limits.max_total_bytes) + " bytes");
  }
  return Status::Ok();
}

}  // namespace convguard
