// os/clock.h — monotonic time: Duration, TimePoint, Deadline, and the Clock seam.
//
// Everything that decides "has this taken too long?" reads time through a Clock so that
// the watchdog and deadline policy can be unit-tested with a FakeClock (no sleeping, no
// flakiness) and integration-tested with the real one. The real clock is
// std::chrono::steady_clock (CLOCK_MONOTONIC): it never jumps when the wall clock is set.
//
// Code that blocks in the kernel (poll in pipe_io, waiting for a child in process) cannot
// be driven by a FakeClock; it measures against the real monotonic clock, and takes its
// Deadline as a TimePoint on that clock.
//
// Thread-safety: RealClock() is safe from any thread. FakeClock is safe from any thread
// (its time is atomic). Deadline is a value.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>

namespace convguard::os {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;
static_assert(std::is_same_v<TimePoint::duration, Duration>,
              "steady_clock is expected to count nanoseconds");

// "1500 ms", "0.25 ms", "never" (for Duration::max()): for messages.
std::string FormatDuration(Duration d);

// The time seam. Subclasses must make Now() monotonic (never decreasing).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  // Returns after at least `d` has passed on this clock. Non-positive `d` returns at once.
  virtual void SleepFor(Duration d) = 0;
};

// The process-wide monotonic clock. Never destroyed; safe to use from any thread and from
// static destructors.
Clock& RealClock();

// A clock that moves only when told. SleepFor(d) advances the time by d at once and
// returns (a test that sleeps is a test that waits for nothing), and counts the sleep.
// Starts at TimePoint() + `start` so that "now minus something" stays representable.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(Duration start = std::chrono::hours(1)) : now_ns_(start.count()) {}

  TimePoint Now() const override { return TimePoint(Duration(now_ns_.load())); }
  void SleepFor(Duration d) override;

  // Moves the time forward by `d` (non-positive `d` is ignored: time never goes back).
  void Advance(Duration d);
  // Number of SleepFor calls so far, and their total (positive) duration.
  int64_t sleep_calls() const { return sleep_calls_.load(); }
  Duration total_slept() const { return Duration(slept_ns_.load()); }

 private:
  std::atomic<int64_t> now_ns_;
  std::atomic<int64_t> sleep_calls_{0};
  std::atomic<int64_t> slept_ns_{0};
};

// A point in time by which something must finish, or "never". Arithmetic saturates: a
// Deadline::After(Duration::max()) is Never(), not an overflowed point in the past.
class Deadline {
 public:
  static Deadline Never() { return Deadline(); }
  static Deadline At(TimePoint when) { return Deadline(when); }
  // `d` from clock.Now(); non-positive `d` gives a deadline that has already passed.
  static Deadline After(Duration d, const Clock& clock = RealClock());

  bool is_never() const { return never_; }
  // REQUIRES: !is_never().
  TimePoint when() const { return when_; }

  // Time left at `now`: zero once passed, Duration::max() for Never().
  Duration RemainingAt(TimePoint now) const;
  bool ExpiredAt(TimePoint now) const { return !never_ && now >= when_; }
  Duration Remaining(const Clock& clock = RealClock()) const { return RemainingAt(clock.Now()); }
  bool Expired(const Clock& clock = RealClock()) const { return ExpiredAt(clock.Now()); }

 private:
  Deadline() = default;
  explicit Deadline(TimePoint when) : never_(false), when_(when) {}

  bool never_ = true;
  TimePoint when_{};
};

}  // namespace convguard::os
