#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stddef.h>
#include "allocator_stats.h"

// Linked statically, jemalloc's mallctl is not in the dynamic symbol table: a weak reference finds it.
extern int mallctl(const char *, void *, size_t *, void *, size_t) __attribute__((weak));
typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static mallctl_fn find_mallctl(void) {
    return mallctl ? mallctl : (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
}

const char *servers_allocator_name(void) {
    return find_mallctl() ? "jemalloc" : "glibc";
}

uint64_t servers_allocator_bytes_in_use(void) {
    mallctl_fn ctl = find_mallctl();
    if (ctl) {
        ctl("thread.tcache.flush", NULL, NULL, NULL, 0);
        uint64_t epoch = 1;
        size_t size = sizeof(epoch);
        ctl("epoch", &epoch, &size, &epoch, size);
        size_t allocated = 0, cached = 0;
        size = sizeof(allocated);
        if (ctl("stats.allocated", &allocated, &size, NULL, 0) != 0) return 0;
        // What the event loops' thread caches hold is free to the program (arena 4096: all arenas).
        size = sizeof(cached);
        if (ctl("stats.arenas.4096.tcache_bytes", &cached, &size, NULL, 0) != 0) cached = 0;
        return allocated - cached;
    }
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}
