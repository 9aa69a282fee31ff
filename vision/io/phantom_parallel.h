// A small parallel-for over independent items (slices, files) with progress
// and cancellation. Results never depend on which thread ran an item.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "model/progress.h"
#include "model/result.h"

namespace hilum::phantom {

// Runs fn(0..n-1) on up to hardware_concurrency threads (the calling thread
// included; only it reports progress and polls cancellation). `fn` returns
// Status; the first error (or an escaped exception, or cancellation) stops
// the remaining items and is returned.
inline Status parallel_for_status(int n, Progress& progress, std::string_view stage,
                                  const std::function<Status(int)>& fn) {
  std::atomic<int> next{0}, done{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::optional<Error> first_error;
  auto fail = [&](Error e) {
    std::lock_guard<std::mutex> lock(mu);
    if (!first_error) first_error = std::move(e);
    stop = true;
  };
  auto work = [&](bool reporter) {
    while (!stop) {
      const int i = next++;
      if (i >= n) break;
      try {
        Status s = fn(i);
        if (!s.ok()) fail(s.error());
      } catch (const std::exception& e) {
        fail(internal_error(std::string(stage) + ": " + e.what()));
      }
      ++done;
      if (reporter) {
        progress.report(static_cast<double>(done) / n, stage);
        if (progress.cancelled()) fail(cancelled_error());
      }
    }
  };
  const int threads = std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, 16);
  std::vector<std::thread> pool;
  for (int t = 1; t < std::min(threads, n); ++t) pool.emplace_back(work, false);
  work(true);
  for (auto& t : pool) t.join();
  if (first_error) return *first_error;
  if (progress.cancelled()) return cancelled_error();
  progress.report(1, stage);
  return Status::Ok();
}

inline Status parallel_for(int n, Progress& progress, std::string_view stage, const std::function<void(int)>& fn) {
  return parallel_for_status(n, progress, stage, [&](int i) {
    fn(i);
    return Status::Ok();
  });
}

}  // namespace hilum::phantom
