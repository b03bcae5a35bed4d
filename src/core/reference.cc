#include "convguard/reference.h"

#include <algorithm>
#include <cassert>
#include <string>

namespace convguard {
namespace {

// Element strides of the four logical axes of one tensor, taken from TensorIndexer so
// that the layout has one source of truth.
struct Strides {
  int64_t a, b, c, d;
};

struct Geometry {
  explicit Geometry(const Problem& p)
      : N(p.n),
        C(p.c),
        H(p.h),
        W(p.w),
        K(p.k),
        R(p.r),
        S(p.s),
        OH(p.out_h()),
        OW(p.out_w()),
        G(p.groups),
        Cg(p.c_per_group()),
        Kg(p.k_per_group()),
        pt(p.pad_top),
        pl(p.pad_left),
        sh(p.stride_h),
        sw(p.stride_w),
        dh(p.dilation_h),
        dw(p.dilation_w) {
    const TensorIndexer ix(p);
    x = {ix.input(1, 0, 0, 0), ix.input(0, 1, 0, 0), ix.input(0, 0, 1, 0), ix.input(0, 0, 0, 1)};
    w = {ix.weight(1, 0, 0, 0), ix.weight(0, 1, 0, 0), ix.weight(0, 0, 1, 0),
         ix.weight(0, 0, 0, 1)};
    y = {ix.output(1, 0, 0, 0), ix.output(0, 1, 0, 0), ix.output(0, 0, 1, 0),
         ix.output(0, 0, 0, 1)};
  }
  int64_t N, C, H, W, K, R, S, OH, OW, G, Cg, Kg;
  int64_t pt, pl, sh, sw, dh, dw;
  Strides x, w, y;  // input (n,c,h,w), weight (k,c/g,r,s), output (n,k,oh,ow)
};

// The outputs o in [0, count) whose input coordinate o * stride + base lies in
// [0, limit), as the half-open range [lo, hi) (empty when hi == lo).
struct Range {
  int64_t lo, hi;
  bool empty() const { return hi <= lo; }
};
Range ValidRange(int64_t base, int64_t stride, int64_t limit, int64_t count) {
  const int64_t lo = base >= 0 ? 0 : (-base + stride - 1) / stride;
  const int64_t top = limit - 1 - base;
  int64_t hi = top < 0 ? 0 : top / stride + 1;
  hi = std::min(hi, count);
  return {lo, std::max(lo, hi)};
}

// y[i*incy] += a * x[i*incx]; the unit-stride case is split out so it vectorizes.
inline void Axpy(int64_t len, double a, const double* __restrict x, int64_t incx,
                 double* __restrict y, int64_t incy) {
  if (incx == 1 && incy == 1) {
    for (int64_t i = 0; i < len; ++i) y[i] += a * x[i];
  } else {
    for (int64_t i = 0; i < len; ++i) y[i * incy] += a * x[i * incx];
  }
}

// sum_i x[i*incx] * y[i*incy], with four partial sums to hide add latency.
inline double Dot(int64_t len, const double* x, int64_t incx, const double* y, int64_t incy) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= len; i += 4) {
    s0 += x[i * incx] * y[i * incy];
    s1 += x[(i + 1) * incx] * y[(i + 1) * incy];
    s2 += x[(i + 2) * incx] * y[(i + 2) * incy];
    s3 += x[(i + 3) * incx] * y[(i + 3) * incy];
  }
  for (; i < len; ++i) s0 += x[i * incx] * y[i * incy];
  return (s0 + s1) + (s2 + s3);
}

// ---- spatial-inner loop nests: the innermost loop runs along a row of a plane ----

