// spatial-tiling: computes P as spatial tiles, each a smaller convolution over the input
// window (with its halo) that the tile needs.
//
// Preconditions: none beyond a valid P: any stride, dilation, asymmetric padding
// (including pads larger than the kernel), groups, layout and direction. The tile size
// must split at least one spatial axis, and no child may be P itself.
//
// The window of an output range. For output rows [o_lo, o_hi] (inclusive) the kernel
// reads padded-input rows [start, end) with
//   start = o_lo * stride_h - pad_top,  end = o_hi * stride_h - pad_top + effective_r.
// Clamping to the real input gives rows [a, b), a = max(0, start), b = min(h, end), and
// the child problem is P with h' = b - a, pad_top' = a - start, pad_bottom' = end - b,
// the same kernel, stride and dilation. Its padded height is end - start, so its
// output height is exactly o_hi - o_lo + 1 and its output row i is P's row o_lo + i,
// reading the same input rows (or zero padding) through the same taps. Columns alike.
// When b <= a the window lies entirely in padding: every product is zero, no child runs.
//
// Contract, per direction:
//   forward:          tiles partition y. A tile's child reads x[a:b, a2:b2] and writes
//                     the tile of y; bias stays on the child. A tile whose window is all
//                     padding is bias (or zero).
//   backward-weights: tiles partition dy. dw = the sum over tiles of each child's dw,
//                     where the child reads the x window and the dy tile; an all-padding
//                     window contributes nothing. Summed in float32 in tile order.
//   backward-data:    tiles partition dx (this direction's result, in input space). For
//                     dx rows [i0, i1) the dy rows that reach them are
//                       o_lo = max(0, ceil((i0 + pad_top - effective_r + 1) / stride_h)),
//                       o_hi = min(out_h - 1, floor((i1 - 1 + pad_top) / stride_h)),
//                     every o with a tap landing in [i0, i1). If o_lo > o_hi no gradient
//                     reaches the tile: it is zero. Otherwise the child is the window
//                     problem of [o_lo, o_hi] (rows [a, b) as above); it computes dx on
//                     rows [a, b), of which rows [i0, i1) are complete (every dy row
//                     reaching them is in the child) and are kept, while its other rows
//                     miss contributions from dy rows outside [o_lo, o_hi] and are
//                     discarded. Tile rows outside [a, b) are reached by no tap: zero
//                     (this happens when stride exceeds the kernel). Columns alike.
// Exactness: forward and backward-data only copy values and write zeros or bias. In
// backward-weights every child's dw and every running sum of them is a partial sum of
// P's dw elements' products; FillExact bounds the sum of |product| over all of an
// element's terms by 2^24, so all of these are integers float32 holds exactly.
//
// Slots: one per distinct child problem (interior tiles share one; border tiles differ
// in size and pads), runs = how many tiles use it; each slot holds the full weights.
//
// Candidates, per axis, for target input windows W in {16, 32, 64, 128}: forward and
// backward-weights tile the output with T = (W - effective) / stride + 1 rows (the
// outputs whose windows fit in W input rows), backward-data tiles dx with T = W rows; an
// axis where T < 1 or T covers it whole keeps its full size, and a choice that tiles
// neither axis is skipped. Then halves and quarters of each axis (ceil(size / 2),
// ceil(size / 4)). Distinct tilings only, in that order. Parameters "tile=30x30"
// (rows x columns, output units for forward and backward-weights, dx units for
// backward-data).
#include <algorithm>
#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rewrite/rewrite.h"
#include "rewrite/rewrite_node.h"
#include "rewrite/tensor_copy.h"

