#include "model/allocator.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace hilum {
namespace {

#if defined(__GLIBC__)
TEST(Allocator, LargeBuffersComeFromTheHeapAndStayAfterFree) {
  keep_large_buffers();
  const size_t bytes = size_t{96} << 20;  // above glibc's largest mmap threshold (32 MB)
  const size_t mapped_before = mallinfo2().hblkhd;
  void* p = std::malloc(bytes);
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, bytes);
  EXPECT_EQ(mallinfo2().hblkhd, mapped_before) << "a 96 MB block was mapped, not taken from the heap";
  std::free(p);
  // The freed block stays in the heap (not trimmed back to the system) for the next study.
  EXPECT_GE(mallinfo2().fordblks, bytes);
}
#else
TEST(Allocator, SkippedOutsideGlibc) { GTEST_SKIP() << "only glibc's allocator is tuned"; }
#endif

}  // namespace
}  // namespace hilum