// For every tap (r, s) whose weight w(k, cc) is nonzero, and every output row oh it
// reaches inside the input: visit(weight, ih, iw0, oh, ow0, len), the row pairing input
// (ih, iw0 + j * sw) with output (oh, ow0 + j) for j < len.
template <typename Visit>
void ForEachTapRow(const Geometry& g, const double* w, int64_t k, int64_t cc, Visit visit) {
  for (int64_t r = 0; r < g.R; ++r) {
    const int64_t base_h = r * g.dh - g.pt;
    const Range rh = ValidRange(base_h, g.sh, g.H, g.OH);
    if (rh.empty()) continue;
    for (int64_t s = 0; s < g.S; ++s) {
      const int64_t base_w = s * g.dw - g.pl;
      const Range rw = ValidRange(base_w, g.sw, g.W, g.OW);
      const double wv = w[k * g.w.a + cc * g.w.b + r * g.w.c + s * g.w.d];
      if (rw.empty() || wv == 0.0) continue;
      const int64_t iw0 = rw.lo * g.sw + base_w;
      for (int64_t oh = rh.lo; oh < rh.hi; ++oh)
        visit(wv, oh * g.sh + base_h, iw0, oh, rw.lo, rw.hi - rw.lo);
    }
  }
}

void ForwardSpatial(const Geometry& g, const double* x, const double* w, const double* bias,
                    double* y) {
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t k = 0; k < g.K; ++k) {
      const int64_t grp = k / g.Kg;
      double* yp = y + n * g.y.a + k * g.y.b;
      const double b0 = bias != nullptr ? bias[k] : 0.0;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        for (int64_t ow = 0; ow < g.OW; ++ow) yp[oh * g.y.c + ow * g.y.d] = b0;
      }
      for (int64_t cc = 0; cc < g.Cg; ++cc) {
        const double* xp = x + n * g.x.a + (grp * g.Cg + cc) * g.x.b;
        ForEachTapRow(
            g, w, k, cc,
            [&](double wv, int64_t ih, int64_t iw0, int64_t oh, int64_t ow0, int64_t len) {
              Axpy(len, wv, xp + ih * g.x.c + iw0 * g.x.d, g.sw * g.x.d,
                   yp + oh * g.y.c + ow0 * g.y.d, g.y.d);
            });
      }
    }
  }
}

void BackwardDataSpatial(const Geometry& g, const double* dy, const double* w, double* dx) {
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t c = 0; c < g.C; ++c) {
      const int64_t grp = c / g.Cg;
      const int64_t cc = c % g.Cg;
      double* xp = dx + n * g.x.a + c * g.x.b;
      for (int64_t ih = 0; ih < g.H; ++ih) {
        for (int64_t iw = 0; iw < g.W; ++iw) xp[ih * g.x.c + iw * g.x.d] = 0.0;
      }
      for (int64_t kk = 0; kk < g.Kg; ++kk) {
        const int64_t k = grp * g.Kg + kk;
        const double* yp = dy + n * g.y.a + k * g.y.b;
        ForEachTapRow(
            g, w, k, cc,
            [&](double wv, int64_t ih, int64_t iw0, int64_t oh, int64_t ow0, int64_t len) {
              // ow -> iw is injective, so no two terms of this call hit one element.
              Axpy(len, wv, yp + oh * g.y.c + ow0 * g.y.d, g.y.d, xp + ih * g.x.c + iw0 * g.x.d,
                   g.sw * g.x.d);
            });
      }
    }
  }
}

void BackwardWeightsSpatial(const Geometry& g, const double* x, const double* dy, double* dw,
                            int64_t dw_elements) {
  std::fill(dw, dw + dw_elements, 0.0);
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t k = 0; k < g.K; ++k) {
      const int64_t grp = k / g.Kg;
      const double* yp = dy + n * g.y.a + k * g.y.b;
      for (int64_t cc = 0; cc < g.Cg; ++cc) {
        const double* xp = x + n * g.x.a + (grp * g.Cg + cc) * g.x.b;
        for (int64_t r = 0; r < g.R; ++r) {
          const int64_t base_h = r * g.dh - g.pt;
          const Range rh = ValidRange(base_h, g.sh, g.H, g.OH);
          if (rh.empty()) continue;
          for (int64_t s = 0; s < g.S; ++s) {
            const int64_t base_w = s * g.dw - g.pl;
            const Range rw = ValidRange(base_w, g.sw, g.W, g.OW);
            if (rw.empty()) continue;
            const int64_t len = rw.hi - rw.lo;
            const int64_t iw0 = rw.lo * g.sw + base_w;
            double acc = 0.0;
            for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
              const int64_t ih = oh * g.sh + base_h;
              acc += Dot(len, xp + ih * g.x.c + iw0 * g.x.d, g.sw * g.x.d,
                         yp + oh * g.y.c + rw.lo * g.y.d, g.y.d);
            }
            dw[k * g.w.a + cc * g.w.b + r * g.w.c + s * g.w.d] += acc;
          }
        }
      }
    }
  }
}

