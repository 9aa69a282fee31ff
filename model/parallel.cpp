#include "model/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace hilum {
namespace {

thread_local bool t_in_parallel = false;

int default_threads() {
  if (const char* env = std::getenv("HILUM_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

class Pool {
 public:
  explicit Pool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int workers() const { return static_cast<int>(threads_.size()); }

  // Runs task(i) for i in [0, count) on the workers and the caller. Returns when
  // every task has run and no worker is still inside this run, so the next run
  // never meets a straggler from the last one.
  void run(int count, const std::function<void(int)>& task) {
    std::lock_guard<std::mutex> run_lock(run_mu_);  // one parallel region at a time
    {
      std::lock_guard<std::mutex> lock(mu_);
      task_ = &task;
      count_ = count;
      next_.store(0);
      ++generation_;
    }
    // Wake only as many workers as there are tasks beyond the caller's: a
    // small region (a tiny model's decode step) then costs a few wake-ups, not
    // one per core. A worker that wakes without a task left just waits again.
    if (count - 1 >= static_cast<int>(threads_.size())) {
      cv_.notify_all();
    } else {
      for (int i = 0; i < count - 1; ++i) cv_.notify_one();
    }
    work(task, count);
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return active_ == 0; });
    task_ = nullptr;
  }

 private:
  void work(const std::function<void(int)>& task, int count) {
    bool prev = t_in_parallel;
    t_in_parallel = true;
    for (int i = next_.fetch_add(1); i < count; i = next_.fetch_add(1)) task(i);
    t_in_parallel = prev;
  }
  void loop() {
    uint64_t seen = 0;
    while (true) {
      const std::function<void(int)>* task;
      int count;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || (generation_ != seen && task_ != nullptr); });
        if (stop_) return;
        seen = generation_;
        task = task_;
        count = count_;
        ++active_;
      }
      work(*task, count);
      std::lock_guard<std::mutex> lock(mu_);
      if (--active_ == 0) done_cv_.notify_all();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_, run_mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* task_ = nullptr;  // guarded by mu_
  int count_ = 0;                                     // guarded by mu_
  int active_ = 0;                                    // workers inside work(); guarded by mu_
  uint64_t generation_ = 0;                           // guarded by mu_
  bool stop_ = false;                                 // guarded by mu_
  std::atomic<int> next_{0};
};

std::mutex g_pool_mu;
std::unique_ptr<Pool> g_pool;
std::atomic<int> g_threads{0};

Pool& pool() {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  int want = num_threads() - 1;
  if (!g_pool || g_pool->workers() != want) {
    g_pool.reset();
    g_pool = std::make_unique<Pool>(want);
  }
  return *g_pool;
}

}  // namespace

int num_threads() {
  int n = g_threads.load();
  return n > 0 ? n : default_threads();
}

void set_num_threads(int n) { g_threads.store(n > 0 ? n : 0); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int threads = num_threads();
  int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, int64_t{threads} * 4);
  if (chunks <= 1 || threads <= 1 || t_in_parallel) {
    fn(0, n);
    return;
  }
  const int64_t per = (n + chunks - 1) / chunks;
  std::function<void(int)> task = [&](int c) {
    int64_t b = c * per;
    int64_t e = std::min(n, b + per);
    if (b < e) fn(b, e);
  };
  pool().run(static_cast<int>(chunks), task);
}

}  // namespace hilum
