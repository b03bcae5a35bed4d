// The planner's cost model: where the store has no measured time for a leaf, a stack's
// time for a problem is a per-call latency plus its FLOPs at the stack's throughput, as
// measured on that stack's own OK verdicts (median GFLOP/s); rewrites add their copies
// at host bandwidth, or as device copies where they run device-resident. Coarse by
// design: it only has to rank plans whose leaves were not all measured, and every leaf
// the planner may execute has a measured verdict.
#include <algorithm>

#include "convguard/text_forms.h"
#include "plan/internal.h"

namespace convguard::plan {

void CostModel::Calibrate(const std::string& stack_id, const std::vector<Verdict>& ok_verdicts) {
  std::vector<double> big, all;
  for (const Verdict& v : ok_verdicts) {
    if (v.kind != VerdictKind::kOk || v.time_ms_median <= 0) continue;
    StatusOr<Problem> p = ParseProblem(v.problem);
    if (!p.ok() || !Validate(*p).ok()) continue;
    const double gflops = static_cast<double>(p->flops()) / (v.time_ms_median * 1e6);
    all.push_back(gflops);
    // Below ~10 MFLOP a call's fixed costs dominate and understate the throughput.
    if (p->flops() >= 10'000'000) big.push_back(gflops);
  }
  std::vector<double>& use = big.empty() ? all : big;
  if (use.empty()) return;
  std::nth_element(use.begin(), use.begin() + use.size() / 2, use.end());
  gflops_[stack_id] = std::max(use[use.size() / 2], 1e-6);
}

double CostModel::GflopsOf(const std::string& stack_id) const {
  auto it = gflops_.find(stack_id);
  return it == gflops_.end() ? options_.default_gflops : it->second;
}

double CostModel::EstimateMs(const std::string& stack_id, const Problem& p) const {
  return options_.call_latency_ms + static_cast<double>(p.flops()) / (GflopsOf(stack_id) * 1e6);
}

double CostModel::CopyMs(int64_t bytes, bool device_resident) const {
  if (device_resident) {
    return options_.device_copy_latency_ms +
           static_cast<double>(bytes) / (options_.device_copy_gb_per_s * 1e6);
  }
  return static_cast<double>(bytes) / (options_.copy_gb_per_s * 1e6);
}

}  // namespace convguard::plan
