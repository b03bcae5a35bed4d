#include "rewrite/tensor_copy.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>
#include <vector>

namespace convguard::rewrite {
namespace {

using Axes = std::array<int64_t, 4>;

// Logical (n, c, h, w) in memory order, slowest axis first.
Axes InMemoryOrder(const Dims4& d, Layout layout) {
  if (layout == Layout::kNHWC) return {d.n, d.h, d.w, d.c};
  return {d.n, d.c, d.h, d.w};
}

Axes StridesOf(const Axes& sizes) {
  Axes strides{};
  int64_t stride = 1;
  for (int i = 3; i >= 0; --i) {
    strides[i] = stride;
    stride *= sizes[i];
  }
  return strides;
}

int64_t OffsetOf(const Axes& point, const Axes& strides) {
  return point[0] * strides[0] + point[1] * strides[1] + point[2] * strides[2] +
         point[3] * strides[3];
}

// A box as up to three outer loops around one contiguous run.
struct RunPlan {
  std::array<int64_t, 3> count{1, 1, 1};
  std::array<int64_t, 3> src_stride{0, 0, 0};
  std::array<int64_t, 3> dst_stride{0, 0, 0};
  int64_t run = 0;
  int64_t src_offset = 0;
  int64_t dst_offset = 0;
};

// Merges the innermost axes that are contiguous in both tensors (an axis joins the run
// when its stride equals the run's length in both), so the run is as long as possible.
RunPlan PlanRuns(const TensorShape4& src_shape, const Dims4& src_origin,
                 const TensorShape4& dst_shape, const Dims4& dst_origin, const Dims4& extent) {
  assert(src_shape.layout == dst_shape.layout);
  const Layout layout = dst_shape.layout;
  const Axes e = InMemoryOrder(extent, layout);
  const Axes ss = StridesOf(InMemoryOrder(src_shape.dims, layout));
  const Axes ds = StridesOf(InMemoryOrder(dst_shape.dims, layout));
  RunPlan plan;
  plan.src_offset = OffsetOf(InMemoryOrder(src_origin, layout), ss);
  plan.dst_offset = OffsetOf(InMemoryOrder(dst_origin, layout), ds);
  int64_t run = e[3];
  int inner = 3;  // axes [inner, 4) form the run
  while (inner > 0 && ss[inner - 1] == run && ds[inner - 1] == run) {
    --inner;
    run *= e[inner];
  }
  plan.run = run;
  // The remaining outer axes [0, inner) become the loops, right-aligned.
  for (int axis = inner - 1, loop = 2; axis >= 0; --axis, --loop) {
    plan.count[loop] = e[axis];
    plan.src_stride[loop] = ss[axis];
    plan.dst_stride[loop] = ds[axis];
  }
  return plan;
}

template <typename RunOp>
void ForEachRun(const RunPlan& plan, const float* src, float* dst, RunOp op) {
  if (plan.run == 0 || plan.count[0] == 0 || plan.count[1] == 0 || plan.count[2] == 0) return;
  const float* s0 = src + plan.src_offset;
  float* d0 = dst + plan.dst_offset;
  for (int64_t i0 = 0; i0 < plan.count[0]; ++i0) {
    const float* s1 = s0;
    float* d1 = d0;
    for (int64_t i1 = 0; i1 < plan.count[1]; ++i1) {
      const float* s2 = s1;
      float* d2 = d1;
      for (int64_t i2 = 0; i2 < plan.count[2]; ++i2) {
        op(s2, d2, plan.run);
        s2 += plan.src_stride[2];
        d2 += plan.dst_stride[2];
      }
      s1 += plan.src_stride[1];
      d1 += plan.dst_stride[1];
    }
    s0 += plan.src_stride[0];
    d0 += plan.dst_stride[0];
  }
}

void AddRun(const float* __restrict src, float* __restrict dst, int64_t count) {
  for (int64_t i = 0; i < count; ++i) dst[i] += src[i];
}

}  // namespace

TensorShape4 InputShape(const Problem& p) { return {{p.n, p.c, p.h, p.w}, p.layout}; }

TensorShape4 OutputShape(const Problem& p) { return {{p.n, p.k, p.out_h(), p.out_w()}, p.layout}; }

TensorShape4 WeightShape(const Problem& p) { return {{p.k, p.c_per_group(), p.r, p.s}, p.layout}; }

void CopyBox(const float* src, const TensorShape4& src_shape, const Dims4& src_origin, float* dst,
             const TensorShape4& dst_shape, const Dims4& dst_origin, const Dims4& extent) {
  const RunPlan plan = PlanRuns(src_shape, src_origin, dst_shape, dst_origin, extent);
  ForEachRun(plan, src, dst, [](const float* s, float* d, int64_t count) {
    std::memcpy(d, s, static_cast<size_t>(count) * sizeof(float));
  });
}

void AddBox(const float* src, const TensorShape4& src_shape, const Dims4& src_origin, float* dst,
            const TensorShape4& dst_shape, const Dims4& dst_origin, const Dims4& extent) {
  const RunPlan plan = PlanRuns(src_shape, src_origin, dst_shape, dst_origin, extent);
  ForEachRun(plan, src, dst, AddRun);
}

Status CopyBoxOnDevice(DeviceMemory& memory, int64_t element_bytes, const void* src,
                       const TensorShape4& src_shape, const Dims4& src_origin, void* dst,
                       const TensorShape4& dst_shape, const Dims4& dst_origin,
                       const Dims4& extent) {
  const RunPlan plan = PlanRuns(src_shape, src_origin, dst_shape, dst_origin, extent);
  if (plan.run == 0 || plan.count[0] == 0 || plan.count[1] == 0 || plan.count[2] == 0)
    return Status::Ok();
  // The loops that repeat (outermost first), merged where an outer one continues the
  // inner one in both tensors: an NHWC channel padding's n, h and w loops are one
  // evenly spaced series of rows, hence one 2-D copy.
  struct Loop {
    int64_t count, src_stride, dst_stride;
  };
  std::vector<Loop> loops;
  for (int i = 0; i < 3; ++i) {
    if (plan.count[i] == 1) continue;
    const Loop outer{plan.count[i], plan.src_stride[i], plan.dst_stride[i]};
    loops.push_back(outer);
  }
  for (size_t i = loops.size(); i-- > 1;) {
    Loop& inner = loops[i];
    const Loop& outer = loops[i - 1];
    if (outer.src_stride == inner.src_stride * inner.count &&
        outer.dst_stride == inner.dst_stride * inner.count) {
      inner.count *= outer.count;
      loops.erase(loops.begin() + static_cast<std::ptrdiff_t>(i - 1));
    }
  }
  const Loop rows = loops.empty() ? Loop{1, 0, 0} : loops.back();
  if (!loops.empty()) loops.pop_back();
  const auto bytes = [element_bytes](int64_t elements) {
    return static_cast<size_t>(elements * element_bytes);
  };
  const auto* src_bytes = static_cast<const unsigned char*>(src) + bytes(plan.src_offset);
  auto* dst_bytes = static_cast<unsigned char*>(dst) + bytes(plan.dst_offset);
  // At most two loops remain around the rows; iterate them as one counter.
  int64_t outer_total = 1;
  for (const Loop& loop : loops) outer_total *= loop.count;
  for (int64_t index = 0; index < outer_total; ++index) {
    int64_t rest = index;
    int64_t src_offset = 0;
    int64_t dst_offset = 0;
    for (size_t i = loops.size(); i-- > 0;) {
      const int64_t at = rest % loops[i].count;
      rest /= loops[i].count;
      src_offset += at * loops[i].src_stride;
      dst_offset += at * loops[i].dst_stride;
    }
    CG_RETURN_IF_ERROR(memory.CopyRows(dst_bytes + bytes(dst_offset), bytes(rows.dst_stride),
                                       src_bytes + bytes(src_offset), bytes(rows.src_stride),
                                       bytes(plan.run), static_cast<size_t>(rows.count)));
  }
  return Status::Ok();
}

void ZeroBox(float* dst, const TensorShape4& shape, const Dims4& origin, const Dims4& extent) {
  // The destination plays both roles; the "source" pointer is never read.
  const RunPlan plan = PlanRuns(shape, origin, shape, origin, extent);
  ForEachRun(plan, dst, dst, [](const float*, float* d, int64_t count) {
    std::memset(d, 0, static_cast<size_t>(count) * sizeof(float));
  });
}

void FillBoxByChannel(float* dst, const TensorShape4& shape, const Dims4& origin,
                      const Dims4& extent, const float* channel_values) {
  if (extent.elements() == 0) return;
  const Axes strides = StridesOf(InMemoryOrder(shape.dims, shape.layout));
  const size_t channel_bytes = static_cast<size_t>(extent.c) * sizeof(float);
  float* image = dst + OffsetOf(InMemoryOrder(origin, shape.layout), strides);
  if (shape.layout == Layout::kNHWC) {
    // Channels are innermost: every pixel of the box receives the same run of values.
    for (int64_t n = 0; n < extent.n; ++n, image += strides[0]) {
      float* row = image;
      for (int64_t h = 0; h < extent.h; ++h, row += strides[1]) {
        float* pixel = row;
        for (int64_t w = 0; w < extent.w; ++w, pixel += strides[2]) {
          std::memcpy(pixel, channel_values, channel_bytes);
        }
      }
    }
    return;
  }
  // NCHW: each (n, c) plane of the box is one value.
  for (int64_t n = 0; n < extent.n; ++n, image += strides[0]) {
    float* plane = image;
    for (int64_t c = 0; c < extent.c; ++c, plane += strides[1]) {
      const float value = channel_values[c];
      float* row = plane;
      for (int64_t h = 0; h < extent.h; ++h, row += strides[2]) {
        std::fill(row, row + extent.w, value);
      }
    }
  }
}

void AddInto(std::span<float> dst, std::span<const float> src) {
  assert(dst.size() == src.size());
  AddRun(src.data(), dst.data(), static_cast<int64_t>(dst.size()));
}

}  // namespace convguard::rewrite
