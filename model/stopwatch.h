// Wall time of a stage, for timings that are logged or written next to results
// (never for deciding what to compute). Uses the steady clock, so a change of
// the system time does not bend the numbers. Not thread-safe: one owner.
#pragma once

#include <chrono>

namespace hilum {

class Stopwatch {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts running at construction.
  Stopwatch() : start_(Clock::now()) {}

  // Time since construction or the last restart()/lap().
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  double milliseconds() const { return seconds() * 1e3; }

  void restart() { start_ = Clock::now(); }

  // seconds(), then restart(): the time of one stage of several in a row.
  double lap() {
    const Clock::time_point now = Clock::now();
    const double s = std::chrono::duration<double>(now - start_).count();
    start_ = now;
    return s;
  }

 private:
  Clock::time_point start_;
};

}  // namespace hilum