// ---- channel-inner loop nests: the innermost loop runs along channels ----

// The weights packed for a channel-inner gather: per group and tap (r, s), a matrix of
// `from` rows by `to` columns, so that one value of the tensor read scales one
// contiguous row. Forward reads input channels and produces output channels
// (from = Cg, to = Kg); backward-data reads output channels and produces input
// channels (the transpose).
std::vector<double> PackWeights(const Geometry& g, const double* w, bool input_to_output) {
  const int64_t from = input_to_output ? g.Cg : g.Kg;
  const int64_t to = input_to_output ? g.Kg : g.Cg;
  std::vector<double> packed(static_cast<size_t>(g.K * g.Cg * g.R * g.S));
  for (int64_t grp = 0; grp < g.G; ++grp) {
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) {
        for (int64_t kk = 0; kk < g.Kg; ++kk) {
          for (int64_t cc = 0; cc < g.Cg; ++cc) {
            const int64_t row = input_to_output ? cc : kk;
            const int64_t col = input_to_output ? kk : cc;
            packed[static_cast<size_t>((((grp * g.R + r) * g.S + s) * from + row) * to + col)] =
                w[(grp * g.Kg + kk) * g.w.a + cc * g.w.b + r * g.w.c + s * g.w.d];
          }
        }
      }
    }
  }
  return packed;
}

// Adds to acc (one value per produced channel, `to` per group) the products of one
// produced pixel: for every tap (r, s) whose row_of(r) and col_of(s) name a pixel of the
// tensor read (-1: the tap falls outside it), that pixel's channels (stride `channel`,
// `from` per group) times the packed weight rows of the tap.
template <typename RowOf, typename ColOf>
void GatherTaps(const Geometry& g, RowOf row_of, ColOf col_of, const double* read, const Strides& s,
                const std::vector<double>& packed, int64_t from, int64_t to, double* acc) {
  for (int64_t r = 0; r < g.R; ++r) {
    const int64_t row = row_of(r);
    if (row < 0) continue;
    for (int64_t t = 0; t < g.S; ++t) {
      const int64_t col = col_of(t);
      if (col < 0) continue;
      const double* pixel = read + row * s.c + col * s.d;
      for (int64_t grp = 0; grp < g.G; ++grp) {
        const double* rows = &packed[static_cast<size_t>(((grp * g.R + r) * g.S + t) * from * to)];
        for (int64_t i = 0; i < from; ++i) {
          const double v = pixel[(grp * from + i) * s.b];
          if (v == 0.0) continue;
          Axpy(to, v, rows + i * to, 1, acc + grp * to, 1);
        }
      }
    }
  }
}

void ForwardChannel(const Geometry& g, const double* x, const double* w, const double* bias,
                    double* y) {
  const std::vector<double> wt = PackWeights(g, w, /*input_to_output=*/true);
  std::vector<double> acc(static_cast<size_t>(g.K));
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        for (int64_t k = 0; k < g.K; ++k) acc[k] = bias != nullptr ? bias[k] : 0.0;
        const auto ih = [&](int64_t r) {
          const int64_t v = oh * g.sh - g.pt + r * g.dh;
          return v >= 0 && v < g.H ? v : -1;
        };
        const auto iw = [&](int64_t s) {
          const int64_t v = ow * g.sw - g.pl + s * g.dw;
          return v >= 0 && v < g.W ? v : -1;
        };
        GatherTaps(g, ih, iw, x + n * g.x.a, g.x, wt, g.Cg, g.Kg, acc.data());
        double* yp = y + n * g.y.a + oh * g.y.c + ow * g.y.d;
        for (int64_t k = 0; k < g.K; ++k) yp[k * g.y.b] = acc[k];
      }
    }
  }
}

