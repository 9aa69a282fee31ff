// A process-wide pool of worker threads for CPU kernels.
//
// parallel_for(n, grain, fn) splits [0, n) into chunks of at least `grain`
// items and calls fn(begin, end) on the pool and the calling thread; it returns
// when all chunks are done. Nested calls run serially in the caller. The pool
// size is std::thread::hardware_concurrency(), or HILUM_NUM_THREADS when set.
#pragma once

#include <cstdint>
#include <functional>

namespace hilum {

int num_threads();
void set_num_threads(int n);  // takes effect for later calls; n <= 0 restores the default

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace hilum
