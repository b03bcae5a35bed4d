// probe/deadline_policy.h — how long each stage of a probe may take on a stack.
//
// A fixed timeout wastes its whole length on every hang and still misjudges slow
// problems and first-call compilation. The policy instead predicts what a problem
// should cost on this stack and allows a generous multiple of that:
//
//   expected run  = runs * (overhead + flops / throughput)
//   run deadline  = clamp(floor + compile allowance + factor * expected run, floor, cap)
//   confirmation  = clamp(max(confirm_floor, confirm_factor * run deadline), -, cap)
//
// Throughput starts at DeadlineOptions::assumed_gflops, is calibrated by one known
// problem when the pool starts, and is then learned from observed times: the estimate is
// a low percentile of recent observations, so a deadline errs on the long side. The
// overhead is the smallest per-run time seen. Prep (allocation and exact filling) and
// check (float64 reference) are convguard's own work and get deadlines from their own
// measured rates, so a large problem's check is never mistaken for a hang.
//
// Thread-safety: none; owned by the engine's thread.
#pragma once

#include <cstdint>
#include <deque>

#include "convguard/probe.h"
#include "convguard/problem.h"

namespace convguard::probe {

class DeadlinePolicy {
 public:
  explicit DeadlinePolicy(const DeadlineOptions& options);

  // Sets the backend's declared compile allowance (used unless the options override).
  void SetBackendCompileAllowance(double ms) { backend_allowance_ms_ = ms; }
  // Records a calibration: `flops` per run took `ms_per_run`.
  void Calibrate(int64_t flops, double ms_per_run);
  // Learns from a finished probe whose runs were not disturbed by a pending hang.
  void Observe(int64_t flops, double median_ms_per_run);

  // Current throughput estimate in GFLOP/s, and the per-run overhead in ms.
  double throughput_gflops() const { return throughput_gflops_; }
  double overhead_ms() const { return overhead_ms_; }

  double ExpectedRunMs(const Problem& p, int runs) const;
  double RunDeadlineMs(const Problem& p, int runs) const;
  double ConfirmDeadlineMs(double first_run_deadline_ms) const;
  // Allocation and exact filling of every tensor.
  double PrepDeadlineMs(const Problem& p) const;
  // The float64 reference check of the result.
  double CheckDeadlineMs(const Problem& p, CheckMode check, int64_t sample_points) const;
  // Worker start-up until hello.
  double StartupDeadlineMs() const { return options_.startup_ms; }

  const DeadlineOptions& options() const { return options_; }

 private:
  void Recompute();

  DeadlineOptions options_;
  double backend_allowance_ms_ = 0.0;
  double throughput_gflops_;
  double overhead_ms_ = 0.0;
  bool calibrated_ = false;
  std::deque<double> recent_gflops_;  // the last kWindow observations
  static constexpr size_t kWindow = 64;
};

}  // namespace convguard::probe
