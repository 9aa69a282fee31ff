// Process-wide memory allocator settings for the programs (hilum, the
// workstation). Call once at the start of main().
#pragma once

namespace hilum {

// A study's pipeline allocates and frees large buffers many times (the
// volume, each scale's grid and its smoothed copy, ITK's intermediate images:
// 40-200 MB each). glibc serves such blocks with mmap and unmaps them at free,
// so every reuse faults its pages in again: about a million minor faults per
// 300-slice study, which on a many-core host serialise on the kernel's
// memory-map lock. Served from the heap and kept after free, they are reused
// instead (the process keeps its peak heap until it exits). No-op outside
// glibc, or with HILUM_KEEP_LARGE_BUFFERS=0.
void keep_large_buffers();

}  // namespace hilum
