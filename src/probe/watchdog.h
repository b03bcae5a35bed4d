// probe/watchdog.h — the flights of probes in progress and their deadlines, on a clock
// that is injected.
//
// A flight is one probe in one worker, from the request until its reply, its death or
// its deadline. Each flight is in one stage at a time (prep, run, check: see
// worker::ProbeStage) and each stage has its own deadline, measured from when the stage
// began. The watchdog only keeps time: it says which flights are overdue and when the
// next deadline falls; the engine decides what an overdue flight means (kill the
// worker, confirm in a fresh one) and waits on its workers' pipes until NextDeadline().
//
// Time comes from an os::Clock, so the rules (a stage's deadline restarts with the stage,
// the nearest deadline wakes the loop, a flight overdue exactly at its deadline) are
// unit-tested with os::FakeClock and no processes; the engine passes os::RealClock().
//
// Flights are keyed by the engine's slot index (one flight per worker slot at most).
//
// Ownership: the clock must outlive the watchdog. Thread-safety: none; the engine's
// thread owns it.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <vector>

#include "os/clock.h"
#include "worker/protocol.h"

namespace convguard::probe {

class Watchdog {
 public:
  struct Flight {
    worker::ProbeStage stage = worker::ProbeStage::kPrep;
    os::TimePoint started;         // when the request was sent
    os::TimePoint stage_started;   // when the current stage began
    os::TimePoint deadline;        // stage_started + stage_deadline_ms
    double stage_deadline_ms = 0;  // the current stage's allowance
  };

  explicit Watchdog(const os::Clock& clock) : clock_(clock) {}

  os::TimePoint Now() const { return clock_.Now(); }

  // Starts the flight of `slot` in the prep stage with `deadline_ms`.
  // REQUIRES: no flight on `slot`.
  void Launch(size_t slot, double deadline_ms);
  // The flight of `slot` enters `stage`, whose deadline counts from now.
  // REQUIRES: a flight on `slot`.
  void EnterStage(size_t slot, worker::ProbeStage stage, double deadline_ms);
  // Gives the current stage of `slot`'s flight a new deadline, still counted from when the
  // stage began (a confirmation wait in place: the engine waits longer for the same run).
  // REQUIRES: a flight on `slot`.
  void ExtendStage(size_t slot, double deadline_ms);
  // Ends the flight of `slot` (reply, death or kill); no-op when there is none.
  void Land(size_t slot);

  bool Flying(size_t slot) const { return flights_.count(slot) != 0; }
  // REQUIRES: Flying(slot).
  const Flight& Of(size_t slot) const { return flights_.at(slot); }
  // Milliseconds since the flight began, and since its current stage began.
  double ElapsedMs(size_t slot) const;
  double StageElapsedMs(size_t slot) const;
  size_t flying() const { return flights_.size(); }

  // The earliest deadline of any flight; none when nothing flies.
  std::optional<os::TimePoint> NextDeadline() const;
  // The slots whose current stage is overdue now (now >= deadline), in slot order.
  std::vector<size_t> Overdue() const;
  // The slots whose current stage was overdue at `at`, in slot order. The engine judges
  // at the time it last looked at its workers' pipes: a reply that came while it was busy
  // elsewhere (a store waiting for its server) is read before its flight is judged.
  std::vector<size_t> OverdueAt(os::TimePoint at) const;

 private:
  const os::Clock& clock_;
  std::map<size_t, Flight> flights_;
};

// Milliseconds from `a` to `b` (negative when b is earlier).
double MillisBetween(os::TimePoint a, os::TimePoint b);
// `t` plus `ms` milliseconds.
os::TimePoint PlusMillis(os::TimePoint t, double ms);

}  // namespace convguard::probe
