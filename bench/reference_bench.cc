// Full float64 reference vs sampled reference (ChooseSamplePoints + ReferenceAt).
//
// Problems: the seed problem of the design brief (16->32, 3x3, pad 1, 64x64, n=1) and
// a ResNet-50-like layer (64->64, 3x3, pad 1, 56x56, n=1), each in the three
// directions and both layouts. Inputs are filled with FillExact once per benchmark.
// Counters: "GFLOP/s" of the full reference (2 * MACs per second); "points" and
// "MACs/pt" for the sampled form.
//
// Run: ./build-core/bench/reference_bench --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "convguard/fill.h"
#include "convguard/problem.h"
#include "convguard/reference.h"
#include "convguard/tensor.h"

namespace convguard {
namespace {

Problem BenchProblem(int64_t which, int64_t direction, int64_t layout) {
  Problem p;
  if (which == 0) {  // seed: 16 -> 32, 3x3 pad 1, 64x64
    p.c = 16;
    p.k = 32;
    p.h = p.w = 64;
  } else {  // ResNet-50 conv2_x 3x3: 64 -> 64, 56x56
    p.c = 64;
    p.k = 64;
    p.h = p.w = 56;
  }
  p.r = p.s = 3;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
  p.direction = static_cast<Direction>(direction);
  p.layout = layout == 0 ? Layout::kNCHW : Layout::kNHWC;
  return p;
}

void SetLabel(benchmark::State& state, const Problem& p, int64_t which) {
  state.SetLabel(std::string(which == 0 ? "seed16x32@64 " : "resnet64x64@56 ") +
                 std::string(DirectionName(p.direction)) + " " + std::string(LayoutName(p.layout)));
}

void BM_FullReference(benchmark::State& state) {
  const Problem p = BenchProblem(state.range(0), state.range(1), state.range(2));
  ConvTensors<double> t = ConvTensors<double>::Allocate(p);
  FillExact(p, 1, t);
  for (auto _ : state) {
    ReferenceConvolution(p, t);
    benchmark::DoNotOptimize(ResultTensor(p, t).data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(2 * p.macs()) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  SetLabel(state, p, state.range(0));
}

void BM_SampledReference(benchmark::State& state) {
  const Problem p = BenchProblem(state.range(0), state.range(1), state.range(2));
  ConvTensors<double> t = ConvTensors<double>::Allocate(p);
  FillExact(p, 1, t);
  size_t points = 0;
  for (auto _ : state) {
    const std::vector<int64_t> offsets = ChooseSamplePoints(p, 1000, 7);
    const std::vector<double> values = ReferenceValuesAt(p, t, offsets);
    benchmark::DoNotOptimize(values.data());
    points = offsets.size();
  }
  state.counters["points"] = static_cast<double>(points);
  state.counters["MACs/pt"] = static_cast<double>(p.accumulation_length());
  SetLabel(state, p, state.range(0));
}

// Args: {problem (0 seed, 1 resnet), direction (0 fwd, 1 bwd-data, 2 bwd-weights),
//        layout (0 nchw, 1 nhwc)}
void AllArgs(benchmark::internal::Benchmark* b) {
  for (int64_t which : {0, 1})
    for (int64_t dir : {0, 1, 2})
      for (int64_t layout : {0, 1}) b->Args({which, dir, layout});
}

BENCHMARK(BM_FullReference)->Apply(AllArgs)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SampledReference)->Apply(AllArgs)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace convguard
