// The allocator's own in-use figure, asked from inside the program (the test compares swref's
// total with it). Each allocator is looked up at run time: linked, preloaded or linked in statically.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// Linked statically, jemalloc's mallctl is not in the dynamic symbol table: a weak reference finds it.
extern int mallctl(const char *, void *, size_t *, void *, size_t) __attribute__((weak));

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
static inline mallctl_fn swref_test_mallctl(void) {
    return mallctl ? mallctl : (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
}

/// Which allocator serves malloc in this process.
static inline const char *swref_test_allocator(void) {
    if (swref_test_mallctl()) return "jemalloc";
    if (dlsym(RTLD_DEFAULT, "MallocExtension_GetNumericProperty")) return "tcmalloc";
    if (dlsym(RTLD_DEFAULT, "mi_heap_visit_blocks")) return "mimalloc";
    return "glibc";
}

/// Empties the calling thread's cache of free blocks where the allocator has one that its
/// in-use figure counts (jemalloc's tcache).
static inline void swref_test_flush_thread_cache(void) {
    mallctl_fn ctl = swref_test_mallctl();
    if (ctl) ctl("thread.tcache.flush", NULL, NULL, NULL, 0);
}

typedef bool (*mi_visit_fn)(const void *heap, const void *area, void *block, size_t size, void *arg);
static bool swref_test_mi_sum(const void *heap, const void *area, void *block, size_t size, void *arg) {
    if (block) *(uint64_t *)arg += size;
    return true;
}

/// mimalloc: the bytes of the blocks in use in the calling thread's heap (it has no process-wide figure).
static inline uint64_t swref_test_mimalloc_thread_bytes(void) {
    void *(*get_default)(void) = (void *(*)(void))dlsym(RTLD_DEFAULT, "mi_heap_get_default");
    bool (*visit)(const void *, bool, mi_visit_fn, void *) =
        (bool (*)(const void *, bool, mi_visit_fn, void *))dlsym(RTLD_DEFAULT, "mi_heap_visit_blocks");
    uint64_t sum = 0;
    if (get_default && visit) visit(get_default(), true, swref_test_mi_sum, &sum);
    return sum;
}

/// The allocator's own figure for the bytes in use (for mimalloc: 0, the threads sum their heaps);
/// jemalloc's less what its thread caches hold (arena 4096 is MALLCTL_ARENAS_ALL).
static inline uint64_t swref_test_bytes_in_use(void) {
    mallctl_fn ctl = swref_test_mallctl();
    if (ctl) {
        uint64_t epoch = 1;
        size_t size = sizeof(epoch);
        ctl("epoch", &epoch, &size, &epoch, size);
        size_t allocated = 0, cached = 0;
        size = sizeof(allocated);
        if (ctl("stats.allocated", &allocated, &size, NULL, 0) != 0) return 0;
        // Blocks waiting in thread caches count as allocated there; for the program they are free.
        size = sizeof(cached);
        if (ctl("stats.arenas.4096.tcache_bytes", &cached, &size, NULL, 0) != 0) cached = 0;
        return allocated - cached;
    }
    int (*property)(const char *, size_t *) =
        (int (*)(const char *, size_t *))dlsym(RTLD_DEFAULT, "MallocExtension_GetNumericProperty");
    if (property) {
        size_t value = 0;
        return property("generic.current_allocated_bytes", &value) ? value : 0;
    }
    if (dlsym(RTLD_DEFAULT, "mi_heap_visit_blocks")) return 0;
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}
