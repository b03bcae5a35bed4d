#include "probe/deadline_policy.h"

#include <algorithm>
#include <vector>

namespace convguard::probe {
namespace {

// Rates of convguard's own work (allocation, filling, float64 reference), deliberately
// pessimistic for a loaded 2-core machine: they only size deadlines of stages that do not
// run vendor code, where a false alarm would be our own bug.
constexpr double kPrepBytesPerMs = 50.0e3;      // 50 MB/s
constexpr double kReferenceMacsPerMs = 20.0e3;  // 20 M multiply-adds per second
// The floor is generous because these stages run in the worker's process, where a Python
// interpreter, a busy machine or a GPU driver's lazy initialisation can add seconds
// (measured: a PyTorch worker's first prep stage on a loaded 16-core GPU host took over
// 2 s). A miss here is still confirmed in a fresh worker before anything is recorded.
constexpr double kOwnStageFloorMs = 5000.0;

}  // namespace

DeadlinePolicy::DeadlinePolicy(const DeadlineOptions& options)
    : options_(options), throughput_gflops_(options.assumed_gflops) {}

void DeadlinePolicy::Calibrate(int64_t flops, double ms_per_run) {
  if (ms_per_run <= 0.0 || flops <= 0) return;
  calibrated_ = true;
  recent_gflops_.clear();
  recent_gflops_.push_back(static_cast<double>(flops) / (ms_per_run * 1e6));
  overhead_ms_ = 0.0;
  Recompute();
}

void DeadlinePolicy::Observe(int64_t flops, double median_ms_per_run) {
  if (median_ms_per_run <= 0.0 || flops <= 0) return;
  recent_gflops_.push_back(static_cast<double>(flops) / (median_ms_per_run * 1e6));
  if (recent_gflops_.size() > kWindow) recent_gflops_.pop_front();
  // The overhead is learned from the fastest run seen: a floor no problem beats.
  if (overhead_ms_ == 0.0 || median_ms_per_run < overhead_ms_) overhead_ms_ = median_ms_per_run;
  calibrated_ = true;
  Recompute();
}

void DeadlinePolicy::Recompute() {
  if (recent_gflops_.empty()) return;
  std::vector<double> sorted(recent_gflops_.begin(), recent_gflops_.end());
  std::sort(sorted.begin(), sorted.end());
  // The 10th percentile: small problems run far below peak, and a deadline built on the
  // median would be too tight for them.
  throughput_gflops_ = sorted[sorted.size() / 10];
}

double DeadlinePolicy::ExpectedRunMs(const Problem& p, int runs) const {
  const double per_run = overhead_ms_ + static_cast<double>(p.flops()) / (throughput_gflops_ * 1e6);
  return std::max(1, runs) * per_run;
}

double DeadlinePolicy::RunDeadlineMs(const Problem& p, int runs) const {
  const double allowance =
      options_.compile_allowance_ms >= 0.0 ? options_.compile_allowance_ms : backend_allowance_ms_;
  const double d = options_.floor_ms + allowance + options_.factor * ExpectedRunMs(p, runs);
  return std::clamp(d, options_.floor_ms, std::max(options_.floor_ms, options_.cap_ms));
}

double DeadlinePolicy::ConfirmDeadlineMs(double first_run_deadline_ms) const {
  const double d =
      std::max(options_.confirm_floor_ms, options_.confirm_factor * first_run_deadline_ms);
  return std::min(d, std::max(options_.cap_ms, options_.confirm_floor_ms));
}

double DeadlinePolicy::PrepDeadlineMs(const Problem& p) const {
  // Two copies of every tensor (float64 exact values and float32 operands).
  const double bytes = 3.0 * static_cast<double>(p.total_bytes());
  return kOwnStageFloorMs + backend_allowance_ms_ + bytes / kPrepBytesPerMs;
}

double DeadlinePolicy::CheckDeadlineMs(const Problem& p, CheckMode check,
                                       int64_t sample_points) const {
  double macs = 0.0;
  switch (check) {
    case CheckMode::kNone: break;
    case CheckMode::kSampled:
      // Edges and group boundaries add up to a few thousand points beyond the interior.
      macs =
          static_cast<double>(sample_points + 8192) * static_cast<double>(p.accumulation_length());
      break;
    case CheckMode::kFull: macs = static_cast<double>(p.macs()); break;
  }
  return kOwnStageFloorMs + macs / kReferenceMacsPerMs;
}

}  // namespace convguard::probe
