#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "model/stopwatch.h"

namespace hilum {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Bounds only from the steady clock read around each call (no sleeps that a
// busy machine could stretch into a failure): a Stopwatch started after `before`
// and read before `after` shows at most after - before, at least the sleep.
TEST(Stopwatch, SecondsAndMillisecondsCountFromTheStart) {
  const Clock::time_point before = Clock::now();
  const Stopwatch clock;
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double s = clock.seconds();
  const double ms = clock.milliseconds();
  const Clock::time_point after = Clock::now();
  EXPECT_GE(s, 0.005);
  EXPECT_LE(s, seconds_between(before, after));
  EXPECT_GE(ms, 1e3 * s);
  EXPECT_LE(ms, 1e3 * seconds_between(before, after));
}

TEST(Stopwatch, LapReturnsTheStageAndStartsTheNext) {
  Stopwatch clock;
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const Clock::time_point before_lap = Clock::now();
  const double first = clock.lap();
  EXPECT_GE(first, 0.005);
  const double second = clock.seconds();
  EXPECT_LE(second, seconds_between(before_lap, Clock::now()));
}

TEST(Stopwatch, RestartStartsAgain) {
  Stopwatch clock;
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const Clock::time_point before_restart = Clock::now();
  clock.restart();
  const double s = clock.seconds();
  EXPECT_LE(s, seconds_between(before_restart, Clock::now()));
}

}  // namespace
}  // namespace hilum