void BackwardDataChannel(const Geometry& g, const double* dy, const double* w, double* dx) {
  const std::vector<double> wp = PackWeights(g, w, /*input_to_output=*/false);
  std::vector<double> acc(static_cast<size_t>(g.C));
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t ih = 0; ih < g.H; ++ih) {
      for (int64_t iw = 0; iw < g.W; ++iw) {
        std::fill(acc.begin(), acc.end(), 0.0);
        // The output pixel a tap reaches from (ih, iw), if the stride lands on one.
        const auto oh = [&](int64_t r) {
          const int64_t t = ih + g.pt - r * g.dh;
          return t >= 0 && t % g.sh == 0 && t / g.sh < g.OH ? t / g.sh : -1;
        };
        const auto ow = [&](int64_t s) {
          const int64_t t = iw + g.pl - s * g.dw;
          return t >= 0 && t % g.sw == 0 && t / g.sw < g.OW ? t / g.sw : -1;
        };
        GatherTaps(g, oh, ow, dy + n * g.y.a, g.y, wp, g.Kg, g.Cg, acc.data());
        double* xp = dx + n * g.x.a + ih * g.x.c + iw * g.x.d;
        for (int64_t c = 0; c < g.C; ++c) xp[c * g.x.b] = acc[c];
      }
    }
  }
}

void BackwardWeightsChannel(const Geometry& g, const double* x, const double* dy, double* dw) {
  // acc[k][r][s][cc]: the gradient of one output channel at one tap, over its group's
  // input channels, is contiguous.
  std::vector<double> acc(static_cast<size_t>(g.K * g.R * g.S * g.Cg), 0.0);
  std::vector<double> xc(static_cast<size_t>(g.C));
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const double* yp = dy + n * g.y.a + oh * g.y.c + ow * g.y.d;
        for (int64_t r = 0; r < g.R; ++r) {
          const int64_t ih = oh * g.sh - g.pt + r * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          for (int64_t s = 0; s < g.S; ++s) {
            const int64_t iw = ow * g.sw - g.pl + s * g.dw;
            if (iw < 0 || iw >= g.W) continue;
            const double* xp = x + n * g.x.a + ih * g.x.c + iw * g.x.d;
            if (g.x.b != 1) {
              for (int64_t c = 0; c < g.C; ++c) xc[static_cast<size_t>(c)] = xp[c * g.x.b];
              xp = xc.data();
            }
            for (int64_t k = 0; k < g.K; ++k) {
              const double v = yp[k * g.y.b];
              if (v == 0.0) continue;
              Axpy(g.Cg, v, xp + (k / g.Kg) * g.Cg, 1,
                   &acc[static_cast<size_t>(((k * g.R + r) * g.S + s) * g.Cg)], 1);
            }
          }
        }
      }
    }
  }
  for (int64_t k = 0; k < g.K; ++k) {
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) {
        for (int64_t cc = 0; cc < g.Cg; ++cc) {
          dw[k * g.w.a + cc * g.w.b + r * g.w.c + s * g.w.d] =
              acc[static_cast<size_t>(((k * g.R + r) * g.S + s) * g.Cg + cc)];
        }
      }
    }
  }
}

// SplitMix64: a small, well-mixed generator whose sequence is the same everywhere.
struct SplitMix64 {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int64_t Below(int64_t bound) {
    return static_cast<int64_t>(Next() % static_cast<uint64_t>(bound));
  }
};

// `count` positions in [0, length), evenly spaced with both ends kept (all when
// length <= count).
std::vector<int64_t> EvenlySpaced(int64_t length, int64_t count) {
  std::vector<int64_t> out;
  if (length <= count) {
    for (int64_t i = 0; i < length; ++i) out.push_back(i);
    return out;
  }
  for (int64_t j = 0; j < count; ++j) {
    out.push_back(count == 1 ? 0 : (j * (length - 1) + (count - 1) / 2) / (count - 1));
  }
  return out;
}

}  // namespace

TensorRole ResultRole(Direction d) {
  switch (d) {
    case Direction::kForward: return TensorRole::kOutput;
    case Direction::kBackwardData: return TensorRole::kInput;
    case Direction::kBackwardWeights: return TensorRole::kWeight;
  }
  return TensorRole::kOutput;
}

std::string_view TensorName(TensorRole role, Direction d) {
  const bool fwd = d == Direction::kForward;
  switch (role) {
    case TensorRole::kInput: return d == Direction::kBackwardData ? "dx" : "x";
    case TensorRole::kWeight: return d == Direction::kBackwardWeights ? "dw" : "w";
    case TensorRole::kOutput: return fwd ? "y" : "dy";
  }
  return "?";
}

