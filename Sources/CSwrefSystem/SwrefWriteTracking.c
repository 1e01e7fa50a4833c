// Which pages of a running target were written: userfaultfd write protection in asynchronous
// mode (the kernel clears the protection itself on the first write, no handler, no wait) read
// and re-armed through the PAGEMAP_SCAN ioctl of /proc/PID/pagemap (Linux 6.7). The system
// headers here predate both, so the ABI is declared below as include/uapi/linux/fs.h and
// userfaultfd.h define it.
#define _GNU_SOURCE
#include "CSwrefSystem.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#define SWREF_UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#define SWREF_UFFD_FEATURE_WP_ASYNC (1 << 15)

#define SWREF_PAGE_IS_WRITTEN (1 << 1)
#define SWREF_PAGE_IS_PRESENT (1 << 3)
#define SWREF_PAGE_IS_SWAPPED (1 << 4)
#define SWREF_PM_SCAN_WP_MATCHING (1 << 0)
#define SWREF_PM_SCAN_CHECK_WPASYNC (1 << 1)

struct swref_pm_scan_arg {
  uint64_t size;
  uint64_t flags;
  uint64_t start;
  uint64_t end;
  uint64_t walk_end;
  uint64_t vec;
  uint64_t vec_len;
  uint64_t max_pages;
  uint64_t category_inverted;
  uint64_t category_mask;
  uint64_t category_anyof_mask;
  uint64_t return_mask;
};
#define SWREF_PAGEMAP_SCAN _IOWR('f', 16, struct swref_pm_scan_arg)

int swref_take_descriptor(pid_t pid, int fd) {
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) return -1;
  int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
  int err = errno;
  close(pidfd);
  errno = err;
  return copy;
}

int swref_uffd_enable_write_tracking(int uffd) {
  // WP_UNPOPULATED too: without it anonymous mappings are not eligible for PAGEMAP_SCAN's
  // write protection (the scan refuses them with EPERM).
  struct uffdio_api api = {.api = UFFD_API,
                           .features = SWREF_UFFD_FEATURE_WP_ASYNC | SWREF_UFFD_FEATURE_WP_UNPOPULATED};
  return ioctl(uffd, UFFDIO_API, &api) == 0 ? 0 : -errno;
}

int swref_uffd_register(int uffd, uint64_t start, uint64_t length) {
  struct uffdio_register reg = {.range = {.start = start, .len = length}, .mode = UFFDIO_REGISTER_MODE_WP};
  return ioctl(uffd, UFFDIO_REGISTER, &reg) == 0 ? 0 : -errno;
}

int swref_uffd_unregister(int uffd, uint64_t start, uint64_t length) {
  struct uffdio_range range = {.start = start, .len = length};
  return ioctl(uffd, UFFDIO_UNREGISTER, &range) == 0 ? 0 : -errno;
}

long swref_pagemap_written(int pagemap_fd, uint64_t start, uint64_t end, int protect,
                           struct swref_page_range *ranges, size_t capacity, uint64_t *walk_end) {
  struct swref_pm_scan_arg arg = {
      .size = sizeof arg,
      .flags = SWREF_PM_SCAN_CHECK_WPASYNC | (protect ? SWREF_PM_SCAN_WP_MATCHING : 0),
      .start = start,
      .end = end,
      .vec = (uint64_t)(uintptr_t)ranges,
      .vec_len = capacity,
      .category_mask = SWREF_PAGE_IS_WRITTEN,
      .return_mask = SWREF_PAGE_IS_WRITTEN,
  };
  long n = ioctl(pagemap_fd, SWREF_PAGEMAP_SCAN, &arg);
  if (n < 0) return -errno;
  *walk_end = arg.walk_end;
  return n;
}

long swref_pagemap_changed(int pagemap_fd, uint64_t start, uint64_t end, struct swref_page_range *ranges,
                           size_t capacity, uint64_t *walk_end) {
  // Written, or not present: (categories ^ inverted) & anyof != 0 with PRESENT inverted.
  struct swref_pm_scan_arg arg = {
      .size = sizeof arg,
      .start = start,
      .end = end,
      .vec = (uint64_t)(uintptr_t)ranges,
      .vec_len = capacity,
      .category_inverted = SWREF_PAGE_IS_PRESENT,
      .category_anyof_mask = SWREF_PAGE_IS_WRITTEN | SWREF_PAGE_IS_PRESENT,
      .return_mask = SWREF_PAGE_IS_WRITTEN | SWREF_PAGE_IS_PRESENT | SWREF_PAGE_IS_SWAPPED,
  };
  long n = ioctl(pagemap_fd, SWREF_PAGEMAP_SCAN, &arg);
  if (n < 0) return -errno;
  *walk_end = arg.walk_end;
  return n;
}

int swref_read_ranges(pid_t pid, uint64_t base, void *local, const struct swref_page_range *ranges, size_t count) {
  enum { batch = 1024 }; // IOV_MAX
  struct iovec here[batch], there[batch];
  size_t index = 0;
  while (index < count) {
    size_t n = 0;
    size_t wanted = 0;
    for (; n < batch && index + n < count; n++) {
      const struct swref_page_range *range = &ranges[index + n];
      size_t length = (size_t)(range->end - range->start);
      here[n].iov_base = (char *)local + (range->start - base);
      here[n].iov_len = length;
      there[n].iov_base = (void *)(uintptr_t)range->start;
      there[n].iov_len = length;
      wanted += length;
    }
    ssize_t got = process_vm_readv(pid, here, n, there, n, 0);
    if (got < 0) return -errno;
    // A short read stops at the first range it could not read; the rest are read one by one.
    if ((size_t)got != wanted) {
      // A page went away (unmapped meanwhile): read the rest one range at a time, skipping holes.
      size_t done = 0;
      for (size_t i = 0; i < n; i++) {
        if (done + there[i].iov_len <= (size_t)got) { done += there[i].iov_len; continue; }
        if (process_vm_readv(pid, &here[i], 1, &there[i], 1, 0) < 0) return -errno;
      }
    }
    index += n;
  }
  return 0;
}
