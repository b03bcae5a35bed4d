#include "probe/deadline_policy.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace convguard::probe {

Problem CalibrationProblem() {
  Problem p;
  p.c = 16;
  p.k = 16;
  p.h = p.w = 32;
  p.r = p.s = 3;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
  return p;
}

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
    : options_(options), calibrated_gflops_(options.assumed_gflops) {}

std::string DeadlinePolicy::FamilyOf(const Problem& p, const std::string& algorithm) {
  return std::string(DirectionName(p.direction)) + " " + std::string(DataTypeName(p.dtype)) + " " +
         std::string(LayoutName(p.layout)) + " " +
         (algorithm.empty() || algorithm == "default" ? std::string("default") : algorithm);
}

double DeadlinePolicy::Median(const std::deque<double>& values) {
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  return n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

void DeadlinePolicy::Calibrate(int64_t flops, double ms_per_run) {
  if (ms_per_run <= 0.0 || flops <= 0) return;
  calibrated_gflops_ = static_cast<double>(flops) / (ms_per_run * 1e6);
  family_gflops_.clear();
  all_gflops_.clear();
  overhead_ms_ = 0.0;
}

void DeadlinePolicy::Observe(const Problem& p, const std::string& algorithm,
                             double median_ms_per_run) {
  const int64_t flops = p.flops();
  if (median_ms_per_run <= 0.0 || flops <= 0) return;
  const double gflops = static_cast<double>(flops) / (median_ms_per_run * 1e6);
  std::deque<double>& family = family_gflops_[FamilyOf(p, algorithm)];
  family.push_back(gflops);
  if (family.size() > kWindow) family.pop_front();
  all_gflops_.push_back(gflops);
  if (all_gflops_.size() > kWindow) all_gflops_.pop_front();
  // The overhead is learned from the fastest run seen: a floor no problem beats.
  if (overhead_ms_ == 0.0 || median_ms_per_run < overhead_ms_) overhead_ms_ = median_ms_per_run;
}

double DeadlinePolicy::throughput_gflops(const Problem& p, const std::string& algorithm) const {
  auto it = family_gflops_.find(FamilyOf(p, algorithm));
  if (it != family_gflops_.end() && it->second.size() >= kMinFamily) return Median(it->second);
  return throughput_gflops();
}

double DeadlinePolicy::throughput_gflops() const {
  return all_gflops_.empty() ? calibrated_gflops_ : Median(all_gflops_);
}

double DeadlinePolicy::ExpectedRunMs(const Problem& p, int runs,
                                     const std::string& algorithm) const {
  const double per_run =
      overhead_ms_ + static_cast<double>(p.flops()) / (throughput_gflops(p, algorithm) * 1e6);
  return std::max(1, runs) * per_run;
}

double DeadlinePolicy::CompileAllowanceMs(const std::string& algorithm) const {
  if (options_.compile_allowance_ms >= 0.0) return options_.compile_allowance_ms;
  auto it = backend_allowance_by_algorithm_ms_.find(algorithm);
  return it != backend_allowance_by_algorithm_ms_.end() ? it->second : backend_allowance_ms_;
}

double DeadlinePolicy::RunDeadlineMs(const Problem& p, int runs,
                                     const std::string& algorithm) const {
  const double allowance = CompileAllowanceMs(algorithm);
  const double d =
      options_.floor_ms + allowance + options_.factor * ExpectedRunMs(p, runs, algorithm);
  return std::clamp(d, options_.floor_ms, std::max(options_.floor_ms, options_.cap_ms));
}

std::string DeadlinePolicy::Describe(bool deadlines) const {
  const auto gflops = [](double g) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.3g GFLOP/s", g);
    return std::string(buf);
  };
  std::string out;
  for (const auto& [family, values] : family_gflops_) {
    out += "  " + family + ": " + gflops(Median(values)) + ", median of " +
           std::to_string(values.size()) + " OK probe" + (values.size() == 1 ? "" : "s");
    if (values.size() < kMinFamily) out += " (too few; uses the estimate over every family)";
    out += "\n";
  }
  out += "  every family: " + gflops(throughput_gflops()) +
         (all_gflops_.empty() ? std::string(" (calibration or assumed; nothing observed yet)")
                              : ", median of the last " + std::to_string(all_gflops_.size())) +
         "\n";
  char tail[200];
  if (!deadlines) {
    std::snprintf(tail, sizeof tail, "  overhead %.3g ms per run\n", overhead_ms_);
    return out + tail;
  }
  const double allowance = CompileAllowanceMs();
  const double one_gflop_ms = options_.floor_ms + allowance +
                              options_.factor * (overhead_ms_ + 1e9 / (throughput_gflops() * 1e6));
  std::snprintf(tail, sizeof tail,
                "  overhead %.3g ms per run; run deadline = %.0f ms + %.0f ms first-call allowance"
                " + %.0fx the expected time (a 1 GFLOP run: %.0f ms)\n",
                overhead_ms_, options_.floor_ms, allowance, options_.factor,
                std::min(one_gflop_ms, std::max(options_.floor_ms, options_.cap_ms)));
  out += tail;
  if (options_.compile_allowance_ms < 0.0) {
    for (const auto& [algorithm, ms] : backend_allowance_by_algorithm_ms_) {
      std::snprintf(tail, sizeof tail, "  first-call allowance of '%s': %.0f ms\n",
                    algorithm.c_str(), ms);
      out += tail;
    }
  }
  return out;
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