namespace convguard::rewrite {
namespace {

constexpr std::string_view kName = "spatial-tiling";

// One spatial axis of P.
struct AxisGeometry {
  int64_t size;  // h or w
  int64_t pad_before;
  int64_t pad_after;
  int64_t stride;
  int64_t effective;  // dilated kernel extent
  int64_t out;        // out_h or out_w
};

AxisGeometry RowsOf(const Problem& p) {
  return {p.h, p.pad_top, p.pad_bottom, p.stride_h, p.effective_r(), p.out_h()};
}
AxisGeometry ColumnsOf(const Problem& p) {
  return {p.w, p.pad_left, p.pad_right, p.stride_w, p.effective_s(), p.out_w()};
}

// The size of the axis a tile size counts in: outputs, or dx for backward-data.
int64_t TiledExtent(const AxisGeometry& g, Direction d) {
  return d == Direction::kBackwardData ? g.size : g.out;
}

// One tile along one axis.
struct AxisTile {
  // The rows of the result this tile writes: output rows (forward; the reduction range
  // of backward-weights) or dx rows (backward-data).
  int64_t tile_begin = 0;
  int64_t tile_end = 0;
  bool has_child = false;  // some real input row is in the window
  int64_t out_begin = 0;   // the y / dy rows the child covers, [out_begin, out_end)
  int64_t out_end = 0;
  int64_t in_begin = 0;  // the x / dx rows the child covers, [in_begin, in_end)
  int64_t in_end = 0;
  int64_t pad_before = 0;  // the child's pads
  int64_t pad_after = 0;
};

// The child window of output rows [o_lo, o_hi].
void SetWindow(const AxisGeometry& g, int64_t o_lo, int64_t o_hi, AxisTile& tile) {
  const int64_t start = o_lo * g.stride - g.pad_before;
  const int64_t end = o_hi * g.stride - g.pad_before + g.effective;
  tile.out_begin = o_lo;
  tile.out_end = o_hi + 1;
  tile.in_begin = std::max<int64_t>(0, start);
  tile.in_end = std::min(g.size, end);
  tile.has_child = tile.in_end > tile.in_begin;
  tile.pad_before = tile.in_begin - start;
  tile.pad_after = end - tile.in_end;
}

int64_t CeilDiv(int64_t a, int64_t b) {  // b > 0, any sign of a
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

// Forward and backward-weights: tiles of `tile` outputs.
std::vector<AxisTile> TileOutputs(const AxisGeometry& g, int64_t tile) {
  std::vector<AxisTile> tiles;
  for (int64_t begin = 0; begin < g.out; begin += tile) {
    AxisTile t;
    t.tile_begin = begin;
    t.tile_end = std::min(g.out, begin + tile);
    SetWindow(g, t.tile_begin, t.tile_end - 1, t);
    tiles.push_back(t);
  }
  return tiles;
}

// Backward-data: tiles of `tile` dx rows, each with the dy rows that reach it.
std::vector<AxisTile> TileInputs(const AxisGeometry& g, int64_t tile) {
  std::vector<AxisTile> tiles;
  for (int64_t begin = 0; begin < g.size; begin += tile) {
    AxisTile t;
    t.tile_begin = begin;
    t.tile_end = std::min(g.size, begin + tile);
    const int64_t o_lo =
        std::max<int64_t>(0, CeilDiv(t.tile_begin + g.pad_before - g.effective + 1, g.stride));
    const int64_t o_hi = std::min(g.out - 1, (t.tile_end - 1 + g.pad_before) / g.stride);
    if (o_lo <= o_hi) SetWindow(g, o_lo, o_hi, t);
    // A reaching dy row's window overlaps the tile, so it has real rows; o_lo > o_hi
    // leaves has_child false.
    tiles.push_back(t);
  }
  return tiles;
}

struct Tile {
  size_t row;
  size_t col;
  int slot;  // -1: no child (all padding, or no gradient reaches the tile)
};

struct Tiling {
  std::vector<AxisTile> rows;
  std::vector<AxisTile> cols;
  std::vector<Tile> tiles;  // row-major
  std::vector<Problem> slot_problems;
  std::vector<int64_t> runs;
};

Problem WindowProblem(const Problem& p, const AxisTile& row, const AxisTile& col) {
  Problem child = p;
  child.h = row.in_end - row.in_begin;
  child.pad_top = row.pad_before;
  child.pad_bottom = row.pad_after;
  child.w = col.in_end - col.in_begin;
  child.pad_left = col.pad_before;
  child.pad_right = col.pad_after;
  return child;
}

// REQUIRES: 1 <= tile_h, tile_w.
Tiling PlanTiling(const Problem& p, int64_t tile_h, int64_t tile_w) {
  Tiling t;
  if (p.direction == Direction::kBackwardData) {
    t.rows = TileInputs(RowsOf(p), tile_h);
    t.cols = TileInputs(ColumnsOf(p), tile_w);
  } else {
    t.rows = TileOutputs(RowsOf(p), tile_h);
    t.cols = TileOutputs(ColumnsOf(p), tile_w);
  }
  for (size_t r = 0; r < t.rows.size(); ++r) {
    for (size_t c = 0; c < t.cols.size(); ++c) {
      Tile tile{r, c, -1};
      if (t.rows[r].has_child && t.cols[c].has_child) {
        const Problem child = WindowProblem(p, t.rows[r], t.cols[c]);
        // The window's padded extent is (outputs - 1) * stride + effective: exactly the
        // tile's outputs, never a partial extra one.
        assert(child.out_h() == t.rows[r].out_end - t.rows[r].out_begin);
        assert(child.out_w() == t.cols[c].out_end - t.cols[c].out_begin);
        auto found = std::find(t.slot_problems.begin(), t.slot_problems.end(), child);
        tile.slot = static_cast<int>(found - t.slot_problems.begin());
        if (found == t.slot_problems.end()) {
          t.slot_problems.push_back(child);
          t.runs.push_back(0);
        }
        ++t.runs[static_cast<size_t>(tile.slot)];
      }
      t.tiles.push_back(tile);
    }
  }
  return t;
}

std::string ParametersText(int64_t tile_h, int64_t tile_w) {
  return "tile=" + std::to_string(tile_h) + "x" + std::to_string(tile_w);
}

std::optional<Application> MakeApplication(const Problem& p, int64_t tile_h, int64_t tile_w) {
  const int64_t rows = TiledExtent(RowsOf(p), p.direction);
  const int64_t cols = TiledExtent(ColumnsOf(p), p.direction);
  if (tile_h < 1 || tile_w < 1 || tile_h > rows || tile_w > cols) return std::nullopt;
  if (tile_h == rows && tile_w == cols) return std::nullopt;  // the identity
  const Tiling tiling = PlanTiling(p, tile_h, tile_w);
  for (const Problem& child : tiling.slot_problems) {
    // A child equal to P (backward-data, where a large kernel makes every dx tile need
    // all of dy) would only run P again, several times.
    if (child == p || !Validate(child).ok()) return std::nullopt;
  }
  Application app;
  app.rewrite = std::string(kName);
  app.parameters = ParametersText(tile_h, tile_w);
  app.children = tiling.slot_problems;
  app.runs = tiling.runs;
  const int64_t n = p.n;
  for (const Tile& tile : tiling.tiles) {
    const AxisTile& row = tiling.rows[tile.row];
    const AxisTile& col = tiling.cols[tile.col];
    const int64_t tile_area = (row.tile_end - row.tile_begin) * (col.tile_end - col.tile_begin);
    if (tile.slot < 0) {
      // Forward writes bias or zeros; backward-data zeros; backward-weights nothing.
      if (p.direction == Direction::kForward) app.bytes_per_call += FloatBytes(n * p.k * tile_area);
      if (p.direction == Direction::kBackwardData)
        app.bytes_per_call += FloatBytes(n * p.c * tile_area);
      continue;
    }
    const Problem& child = tiling.slot_problems[static_cast<size_t>(tile.slot)];
    switch (p.direction) {
      case Direction::kForward:
        app.bytes_per_call += FloatBytes(child.input_elements() + child.output_elements());
        break;
      case Direction::kBackwardData:
        // dy in, then the whole tile out (kept rows copied, the rest zeroed).
        app.bytes_per_call += FloatBytes(child.output_elements() + n * p.c * tile_area);
        break;
      case Direction::kBackwardWeights:
        app.bytes_per_call +=
            FloatBytes(child.input_elements() + child.output_elements() + p.weight_elements());
        break;
    }
  }
  const auto slots = static_cast<int64_t>(app.children.size());
  if (p.direction == Direction::kForward) {
    app.bytes_per_weight_load = slots * FloatBytes(p.weight_elements() + p.bias_elements());
  } else if (p.direction == Direction::kBackwardData) {
    app.bytes_per_weight_load = slots * FloatBytes(p.weight_elements());
  }
  return app;
}

class SpatialTilingNode final : public RewriteNode {
 public:
  SpatialTilingNode(const Problem& p, std::vector<std::unique_ptr<ExecNode>> children,
                    Tiling tiling)
      : RewriteNode(p, std::move(children)),
        tiling_(std::move(tiling)),
        bias_(static_cast<size_t>(p.bias_elements()), 0.0f) {}

 private:
  void DistributeWeights(const std::vector<float>& weight,
                         const std::vector<float>& bias) override {
    for (size_t slot = 0; slot < slot_count(); ++slot) {
      std::copy(weight.begin(), weight.end(), slot_io(slot).weight.begin());
      std::copy(bias.begin(), bias.end(), slot_io(slot).bias.begin());
    }
    // Forward tiles whose window is all padding are the bias alone.
    std::copy(bias.begin(), bias.end(), bias_.begin());
  }

  Status Run(ConvTensors<float>& io) override {
    switch (problem().direction) {
      case Direction::kForward: return RunForward(io);
      case Direction::kBackwardData: return RunBackwardData(io);
      case Direction::kBackwardWeights: return RunBackwardWeights(io);
    }
    return Status::Internal("unknown direction");
  }

  Status RunForward(ConvTensors<float>& io) {
    const Problem& p = problem();
    const TensorShape4 x = InputShape(p);
    const TensorShape4 y = OutputShape(p);
    for (const Tile& tile : tiling_.tiles) {
      const AxisTile& row = tiling_.rows[tile.row];
      const AxisTile& col = tiling_.cols[tile.col];
      const Dims4 y_at{0, 0, row.tile_begin, col.tile_begin};
      if (tile.slot < 0) {
        const Dims4 extent{p.n, p.k, row.tile_end - row.tile_begin, col.tile_end - col.tile_begin};
        if (p.bias) {
          FillBoxByChannel(io.output.data(), y, y_at, extent, bias_.data());
        } else {
          ZeroBox(io.output.data(), y, y_at, extent);
        }
        continue;
      }
      const auto slot = static_cast<size_t>(tile.slot);
      const Problem& cp = slot_problem(slot);
      ConvTensors<float>& child = slot_io(slot);
      CopyBox(io.input.data(), x, {0, 0, row.in_begin, col.in_begin}, child.input.data(),
              InputShape(cp), {}, InputShape(cp).dims);
      CG_RETURN_IF_ERROR(RunSlot(slot));
      CopyBox(child.output.data(), OutputShape(cp), {}, io.output.data(), y, y_at,
              OutputShape(cp).dims);
    }
    return Status::Ok();
  }

  Status RunBackwardWeights(ConvTensors<float>& io) {
    const Problem& p = problem();
    const TensorShape4 x = InputShape(p);
    const TensorShape4 dy = OutputShape(p);
    bool first = true;
    for (const Tile& tile : tiling_.tiles) {
      if (tile.slot < 0) continue;  // all padding: contributes zero
      const AxisTile& row = tiling_.rows[tile.row];
      const AxisTile& col = tiling_.cols[tile.col];
      const auto slot = static_cast<size_t>(tile.slot);
      const Problem& cp = slot_problem(slot);
      ConvTensors<float>& child = slot_io(slot);
      CopyBox(io.input.data(), x, {0, 0, row.in_begin, col.in_begin}, child.input.data(),
              InputShape(cp), {}, InputShape(cp).dims);
      CopyBox(io.output.data(), dy, {0, 0, row.out_begin, col.out_begin}, child.output.data(),
              OutputShape(cp), {}, OutputShape(cp).dims);
      CG_RETURN_IF_ERROR(RunSlot(slot));
      if (first) {
        io.weight = child.weight;  // same size: no allocation
        first = false;
      } else {
        AddInto(io.weight, child.weight);
      }
    }
    if (first) std::fill(io.weight.begin(), io.weight.end(), 0.0f);
    return Status::Ok();
  }

  Status RunBackwardData(ConvTensors<float>& io) {
    const Problem& p = problem();
    const TensorShape4 dx = InputShape(p);
    const TensorShape4 dy = OutputShape(p);
    for (const Tile& tile : tiling_.tiles) {
      const AxisTile& row = tiling_.rows[tile.row];
      const AxisTile& col = tiling_.cols[tile.col];
      if (tile.slot < 0) {
        ZeroBox(io.input.data(), dx, {0, 0, row.tile_begin, col.tile_begin},
                {p.n, p.c, row.tile_end - row.tile_begin, col.tile_end - col.tile_begin});
        continue;
      }
      const auto slot = static_cast<size_t>(tile.slot);
      const Problem& cp = slot_problem(slot);
      ConvTensors<float>& child = slot_io(slot);
      CopyBox(io.output.data(), dy, {0, 0, row.out_begin, col.out_begin}, child.output.data(),
              OutputShape(cp), {}, OutputShape(cp).dims);
      CG_RETURN_IF_ERROR(RunSlot(slot));
      // The kept box: the tile's rows and columns that the child's window covers.
      const int64_t r0 = std::max(row.tile_begin, row.in_begin);
      const int64_t r1 = std::min(row.tile_end, row.in_end);
      const int64_t c0 = std::max(col.tile_begin, col.in_begin);
      const int64_t c1 = std::min(col.tile_end, col.in_end);
      assert(r0 < r1 && c0 < c1);
      CopyBox(child.input.data(), InputShape(cp), {0, 0, r0 - row.in_begin, c0 - col.in_begin},
              io.input.data(), dx, {0, 0, r0, c0}, {p.n, p.c, r1 - r0, c1 - c0});
      // The rest of the tile is reached by no tap: bands above and below the kept rows
      // (full tile width), left and right of the kept columns (kept rows only).
      const int64_t tile_w = col.tile_end - col.tile_begin;
      ZeroBox(io.input.data(), dx, {0, 0, row.tile_begin, col.tile_begin},
              {p.n, p.c, r0 - row.tile_begin, tile_w});
      ZeroBox(io.input.data(), dx, {0, 0, r1, col.tile_begin},
              {p.n, p.c, row.tile_end - r1, tile_w});
      ZeroBox(io.input.data(), dx, {0, 0, r0, col.tile_begin},
              {p.n, p.c, r1 - r0, c0 - col.tile_begin});
      ZeroBox(io.input.data(), dx, {0, 0, r0, c1}, {p.n, p.c, r1 - r0, col.tile_end - c1});
    }
    return Status::Ok();
  }

  Tiling tiling_;
  std::vector<float> bias_;  // forward: the bias of all-padding tiles
};

// The tile size along one axis for a target input window of `window` rows; the whole
// axis when that does not split it.
int64_t TileForWindow(const AxisGeometry& g, Direction d, int64_t window) {
  const int64_t extent = TiledExtent(g, d);
  const int64_t tile = d == Direction::kBackwardData
                           ? window
                           : (window >= g.effective ? (window - g.effective) / g.stride + 1 : 0);
  return (tile >= 1 && tile < extent) ? tile : extent;
}

class SpatialTiling final : public Rewrite {
 public:
  std::string_view name() const override { return kName; }

  std::vector<Application> Candidates(const Problem& p) const override {
    const AxisGeometry rows = RowsOf(p);
    const AxisGeometry cols = ColumnsOf(p);
    const int64_t row_extent = TiledExtent(rows, p.direction);
    const int64_t col_extent = TiledExtent(cols, p.direction);
    std::vector<std::pair<int64_t, int64_t>> sizes;
    for (int64_t window : {16, 32, 64, 128}) {
      sizes.emplace_back(TileForWindow(rows, p.direction, window),
                         TileForWindow(cols, p.direction, window));
    }
    for (int64_t parts : {2, 4}) {
      sizes.emplace_back((row_extent + parts - 1) / parts, (col_extent + parts - 1) / parts);
    }
    std::vector<Application> out;
    std::vector<std::pair<int64_t, int64_t>> tried;
    for (const auto& size : sizes) {
      if (std::find(tried.begin(), tried.end(), size) != tried.end()) continue;
      tried.push_back(size);
      if (auto app = MakeApplication(p, size.first, size.second)) out.push_back(std::move(*app));
    }
    return out;
  }

  StatusOr<std::unique_ptr<ExecNode>> Build(
      const Problem& p, const Application& application,
      std::vector<std::unique_ptr<ExecNode>> children) const override {
    CG_RETURN_IF_ERROR(Validate(p));
    const std::vector<int64_t> numbers = NumbersIn(application.parameters);
    CG_RETURN_IF_ERROR(
        CheckApplication(kName, p, FromParameters(p, numbers), application, children, Want(p)));
    return std::unique_ptr<ExecNode>(
        new SpatialTilingNode(p, std::move(children), PlanTiling(p, numbers[0], numbers[1])));
  }

  StatusOr<std::vector<ForwardPiece>> ForwardPieces(const Problem& p,
                                                    const Application& application) const override {
    CG_RETURN_IF_ERROR(Validate(p));
    const std::vector<int64_t> numbers = NumbersIn(application.parameters);
    CG_RETURN_IF_ERROR(
        CheckForwardApplication(kName, p, FromParameters(p, numbers), application, Want(p)));
    const Tiling tiling = PlanTiling(p, numbers[0], numbers[1]);
    std::vector<ForwardPiece> pieces;
    for (const Tile& tile : tiling.tiles) {
      const AxisTile& row = tiling.rows[tile.row];
      const AxisTile& col = tiling.cols[tile.col];
      ForwardPiece piece = WholeForwardPiece(p, tile.slot);
      piece.h = {row.in_begin, row.in_end};
      piece.w = {col.in_begin, col.in_end};
      piece.out_h = {row.tile_begin, row.tile_end};
      piece.out_w = {col.tile_begin, col.tile_end};
      pieces.push_back(piece);
    }
    return pieces;
  }

 private:
  static std::optional<Application> FromParameters(const Problem& p,
                                                   const std::vector<int64_t>& numbers) {
    if (numbers.size() != 2) return std::nullopt;
    return MakeApplication(p, numbers[0], numbers[1]);
  }

  static std::string Want(const Problem& p) {
    return "tile=RxC within the tiled extent " +
           std::to_string(TiledExtent(RowsOf(p), p.direction)) + "x" +
           std::to_string(TiledExtent(ColumnsOf(p), p.direction)) +
           ", splitting at least one axis, no child equal to the problem";
  }
};

}  // namespace

const Rewrite& SpatialTilingRewrite() {
  static const SpatialTiling rewrite;
  return rewrite;
}

}  // namespace convguard::rewrite
