// A snapshot whose pages arrive when they are read: swref's copy of a frozen fork child is
// reserved address space registered with a userfaultfd (missing mode) of swref's own, and a
// thread fills each stretch from the child's /proc/PID/mem on the first touch. The analysis reads
// the copy as if it were whole; memory follows what it reads, not the heap's size. Stretches are
// given back oldest first past a resident limit — a stretch read again is filled again, with the
// same bytes, since the child never runs. Plain C, no allocation after creation: the thread must
// never itself fault on the memory it serves.
#define _GNU_SOURCE
#include "CSwrefSystem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096UL
#define RING 4096

struct swref_lazy_range {
  uint64_t local;
  uint64_t length;
  uint64_t remote;
};

struct swref_lazy {
  int uffd;
  int memfd;
  int stop[2];
  pthread_t thread;
  int running;
  size_t chunk;
  size_t limit;
  struct swref_lazy_range *ranges;
  size_t count;
  size_t capacity;
  unsigned char *staging;
  // Filled stretches, oldest first, for giving back past the limit.
  uint64_t ring_start[RING];
  uint64_t ring_length[RING];
  size_t ring_head, ring_count;
  uint64_t resident;
  // The stretches the last faults filled: a fault just past one of them is a sequential reader,
  // whose next stretch is filled before it asks.
  uint64_t recent[4];
  size_t recent_next;
  // Written by the thread, read by swref with relaxed atomics: figures, not synchronisation.
  uint64_t filled, faults, failed, dropped, peak;
  int lost;
};

static int find_range(const swref_lazy *lazy, uint64_t address) {
  size_t low = 0, high = lazy->count;
  while (low < high) {
    size_t mid = (low + high) / 2;
    const struct swref_lazy_range *r = &lazy->ranges[mid];
    if (address < r->local) high = mid;
    else if (address >= r->local + r->length) low = mid + 1;
    else return (int)mid;
  }
  return -1;
}

/// Reads the child's bytes for one stretch into the staging buffer; pages it refuses are zeros and
/// counted (a child that is gone refuses them all: the analysis then says its heap was not read).
static void read_child(swref_lazy *lazy, uint64_t remote, size_t length) {
  size_t done = 0;
  while (done < length) {
    ssize_t n = pread(lazy->memfd, lazy->staging + done, length - done, (off_t)(remote + done));
    if (n > 0) { done += (size_t)n; continue; }
    if (n < 0 && errno == EINTR) continue;
    // One page refused: zeros for it, then go on after it.
    size_t end = (done + PAGE) & ~(PAGE - 1);
    if (end > length) end = length;
    memset(lazy->staging + done, 0, end - done);
    __atomic_add_fetch(&lazy->failed, end - done, __ATOMIC_RELAXED);
    // ESRCH, or end of file: the child's memory is gone.
    if (n == 0 || errno == ESRCH) __atomic_store_n(&lazy->lost, 1, __ATOMIC_RELAXED);
    done = end;
  }
}

static void give_back_oldest(swref_lazy *lazy) {
  uint64_t start = lazy->ring_start[lazy->ring_head], length = lazy->ring_length[lazy->ring_head];
  lazy->ring_head = (lazy->ring_head + 1) % RING;
  lazy->ring_count--;
  // Pages a scan gave back already (or that moved to the page pool) are simply not there.
  madvise((void *)start, length, MADV_DONTNEED);
  lazy->resident = lazy->resident > length ? lazy->resident - length : 0;
  __atomic_add_fetch(&lazy->dropped, length, __ATOMIC_RELAXED);
}

/// Fills the stretch holding `address`, of range `r`; skips pages already there. Returns the
/// bytes placed.
static uint64_t fill(swref_lazy *lazy, const struct swref_lazy_range *r, uint64_t address) {
  uint64_t start = address & ~(uint64_t)(lazy->chunk - 1);
  if (start < r->local) start = r->local;
  uint64_t end = (address & ~(uint64_t)(lazy->chunk - 1)) + lazy->chunk;
  if (end > r->local + r->length) end = r->local + r->length;
  size_t length = (size_t)(end - start);
  read_child(lazy, r->remote + (start - r->local), length);
  uint64_t placed = 0, offset = 0;
  while (offset < length) {
    struct uffdio_copy copy = {.dst = start + offset, .src = (uint64_t)(uintptr_t)(lazy->staging + offset),
                               .len = length - offset, .mode = 0};
    int rc = ioctl(lazy->uffd, UFFDIO_COPY, &copy);
    if (rc == 0) { placed += length - offset; break; }
    if (copy.copy > 0) { placed += (uint64_t)copy.copy; offset += (uint64_t)copy.copy; continue; }
    if (errno == EAGAIN || errno == EINTR) continue;
    // EEXIST: that page is there already (filled before, or the scan's own): skip it.
    offset += PAGE;
  }
  if (placed > 0) {
    if (lazy->ring_count == RING) give_back_oldest(lazy);
    size_t slot = (lazy->ring_head + lazy->ring_count) % RING;
    lazy->ring_start[slot] = start;
    lazy->ring_length[slot] = length;
    lazy->ring_count++;
    lazy->resident += placed;
    __atomic_add_fetch(&lazy->filled, placed, __ATOMIC_RELAXED);
    if (lazy->resident > lazy->peak) __atomic_store_n(&lazy->peak, lazy->resident, __ATOMIC_RELAXED);
    while (lazy->resident > lazy->limit && lazy->ring_count > 1) give_back_oldest(lazy);
  }
  return placed;
}

