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
// problem when the pool starts, and is then learned from the times of OK probes, per
// problem family (direction, data type, layout, algorithm): the MEDIAN of the family's
// last 64 observations, or of every family's when the family has fewer than 5. A median
// moves only when half the recent problems are slower, so a handful of slow problems
// (whatever the cause: a sleeping kernel, a busy machine) does not stretch every later
// deadline; SLOW verdicts are evidence about one problem and are not observed at all.
// Room for problems that run below the typical rate comes from the factor (10x) and the
// floor, and a first miss is confirmed in a fresh worker before anything is called a
// hang. The overhead is the smallest per-run time seen. Prep (allocation and exact
// filling) and check (float64 reference) are convguard's own work and get deadlines from
// their own measured rates, so a large problem's check is never mistaken for a hang.
//
// Thread-safety: none; owned by the engine's thread.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>

#include "convguard/probe.h"
#include "convguard/problem.h"

namespace convguard::probe {

// The calibration problem (the engine's known-good probe): small enough for any backend,
// large enough to time.
Problem CalibrationProblem();

class DeadlinePolicy {
 public:
  explicit DeadlinePolicy(const DeadlineOptions& options);

  // Sets the backend's declared compile allowance (used unless the options override),
  // and the algorithms that declare another one.
  void SetBackendCompileAllowance(double ms, std::map<std::string, double> by_algorithm = {}) {
    backend_allowance_ms_ = ms;
    backend_allowance_by_algorithm_ms_ = std::move(by_algorithm);
  }
  // The first-call allowance a run of `algorithm` gets.
  double CompileAllowanceMs(const std::string& algorithm = "") const;
  // Records a calibration: `flops` per run took `ms_per_run`.
  void Calibrate(int64_t flops, double ms_per_run);
  // Learns from an OK probe of `p` with `algorithm` ("" or "default": the backend's
  // choice) whose runs took `median_ms_per_run` each.
  void Observe(const Problem& p, const std::string& algorithm, double median_ms_per_run);

  // The throughput estimate for a problem's family in GFLOP/s; with no problem, the
  // estimate over every family. The per-run overhead in ms.
  double throughput_gflops(const Problem& p, const std::string& algorithm = "") const;
  double throughput_gflops() const;
  double overhead_ms() const { return overhead_ms_; }

  double ExpectedRunMs(const Problem& p, int runs, const std::string& algorithm = "") const;
  double RunDeadlineMs(const Problem& p, int runs, const std::string& algorithm = "") const;
  double ConfirmDeadlineMs(double first_run_deadline_ms) const;
  // Allocation and exact filling of every tensor.
  double PrepDeadlineMs(const Problem& p) const;
  // The float64 reference check of the result.
  double CheckDeadlineMs(const Problem& p, CheckMode check, int64_t sample_points) const;
  // Worker start-up until hello.
  double StartupDeadlineMs() const { return options_.startup_ms; }

  const DeadlineOptions& options() const { return options_; }

  // The learned model for people (--verbose, db stacks): one line per family with its
  // estimate and how many observations it rests on, the pooled estimate, the overhead,
  // and (with `deadlines`) the first deadline of a 1 GFLOP problem.
  std::string Describe(bool deadlines = true) const;

  static constexpr size_t kWindow = 64;    // observations kept per family
  static constexpr size_t kMinFamily = 5;  // fewer: the family uses the pooled estimate

 private:
  static std::string FamilyOf(const Problem& p, const std::string& algorithm);
  static double Median(const std::deque<double>& values);

  DeadlineOptions options_;
  double backend_allowance_ms_ = 0.0;
  std::map<std::string, double> backend_allowance_by_algorithm_ms_;
  double calibrated_gflops_;  // before any observation: calibration, else assumed
  double overhead_ms_ = 0.0;
  std::map<std::string, std::deque<double>> family_gflops_;  // each the last kWindow
  std::deque<double> all_gflops_;                            // the last kWindow of any family
};

}  // namespace convguard::probe
