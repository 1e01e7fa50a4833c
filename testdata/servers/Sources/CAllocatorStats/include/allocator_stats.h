// The allocator's own in-use figure, asked from inside the server (the tests compare swref's
// profile total with it). Same pattern as testdata/allocators/allocator_stats.h.
#ifndef SWREF_SERVERS_ALLOCATOR_STATS_H
#define SWREF_SERVERS_ALLOCATOR_STATS_H
#include <stdint.h>

/// "jemalloc" or "glibc": which allocator serves malloc in this process.
const char *servers_allocator_name(void);
/// Bytes in use as the allocator counts them: glibc mallinfo2() uordblks + hblkhd; jemalloc
/// stats.allocated after flushing the calling thread's tcache and advancing the stats epoch.
uint64_t servers_allocator_bytes_in_use(void);
#endif