static void serve_fault(swref_lazy *lazy, uint64_t address) {
  __atomic_add_fetch(&lazy->faults, 1, __ATOMIC_RELAXED);
  int index = find_range(lazy, address);
  if (index >= 0) {
    const struct swref_lazy_range *r = &lazy->ranges[index];
    uint64_t stretch = address & ~(uint64_t)(lazy->chunk - 1);
    int sequential = 0;
    for (int i = 0; i < 4; i++) sequential |= lazy->recent[i] + lazy->chunk == stretch;
    fill(lazy, r, address);
    lazy->recent[lazy->recent_next++ % 4] = stretch;
    // The faulting thread is awake now; while it reads this stretch, fill the next one.
    uint64_t next = stretch + lazy->chunk;
    if (sequential && next < r->local + r->length) {
      fill(lazy, r, next);
      lazy->recent[lazy->recent_next++ % 4] = next;
    }
  }
  // Wake whoever waits on this page whatever happened: a page another fault already filled, or
  // an address no range holds (cannot happen: only registered ranges fault here) must not hang.
  struct uffdio_range wake = {.start = address & ~(PAGE - 1), .len = PAGE};
  ioctl(lazy->uffd, UFFDIO_WAKE, &wake);
}

static void *serve(void *argument) {
  swref_lazy *lazy = argument;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  struct uffd_msg messages[32];
  for (;;) {
    struct pollfd fds[2] = {{.fd = lazy->uffd, .events = POLLIN}, {.fd = lazy->stop[0], .events = POLLIN}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) break;
    ssize_t n = read(lazy->uffd, messages, sizeof messages);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      break;
    }
    for (ssize_t i = 0; i < n / (ssize_t)sizeof(struct uffd_msg); i++) {
      if (messages[i].event == UFFD_EVENT_PAGEFAULT) serve_fault(lazy, messages[i].arg.pagefault.address);
    }
  }
  return NULL;
}

swref_lazy *swref_lazy_create(int memfd, size_t chunk, size_t limit) {
  swref_lazy *lazy = calloc(1, sizeof *lazy);
  if (!lazy) return NULL;
  lazy->memfd = memfd;
  lazy->chunk = chunk < PAGE ? PAGE : chunk;
  lazy->limit = limit < 4 * lazy->chunk ? 4 * lazy->chunk : limit;
  lazy->stop[0] = lazy->stop[1] = -1;
  lazy->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  int err = errno;
  if (lazy->uffd < 0) goto fail;
  struct uffdio_api api = {.api = UFFD_API, .features = 0};
  if (ioctl(lazy->uffd, UFFDIO_API, &api) != 0) { err = errno; goto fail; }
  if (pipe2(lazy->stop, O_CLOEXEC) != 0) { err = errno; goto fail; }
  lazy->staging = mmap(NULL, lazy->chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (lazy->staging == MAP_FAILED) { lazy->staging = NULL; err = errno; goto fail; }
  return lazy;
fail:
  swref_lazy_destroy(lazy);
  errno = err;
  return NULL;
}

int swref_lazy_add(swref_lazy *lazy, void *local, uint64_t length, uint64_t remote) {
  if (lazy->running || length == 0 || ((uintptr_t)local | length) & (PAGE - 1)) { errno = EINVAL; return -1; }
  if (lazy->count == lazy->capacity) {
    size_t capacity = lazy->capacity ? lazy->capacity * 2 : 64;
    struct swref_lazy_range *grown = realloc(lazy->ranges, capacity * sizeof *grown);
    if (!grown) return -1;
    lazy->ranges = grown;
    lazy->capacity = capacity;
  }
  struct uffdio_register reg = {.range = {.start = (uint64_t)(uintptr_t)local, .len = length},
                                .mode = UFFDIO_REGISTER_MODE_MISSING};
  if (ioctl(lazy->uffd, UFFDIO_REGISTER, &reg) != 0) return -1;
  // Kept sorted by local address for the fault's search.
  size_t at = lazy->count;
  while (at > 0 && lazy->ranges[at - 1].local > (uint64_t)(uintptr_t)local) {
    lazy->ranges[at] = lazy->ranges[at - 1];
    at--;
  }
  lazy->ranges[at] = (struct swref_lazy_range){(uint64_t)(uintptr_t)local, length, remote};
  lazy->count++;
  return 0;
}

int swref_lazy_start(swref_lazy *lazy) {
  int rc = pthread_create(&lazy->thread, NULL, serve, lazy);
  if (rc != 0) { errno = rc; return -1; }
  lazy->running = 1;
  return 0;
}

void swref_lazy_stats(const swref_lazy *lazy, struct swref_lazy_stats *out) {
  out->filled = __atomic_load_n(&lazy->filled, __ATOMIC_RELAXED);
  out->faults = __atomic_load_n(&lazy->faults, __ATOMIC_RELAXED);
  out->failed = __atomic_load_n(&lazy->failed, __ATOMIC_RELAXED);
  out->dropped = __atomic_load_n(&lazy->dropped, __ATOMIC_RELAXED);
  out->peak_resident = __atomic_load_n(&lazy->peak, __ATOMIC_RELAXED);
  out->lost = __atomic_load_n(&lazy->lost, __ATOMIC_RELAXED);
}

void swref_lazy_destroy(swref_lazy *lazy) {
  if (!lazy) return;
  if (lazy->running) {
    char byte = 1;
    while (write(lazy->stop[1], &byte, 1) < 0 && errno == EINTR) {}
    pthread_join(lazy->thread, NULL);
  }
  // Closing the descriptor unregisters every range: pages never filled read as zeros after.
  if (lazy->uffd >= 0) close(lazy->uffd);
  if (lazy->stop[0] >= 0) close(lazy->stop[0]);
  if (lazy->stop[1] >= 0) close(lazy->stop[1]);
  if (lazy->staging) munmap(lazy->staging, lazy->chunk);
  free(lazy->ranges);
  free(lazy);
}
