#include "probe/watchdog.h"

#include <chrono>

namespace convguard::probe {

double MillisBetween(os::TimePoint a, os::TimePoint b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

os::TimePoint PlusMillis(os::TimePoint t, double ms) {
  return t +
         std::chrono::duration_cast<os::Duration>(std::chrono::duration<double, std::milli>(ms));
}

void Watchdog::Launch(size_t slot, double deadline_ms) {
  const os::TimePoint now = clock_.Now();
  Flight f;
  f.stage = worker::ProbeStage::kPrep;
  f.started = f.stage_started = now;
  f.stage_deadline_ms = deadline_ms;
  f.deadline = PlusMillis(now, deadline_ms);
  flights_[slot] = f;
}

void Watchdog::EnterStage(size_t slot, worker::ProbeStage stage, double deadline_ms) {
  Flight& f = flights_.at(slot);
  const os::TimePoint now = clock_.Now();
  f.stage = stage;
  f.stage_started = now;
  f.stage_deadline_ms = deadline_ms;
  f.deadline = PlusMillis(now, deadline_ms);
}

void Watchdog::ExtendStage(size_t slot, double deadline_ms) {
  Flight& f = flights_.at(slot);
  f.stage_deadline_ms = deadline_ms;
  f.deadline = PlusMillis(f.stage_started, deadline_ms);
}

void Watchdog::Land(size_t slot) { flights_.erase(slot); }

double Watchdog::ElapsedMs(size_t slot) const {
  return MillisBetween(Of(slot).started, clock_.Now());
}

double Watchdog::StageElapsedMs(size_t slot) const {
  return MillisBetween(Of(slot).stage_started, clock_.Now());
}

std::optional<os::TimePoint> Watchdog::NextDeadline() const {
  std::optional<os::TimePoint> next;
  for (const auto& [slot, f] : flights_) {
    if (!next || f.deadline < *next) next = f.deadline;
  }
  return next;
}

std::vector<size_t> Watchdog::Overdue() const { return OverdueAt(clock_.Now()); }

std::vector<size_t> Watchdog::OverdueAt(os::TimePoint at) const {
  std::vector<size_t> out;
  for (const auto& [slot, f] : flights_) {
    if (at >= f.deadline) out.push_back(slot);
  }
  return out;
}

}  // namespace convguard::probe
