#include "model/allocator.h"

#include <cstdlib>  // defines __GLIBC__ on glibc

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "model/env.h"

namespace hilum {

void keep_large_buffers() {
  // HILUM_KEEP_LARGE_BUFFERS=0 keeps glibc's defaults (for side-by-side timing).
  if (!env_switch("HILUM_KEEP_LARGE_BUFFERS", true)) return;
#if defined(__GLIBC__)
  // No mmap for the main arena's large blocks (threads' arenas still map the
  // blocks they cannot hold), and no trimming of the heap's top after free.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
#endif
}

}  // namespace hilum
