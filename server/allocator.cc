#include "server/allocator.h"

#include <cstddef>

#ifdef RAFTSQL_TCMALLOC
#include <gperftools/malloc_extension.h>
#else
#include <malloc.h>
#endif

namespace raftsql::server {
namespace {

#ifdef RAFTSQL_TCMALLOC
// What the threads' caches hold at most together (tcmalloc's default is
// 32 MiB: a server's gRPC, Raft, apply and image threads are about 20).
constexpr size_t kThreadCacheBytes = size_t{16} << 20;
#else
// Buffers of a MiB or so (snapshot chunks on both ends, batches of entries,
// pages of results) come and go all the time; by default glibc maps each
// one afresh or returns the top of its heap at once, and the next buffer
// then faults in every page again. That faulting was most of a joining
// follower's CPU. What the heap keeps is bounded by the trim threshold per
// arena, and the arenas (glibc makes up to eight per core, one for each
// busy gRPC thread) to two.
constexpr int kMallocMmapThresholdBytes = 4 << 20;
constexpr int kMallocTrimThresholdBytes = 32 << 20;
constexpr int kMallocArenas = 2;
#endif

}  // namespace

void SetUpAllocator() {
#ifdef RAFTSQL_TCMALLOC
  MallocExtension* m = MallocExtension::instance();
  m->SetNumericProperty("tcmalloc.max_total_thread_cache_bytes",
                        kThreadCacheBytes);
  // Freed spans stay in the page heap for the next buffer: MiB-sized
  // buffers (snapshot chunks, batches of entries) come and go all the
  // time, and on this VM a page returned to the system costs a host fault
  // when it is touched again. Returned at once (aggressive decommit), a
  // 1.27 GB join took 13.0 s and 20.9 s of CPU instead of 4-5 s and 4-6,
  // and the Raft loops' longest iteration during growth was 360-420 ms
  // instead of 80-160. What the heap holds is bounded by what was ever
  // live at once (the peak RSS).
  m->SetMemoryReleaseRate(0);
#else
  mallopt(M_MMAP_THRESHOLD, kMallocMmapThresholdBytes);
  mallopt(M_TRIM_THRESHOLD, kMallocTrimThresholdBytes);
  mallopt(M_ARENA_MAX, kMallocArenas);
#endif
}

const char* AllocatorName() {
#ifdef RAFTSQL_TCMALLOC
  return "tcmalloc";
#else
  return "glibc";
#endif
}

}  // namespace raftsql::server
