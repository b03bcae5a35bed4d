#include "os/clock.h"

#include <cstdio>
#include <thread>

namespace convguard::os {
namespace {

class SteadyClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  void SleepFor(Duration d) override {
    if (d <= Duration::zero()) return;
    // sleep_for may return early on some platforms; loop until the clock agrees.
    const TimePoint until = Now() + d;
    for (TimePoint now = Now(); now < until; now = Now()) std::this_thread::sleep_for(until - now);
  }
};

}  // namespace

std::string FormatDuration(Duration d) {
  if (d == Duration::max()) return "never";
  const double ms = static_cast<double>(d.count()) / 1e6;
  char buf[64];
  if (d.count() % 1000000 == 0) {
    std::snprintf(buf, sizeof buf, "%lld ms", static_cast<long long>(d.count() / 1000000));
  } else if (ms < 1.0) {
    std::snprintf(buf, sizeof buf, "%.3g ms", ms);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f ms", ms);
  }
  return buf;
}

Clock& RealClock() {
  // Leaked on purpose: usable from static destructors of other translation units.
  static Clock* const clock = new SteadyClock();
  return *clock;
}

void FakeClock::SleepFor(Duration d) {
  sleep_calls_.fetch_add(1);
  if (d <= Duration::zero()) return;
  slept_ns_.fetch_add(d.count());
  now_ns_.fetch_add(d.count());
}

void FakeClock::Advance(Duration d) {
  if (d > Duration::zero()) now_ns_.fetch_add(d.count());
}

Deadline Deadline::After(Duration d, const Clock& clock) {
  const TimePoint now = clock.Now();
  if (d <= Duration::zero()) return At(now);
  if (d >= TimePoint::max() - now) return Never();
  return At(now + d);
}

Duration Deadline::RemainingAt(TimePoint now) const {
  if (never_) return Duration::max();
  if (now >= when_) return Duration::zero();
  return when_ - now;
}

}  // namespace convguard::os