ResultView::ResultView(const Problem& p) : role_(ResultRole(p.direction)), direction_(p.direction) {
  const TensorIndexer ix(p);
  switch (role_) {
    case TensorRole::kOutput:
      dims_ = {p.n, p.k, p.out_h(), p.out_w()};
      strides_ = {ix.output(1, 0, 0, 0), ix.output(0, 1, 0, 0), ix.output(0, 0, 1, 0),
                  ix.output(0, 0, 0, 1)};
      group_axis_ = 1;
      per_group_ = p.k_per_group();
      break;
    case TensorRole::kInput:
      dims_ = {p.n, p.c, p.h, p.w};
      strides_ = {ix.input(1, 0, 0, 0), ix.input(0, 1, 0, 0), ix.input(0, 0, 1, 0),
                  ix.input(0, 0, 0, 1)};
      group_axis_ = 1;
      per_group_ = p.c_per_group();
      break;
    case TensorRole::kWeight:
      dims_ = {p.k, p.c_per_group(), p.r, p.s};
      strides_ = {ix.weight(1, 0, 0, 0), ix.weight(0, 1, 0, 0), ix.weight(0, 0, 1, 0),
                  ix.weight(0, 0, 0, 1)};
      group_axis_ = 0;
      per_group_ = p.k_per_group();
      break;
  }
  // Memory order, slowest axis first: sort the axes by decreasing stride; ties (axes of
  // size 1) are broken by logical order so that IndexOf stays well defined.
  order_ = {0, 1, 2, 3};
  std::stable_sort(order_.begin(), order_.end(), [&](int a, int b) {
    return strides_[static_cast<size_t>(a)] > strides_[static_cast<size_t>(b)];
  });
}

ResultView::Index ResultView::IndexOf(int64_t offset) const {
  Index i{};
  int64_t rem = offset;
  for (int pos = 3; pos >= 0; --pos) {
    const auto axis = static_cast<size_t>(order_[static_cast<size_t>(pos)]);
    i[axis] = rem % dims_[axis];
    rem /= dims_[axis];
  }
  return i;
}

std::string ResultView::Describe(int64_t offset) const {
  static constexpr std::array<const char*, 4> kOut = {"n", "k", "oh", "ow"};
  static constexpr std::array<const char*, 4> kIn = {"n", "c", "h", "w"};
  static constexpr std::array<const char*, 4> kWei = {"k", "c", "r", "s"};
  const auto& names = role_ == TensorRole::kOutput  ? kOut
                      : role_ == TensorRole::kInput ? kIn
                                                    : kWei;
  const Index i = IndexOf(offset);
  std::string out(TensorName(role_, direction_));
  out += '[';
  for (size_t a = 0; a < 4; ++a) {
    if (a > 0) out += ',';
    out += names[a];
    out += '=';
    out += std::to_string(i[a]);
  }
  out += ']';
  return out;
}

void ReferenceConvolution(const Problem& p, ConvTensors<double>& t, ReferenceLoops loops) {
  const Geometry g(p);
  assert(static_cast<int64_t>(t.input.size()) == p.input_elements());
  assert(static_cast<int64_t>(t.weight.size()) == p.weight_elements());
  assert(static_cast<int64_t>(t.output.size()) == p.output_elements());
  if (loops == ReferenceLoops::kAuto) {
    loops =
        p.layout == Layout::kNHWC ? ReferenceLoops::kChannelInner : ReferenceLoops::kSpatialInner;
  }
  const bool spatial = loops == ReferenceLoops::kSpatialInner;
  switch (p.direction) {
    case Direction::kForward: {
      assert(!p.bias || static_cast<int64_t>(t.bias.size()) == p.k);
      const double* bias = p.bias ? t.bias.data() : nullptr;
      if (spatial) {
        ForwardSpatial(g, t.input.data(), t.weight.data(), bias, t.output.data());
      } else {
        ForwardChannel(g, t.input.data(), t.weight.data(), bias, t.output.data());
      }
      return;
    }
    case Direction::kBackwardData:
      if (spatial) {
        BackwardDataSpatial(g, t.output.data(), t.weight.data(), t.input.data());
      } else {
        BackwardDataChannel(g, t.output.data(), t.weight.data(), t.input.data());
      }
      return;
    case Direction::kBackwardWeights:
      if (spatial) {
        BackwardWeightsSpatial(g, t.input.data(), t.output.data(), t.weight.data(),
                               static_cast<int64_t>(t.weight.size()));
      } else {
        BackwardWeightsChannel(g, t.input.data(), t.output.data(), t.weight.data());
      }
      return;
  }
}

