// The watchdog's rules on a fake clock: no processes, no sleeping.
#include "probe/watchdog.h"

#include <gtest/gtest.h>

#include <chrono>

namespace convguard::probe {
namespace {

using std::chrono::milliseconds;
using worker::ProbeStage;

TEST(Watchdog, AFlightIsOverdueExactlyAtItsDeadline) {
  os::FakeClock clock;
  Watchdog w(clock);
  w.Launch(3, 100.0);
  EXPECT_TRUE(w.Flying(3));
  EXPECT_EQ(w.Of(3).stage, ProbeStage::kPrep);
  clock.Advance(milliseconds(99));
  EXPECT_TRUE(w.Overdue().empty());
  clock.Advance(milliseconds(1));
  EXPECT_EQ(w.Overdue(), std::vector<size_t>{3});
  EXPECT_DOUBLE_EQ(w.ElapsedMs(3), 100.0);
}

TEST(Watchdog, AnExtendedStageKeepsItsStartAndGetsTheNewDeadline) {
  os::FakeClock clock;
  Watchdog w(clock);
  w.Launch(0, 50.0);
  clock.Advance(milliseconds(10));
  w.EnterStage(0, ProbeStage::kRun, 100.0);
  clock.Advance(milliseconds(100));
  EXPECT_EQ(w.Overdue(), std::vector<size_t>{0});
  w.ExtendStage(0, 3000.0);
  EXPECT_TRUE(w.Overdue().empty());
  EXPECT_EQ(w.Of(0).stage, ProbeStage::kRun);
  EXPECT_DOUBLE_EQ(w.StageElapsedMs(0), 100.0);  // the stage did not restart
  clock.Advance(milliseconds(2899));
  EXPECT_TRUE(w.Overdue().empty());
  clock.Advance(milliseconds(1));  // 3000 ms after the run stage began
  EXPECT_EQ(w.Overdue(), std::vector<size_t>{0});
  EXPECT_DOUBLE_EQ(w.ElapsedMs(0), 3010.0);
}

TEST(Watchdog, EachStageGetsItsOwnDeadlineFromWhenItBegins) {
  os::FakeClock clock;
  Watchdog w(clock);
  w.Launch(0, 50.0);
  clock.Advance(milliseconds(40));  // prep took 40 of its 50 ms
  w.EnterStage(0, ProbeStage::kRun, 1000.0);
  EXPECT_EQ(w.Of(0).stage, ProbeStage::kRun);
  EXPECT_DOUBLE_EQ(w.Of(0).stage_deadline_ms, 1000.0);
  clock.Advance(milliseconds(999));
  EXPECT_TRUE(w.Overdue().empty()) << "the run stage's deadline counts from the run stage";
  EXPECT_DOUBLE_EQ(w.StageElapsedMs(0), 999.0);
  EXPECT_DOUBLE_EQ(w.ElapsedMs(0), 1039.0);
  w.EnterStage(0, ProbeStage::kCheck, 10.0);
  clock.Advance(milliseconds(10));
  EXPECT_EQ(w.Overdue(), std::vector<size_t>{0});
  EXPECT_EQ(w.Of(0).stage, ProbeStage::kCheck);
}

TEST(Watchdog, TheNearestDeadlineWakesTheLoop) {
  os::FakeClock clock;
  Watchdog w(clock);
  EXPECT_FALSE(w.NextDeadline().has_value());
  w.Launch(0, 500.0);
  clock.Advance(milliseconds(100));
  w.Launch(1, 300.0);  // due 400 ms after the start, before slot 0's 500
  const os::TimePoint start = clock.Now() - milliseconds(100);
  ASSERT_TRUE(w.NextDeadline().has_value());
  EXPECT_EQ(*w.NextDeadline(), start + milliseconds(400));
  w.Land(1);
  EXPECT_EQ(*w.NextDeadline(), start + milliseconds(500));
  EXPECT_EQ(w.flying(), 1u);
  clock.Advance(milliseconds(400));
  EXPECT_EQ(w.Overdue(), std::vector<size_t>{0});
  w.Land(0);
  EXPECT_FALSE(w.NextDeadline().has_value());
  EXPECT_TRUE(w.Overdue().empty());
  w.Land(0);  // landing twice is harmless
  EXPECT_EQ(w.flying(), 0u);
}

TEST(Watchdog, SeveralOverdueFlightsComeInSlotOrder) {
  os::FakeClock clock;
  Watchdog w(clock);
  w.Launch(7, 10.0);
  w.Launch(2, 20.0);
  w.Launch(5, 1000.0);
  clock.Advance(milliseconds(20));
  EXPECT_EQ(w.Overdue(), (std::vector<size_t>{2, 7}));
}

TEST(Watchdog, OverdueAtJudgesAsOfWhenThePipesWereLookedAt) {
  os::FakeClock clock;
  Watchdog w(clock);
  w.Launch(0, 100.0);
  w.Launch(1, 300.0);
  const os::TimePoint looked = clock.Now() + milliseconds(150);
  clock.Advance(milliseconds(5000));  // the engine was busy elsewhere (a store waiting)
  EXPECT_EQ(w.Overdue(), (std::vector<size_t>{0, 1}));
  EXPECT_EQ(w.OverdueAt(looked), std::vector<size_t>{0});
  EXPECT_TRUE(w.OverdueAt(looked - milliseconds(51)).empty());
}

}  // namespace
}  // namespace convguard::probe
