// An allocator swref does not know, for the tests of its fallback: blocks are carved from one
// reserved mapping and never reused (free does nothing). Preload it: LD_PRELOAD=bump.so.
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define ARENA_SIZE (256UL << 20)
#define HEADER 16

static _Atomic(uintptr_t) next_free;
static uintptr_t arena_end;

static void *carve(size_t size, size_t alignment) {
    if (alignment < 16) alignment = 16;
    if (!atomic_load(&next_free)) {
        void *arena = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (arena == MAP_FAILED) return NULL;
        uintptr_t expected = 0;
        if (atomic_compare_exchange_strong(&next_free, &expected, (uintptr_t)arena)) arena_end = (uintptr_t)arena + ARENA_SIZE;
        else munmap(arena, ARENA_SIZE);
    }
    size = (size + 15) & ~(size_t)15;
    for (;;) {
        uintptr_t start = atomic_load(&next_free);
        uintptr_t user = (start + HEADER + alignment - 1) & ~(uintptr_t)(alignment - 1);
        uintptr_t end = user + size;
        if (end > arena_end && arena_end) { errno = ENOMEM; return NULL; }
        if (atomic_compare_exchange_weak(&next_free, &start, end)) {
            ((size_t *)user)[-1] = size;
            return (void *)user;
        }
    }
}

void *malloc(size_t size) { return carve(size, 16); }
void free(void *pointer) { (void)pointer; }
void *calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) { errno = ENOMEM; return NULL; }
    return carve(count * size, 16); // fresh anonymous memory is zero
}
size_t malloc_usable_size(void *pointer) { return pointer ? ((size_t *)pointer)[-1] : 0; }
void *realloc(void *pointer, size_t size) {
    void *moved = carve(size, 16);
    if (moved && pointer) {
        size_t old = malloc_usable_size(pointer);
        memcpy(moved, pointer, old < size ? old : size);
    }
    return moved;
}
void *memalign(size_t alignment, size_t size) { return carve(size, alignment); }
void *aligned_alloc(size_t alignment, size_t size) { return carve(size, alignment); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    void *pointer = carve(size, alignment);
    if (!pointer) return ENOMEM;
    *out = pointer;
    return 0;
}