double ReferenceAt(const Problem& p, const ConvTensors<double>& t, int64_t result_offset) {
  const Geometry g(p);
  const ResultView view(p);
  assert(result_offset >= 0 && result_offset < view.elements());
  const ResultView::Index i = view.IndexOf(result_offset);
  const double* x = t.input.data();
  const double* w = t.weight.data();
  const double* y = t.output.data();
  // The terms are summed in the order of the kSpatialInner loop nest for forward and
  // backward-data, so the two agree bit for bit on any data.
  switch (p.direction) {
    case Direction::kForward: {
      const int64_t n = i[0], k = i[1], oh = i[2], ow = i[3];
      const int64_t grp = k / g.Kg;
      double acc = p.bias ? t.bias[static_cast<size_t>(k)] : 0.0;
      for (int64_t cc = 0; cc < g.Cg; ++cc) {
        const double* xp = x + n * g.x.a + (grp * g.Cg + cc) * g.x.b;
        for (int64_t r = 0; r < g.R; ++r) {
          const int64_t ih = oh * g.sh - g.pt + r * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          for (int64_t s = 0; s < g.S; ++s) {
            const int64_t iw = ow * g.sw - g.pl + s * g.dw;
            if (iw < 0 || iw >= g.W) continue;
            const double wv = w[k * g.w.a + cc * g.w.b + r * g.w.c + s * g.w.d];
            if (wv == 0.0) continue;
            acc += wv * xp[ih * g.x.c + iw * g.x.d];
          }
        }
      }
      return acc;
    }
    case Direction::kBackwardData: {
      const int64_t n = i[0], c = i[1], ih = i[2], iw = i[3];
      const int64_t grp = c / g.Cg, cc = c % g.Cg;
      double acc = 0.0;
      for (int64_t kk = 0; kk < g.Kg; ++kk) {
        const int64_t k = grp * g.Kg + kk;
        const double* yp = y + n * g.y.a + k * g.y.b;
        for (int64_t r = 0; r < g.R; ++r) {
          const int64_t th = ih + g.pt - r * g.dh;
          if (th < 0 || th % g.sh != 0 || th / g.sh >= g.OH) continue;
          const int64_t oh = th / g.sh;
          for (int64_t s = 0; s < g.S; ++s) {
            const int64_t tw = iw + g.pl - s * g.dw;
            if (tw < 0 || tw % g.sw != 0 || tw / g.sw >= g.OW) continue;
            const int64_t ow = tw / g.sw;
            const double wv = w[k * g.w.a + cc * g.w.b + r * g.w.c + s * g.w.d];
            if (wv == 0.0) continue;
            acc += wv * yp[oh * g.y.c + ow * g.y.d];
          }
        }
      }
      return acc;
    }
    case Direction::kBackwardWeights: {
      const int64_t k = i[0], cc = i[1], r = i[2], s = i[3];
      const int64_t c = (k / g.Kg) * g.Cg + cc;
      const Range rh = ValidRange(r * g.dh - g.pt, g.sh, g.H, g.OH);
      const Range rw = ValidRange(s * g.dw - g.pl, g.sw, g.W, g.OW);
      double acc = 0.0;
      for (int64_t n = 0; n < g.N; ++n) {
        const double* xp = x + n * g.x.a + c * g.x.b;
        const double* yp = y + n * g.y.a + k * g.y.b;
        for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
          const int64_t ih = oh * g.sh - g.pt + r * g.dh;
          for (int64_t ow = rw.lo; ow < rw.hi; ++ow) {
            const int64_t iw = ow * g.sw - g.pl + s * g.dw;
            acc += xp[ih * g.x.c + iw * g.x.d] * yp[oh * g.y.c + ow * g.y.d];
          }
        }
      }
      return acc;
    }
  }
  return 0.0;
}

