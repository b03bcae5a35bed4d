// convguard/tensor.h — the three tensors of a convolution, held in float64 or float32.
//
// Layouts (element offsets), chosen by Problem::layout:
//   NCHW: input  x[n][c][h][w],  weights w[k][c/g][r][s],  output y[n][k][oh][ow]
//   NHWC: input  x[n][h][w][c],  weights w[k][r][s][c/g],  output y[n][oh][ow][k]
// Bias, when present, is b[k].
//
// ConvTensors owns its buffers (std::vector). Not thread-safe for concurrent writes.
#pragma once

#include <cstdint>
#include <vector>

#include "convguard/problem.h"

namespace convguard {

// Offsets of one element in each tensor for a problem's layout. REQUIRE: valid problem.
struct TensorIndexer {
  explicit TensorIndexer(const Problem& p);
  int64_t input(int64_t n, int64_t c, int64_t h, int64_t w) const;
  int64_t weight(int64_t k, int64_t c_in_group, int64_t r, int64_t s) const;
  int64_t output(int64_t n, int64_t k, int64_t oh, int64_t ow) const;

 private:
  Problem p_;
  int64_t oh_, ow_;
};

template <typename T>
struct ConvTensors {
  std::vector<T> input;   // x (or dx for backward-data)
  std::vector<T> weight;  // w (or dw for backward-weights)
  std::vector<T> output;  // y (or dy for the backward directions)
  std::vector<T> bias;    // b[k]; empty when the problem has no bias

  // Sizes every tensor for `p`, zero-filled. REQUIRE: Validate(p).ok().
  static ConvTensors Allocate(const Problem& p) {
    ConvTensors t;
    t.input.assign(static_cast<size_t>(p.input_elements()), T{});
    t.weight.assign(static_cast<size_t>(p.weight_elements()), T{});
    t.output.assign(static_cast<size_t>(p.output_elements()), T{});
    t.bias.assign(static_cast<size_t>(p.bias_elements()), T{});
    return t;
  }
};

}  // namespace convguard
