#include "convguard/fill.h"

#include <algorithm>
#include <array>
#include <limits>
#include <utility>
#include <vector>

namespace convguard {
namespace {

uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Tensor streams: each tensor (and the choice of sparse positions) draws from its own.
enum Stream : uint64_t {
  kStreamX = 1,
  kStreamW = 2,
  kStreamDy = 3,
  kStreamBias = 4,
  kStreamPick = 5
};

uint64_t Hash(uint64_t seed, uint64_t stream, uint64_t i) {
  return Mix64(Mix64(seed ^ (stream * 0xD6E8FEB86659FD93ull)) + i * 0x9E3779B97F4A7C15ull);
}

// A nonzero integer in [-max_mag, max_mag] from hash bits.
double NonzeroValue(uint64_t h, int64_t max_mag) {
  const auto mag = static_cast<int64_t>(1 + (h >> 1) % static_cast<uint64_t>(max_mag));
  return static_cast<double>((h & 1) != 0 ? -mag : mag);
}

// Chooses `m` of the positions [0, len) (partial Fisher-Yates, seeded by `h`) and marks
// them in `chosen` (resized to len). All positions when m >= len.
void PickPositions(int64_t len, int64_t m, uint64_t h, std::vector<int64_t>& perm,
                   std::vector<char>& chosen) {
  chosen.assign(static_cast<size_t>(len), m >= len ? 1 : 0);
  if (m >= len) return;
  perm.resize(static_cast<size_t>(len));
  for (int64_t i = 0; i < len; ++i) perm[static_cast<size_t>(i)] = i;
  uint64_t state = h;
  for (int64_t i = 0; i < m; ++i) {
    state = Mix64(state + 0x9E3779B97F4A7C15ull);
    const int64_t j = i + static_cast<int64_t>(state % static_cast<uint64_t>(len - i));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
    chosen[static_cast<size_t>(perm[static_cast<size_t>(i)])] = 1;
  }
}

// Products per result element, without the bias term.
int64_t ConvTerms(const Problem& p) {
  switch (p.direction) {
    case Direction::kForward: return p.c_per_group() * p.r * p.s;
    case Direction::kBackwardData: return p.k_per_group() * p.r * p.s;
    case Direction::kBackwardWeights: return p.n * p.out_h() * p.out_w();
  }
  return 0;
}

}  // namespace

int ExactIntegerDigits(DataType t) {
  switch (t) {
    case DataType::kF32: return 24;
    case DataType::kF16: return 11;
    case DataType::kBF16: return 8;
  }
  return 8;
}

double ExactIntegerLimit(DataType t) {
  return static_cast<double>(int64_t{1} << ExactIntegerDigits(t));
}

FillSummary PlanExactFill(const Problem& p) {
  FillSummary f;
  switch (p.direction) {
    case Direction::kForward:
      f.dense = TensorRole::kInput;
      f.sparse = TensorRole::kWeight;
      break;
    case Direction::kBackwardData:
      f.dense = TensorRole::kOutput;
      f.sparse = TensorRole::kWeight;
      break;
    case Direction::kBackwardWeights:
      f.dense = TensorRole::kInput;
      f.sparse = TensorRole::kOutput;
      break;
  }
  const auto limit = int64_t{1} << ExactIntegerDigits(p.dtype);
  const int64_t bias_terms = (p.direction == Direction::kForward && p.bias) ? 1 : 0;
  f.terms = ConvTerms(p);
  f.exact_limit = static_cast<double>(limit);

  static constexpr std::array<std::pair<int64_t, int64_t>, 11> kLadder = {{
      {32, 32},
      {32, 16},
      {16, 16},
      {16, 8},
      {8, 8},
      {8, 4},
      {4, 4},
      {4, 2},
      {2, 2},
      {2, 1},
      {1, 1},
  }};
  bool dense_fits = false;
  for (const auto& [a, b] : kLadder) {
    // terms <= 2^34 (Validate's byte ceiling), so this product cannot overflow.
    if ((f.terms + bias_terms) * a * b <= limit) {
      f.dense_max = a;
      f.sparse_max = b;
      f.nonzero_terms = f.terms;
      dense_fits = true;
      break;
    }
  }
  if (!dense_fits) {
    f.dense_max = 1;
    f.sparse_max = 1;
    f.nonzero_terms = limit - bias_terms;
  }
  f.bias_max = bias_terms != 0 ? f.dense_max * f.sparse_max : 0;
  f.density =
      f.terms > 0 ? static_cast<double>(f.nonzero_terms) / static_cast<double>(f.terms) : 1.0;
  f.max_abs_result = static_cast<double>(f.nonzero_terms * f.dense_max * f.sparse_max + f.bias_max);
  return f;
}

FillSummary FillExact(const Problem& p, uint64_t seed, ConvTensors<double>& t) {
  const FillSummary f = PlanExactFill(p);
  const TensorIndexer ix(p);
  const int64_t N = p.n, C = p.c, H = p.h, W = p.w, K = p.k, R = p.r, S = p.s;
  const int64_t OH = p.out_h(), OW = p.out_w(), Cg = p.c_per_group(), Kg = p.k_per_group();

  auto fill_x_dense = [&]() {
    t.input.resize(static_cast<size_t>(p.input_elements()));
    int64_t logical = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w, ++logical)
            t.input[static_cast<size_t>(ix.input(n, c, h, w))] =
                NonzeroValue(Hash(seed, kStreamX, static_cast<uint64_t>(logical)), f.dense_max);
  };
  auto fill_dy_dense = [&]() {
    t.output.resize(static_cast<size_t>(p.output_elements()));
    int64_t logical = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow, ++logical)
            t.output[static_cast<size_t>(ix.output(n, k, oh, ow))] =
                NonzeroValue(Hash(seed, kStreamDy, static_cast<uint64_t>(logical)), f.dense_max);
  };
  // The value of the sparse operand at a chosen position.
  auto sparse_value = [&](uint64_t stream, int64_t logical) {
    return NonzeroValue(Hash(seed, stream, static_cast<uint64_t>(logical)), f.sparse_max);
  };

  std::vector<int64_t> perm;
  std::vector<char> chosen;
  switch (p.direction) {
    case Direction::kForward: {
      fill_x_dense();
      t.weight.resize(static_cast<size_t>(p.weight_elements()));
      // One slice per output channel k: positions (cc, r, s).
      for (int64_t k = 0; k < K; ++k) {
        PickPositions(f.terms, f.nonzero_terms, Hash(seed, kStreamPick, static_cast<uint64_t>(k)),
                      perm, chosen);
        for (int64_t cc = 0; cc < Cg; ++cc)
          for (int64_t r = 0; r < R; ++r)
            for (int64_t s = 0; s < S; ++s) {
              const int64_t j = (cc * R + r) * S + s;
              t.weight[static_cast<size_t>(ix.weight(k, cc, r, s))] =
                  chosen[static_cast<size_t>(j)] != 0 ? sparse_value(kStreamW, k * f.terms + j)
                                                      : 0.0;
            }
      }
      if (p.bias) {
        t.bias.resize(static_cast<size_t>(K));
        for (int64_t k = 0; k < K; ++k)
          t.bias[static_cast<size_t>(k)] =
              NonzeroValue(Hash(seed, kStreamBias, static_cast<uint64_t>(k)), f.bias_max);
      }
      break;
    }
    case Direction::kBackwardData: {
      fill_dy_dense();
      t.weight.resize(static_cast<size_t>(p.weight_elements()));
      // One slice per input channel of a group: positions (kk, r, s).
      for (int64_t grp = 0; grp < p.groups; ++grp) {
        for (int64_t cc = 0; cc < Cg; ++cc) {
          const int64_t slice = grp * Cg + cc;
          PickPositions(f.terms, f.nonzero_terms,
                        Hash(seed, kStreamPick, static_cast<uint64_t>(slice)), perm, chosen);
          for (int64_t kk = 0; kk < Kg; ++kk)
            for (int64_t r = 0; r < R; ++r)
              for (int64_t s = 0; s < S; ++s) {
                const int64_t j = (kk * R + r) * S + s;
                const int64_t k = grp * Kg + kk;
                const int64_t logical = ((k * Cg + cc) * R + r) * S + s;
                t.weight[static_cast<size_t>(ix.weight(k, cc, r, s))] =
                    chosen[static_cast<size_t>(j)] != 0 ? sparse_value(kStreamW, logical) : 0.0;
              }
        }
      }
      break;
    }
    case Direction::kBackwardWeights: {
      fill_x_dense();
      t.output.resize(static_cast<size_t>(p.output_elements()));
      // One slice per output channel k: positions (n, oh, ow).
      for (int64_t k = 0; k < K; ++k) {
        PickPositions(f.terms, f.nonzero_terms, Hash(seed, kStreamPick, static_cast<uint64_t>(k)),
                      perm, chosen);
        for (int64_t n = 0; n < N; ++n)
          for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
              const int64_t j = (n * OH + oh) * OW + ow;
              const int64_t logical = ((n * K + k) * OH + oh) * OW + ow;
              t.output[static_cast<size_t>(ix.output(n, k, oh, ow))] =
                  chosen[static_cast<size_t>(j)] != 0 ? sparse_value(kStreamDy, logical) : 0.0;
            }
      }
      break;
    }
  }
  return f;
}

void PoisonWithNaN(std::span<float> data) {
  std::fill(data.begin(), data.end(), std::numeric_limits<float>::quiet_NaN());
}

void PoisonWithNaN(std::span<double> data) {
  std::fill(data.begin(), data.end(), std::numeric_limits<double>::quiet_NaN());
}

void ToFloatOperands(const Problem& p, const ConvTensors<double>& exact, ConvTensors<float>& io) {
  auto copy = [](const std::vector<double>& from, std::vector<float>& to) {
    to.resize(from.size());
    for (size_t i = 0; i < from.size(); ++i) to[i] = static_cast<float>(from[i]);
  };
  copy(exact.input, io.input);
  copy(exact.weight, io.weight);
  copy(exact.output, io.output);
  copy(exact.bias, io.bias);
  PoisonWithNaN(ResultTensor(p, io));
}

}  // namespace convguard