std::vector<double> ReferenceValuesAt(const Problem& p, const ConvTensors<double>& t,
                                      std::span<const int64_t> result_offsets) {
  std::vector<double> out;
  out.reserve(result_offsets.size());
  for (int64_t off : result_offsets) out.push_back(ReferenceAt(p, t, off));
  return out;
}

std::vector<int64_t> ChooseSamplePoints(const Problem& p, int64_t interior_points, uint64_t seed) {
  const ResultView view(p);
  const ResultView::Index d = view.dims();
  const int64_t cost = std::max<int64_t>(1, p.accumulation_length());
  const int64_t budget_points = kSampleMacBudget / cost;
  const int other_axis = view.group_axis() == 0 ? 1 : 0;
  const int64_t groups = d[static_cast<size_t>(view.group_axis())] / view.per_group();

  std::vector<int64_t> points;
  auto add = [&](int64_t a, int64_t b, int64_t h, int64_t w) {
    points.push_back(view.Offset({a, b, h, w}));
  };
  auto add_unique_sorted = [&]() {
    std::sort(points.begin(), points.end());
    points.erase(std::unique(points.begin(), points.end()), points.end());
  };
  const std::array<int64_t, 2> ends0 = {0, d[0] - 1};
  const std::array<int64_t, 2> ends1 = {0, d[1] - 1};

  // Corners of the plane for the first/last of axes 0 and 1: always returned.
  auto add_corners = [&]() {
    for (int64_t a : ends0) {
      for (int64_t b : ends1) {
        for (int64_t h : {int64_t{0}, d[2] - 1}) {
          for (int64_t w : {int64_t{0}, d[3] - 1}) add(a, b, h, w);
        }
      }
    }
  };
  auto add_structured = [&](int64_t cap) {
    const std::vector<int64_t> rows = EvenlySpaced(d[2], cap);
    const std::vector<int64_t> cols = EvenlySpaced(d[3], cap);
    for (int64_t a : ends0) {
      for (int64_t b : ends1) {
        for (int64_t w : cols) {
          add(a, b, 0, w);
          add(a, b, d[2] - 1, w);
        }
        for (int64_t h : rows) {
          add(a, b, h, 0);
          add(a, b, h, d[3] - 1);
        }
      }
    }
    const std::array<int64_t, 2> ends_other = {0, d[static_cast<size_t>(other_axis)] - 1};
    for (int64_t grp : EvenlySpaced(groups, cap)) {
      for (int64_t ch : {grp * view.per_group(), grp * view.per_group() + view.per_group() - 1}) {
        for (int64_t o : ends_other) {
          const int64_t a = view.group_axis() == 0 ? ch : o;
          const int64_t b = view.group_axis() == 0 ? o : ch;
          add(a, b, 0, 0);
          add(a, b, 0, d[3] - 1);
          add(a, b, d[2] - 1, 0);
          add(a, b, d[2] - 1, d[3] - 1);
          add(a, b, d[2] / 2, d[3] / 2);
        }
      }
    }
  };

  for (int64_t cap : {64, 16, 4, 2}) {
    points.clear();
    add_structured(cap);
    add_unique_sorted();
    if (static_cast<int64_t>(points.size()) <= budget_points) break;
    if (cap == 2) {
      points.clear();
      add_corners();
      add_unique_sorted();
    }
  }

  const int64_t room = std::max<int64_t>(0, budget_points - static_cast<int64_t>(points.size()));
  const int64_t wanted = std::min({std::max<int64_t>(0, interior_points), room, view.elements()});
  SplitMix64 rng{seed};
  for (int64_t j = 0; j < wanted; ++j) {
    const int64_t a = rng.Below(d[0]);
    const int64_t b = rng.Below(d[1]);
    const int64_t h = d[2] > 2 ? 1 + rng.Below(d[2] - 2) : rng.Below(d[2]);
    const int64_t w = d[3] > 2 ? 1 + rng.Below(d[3] - 2) : rng.Below(d[3]);
    add(a, b, h, w);
  }
  add_unique_sorted();
  return points;
}

}  // namespace convguard
