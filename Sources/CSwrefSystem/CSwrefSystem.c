#define _GNU_SOURCE
#include "CSwrefSystem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <pthread.h>

int swref_seize(pid_t tid) { return (int)ptrace(PTRACE_SEIZE, tid, NULL, NULL); }
int swref_interrupt(pid_t tid) { return (int)ptrace(PTRACE_INTERRUPT, tid, NULL, NULL); }
int swref_detach(pid_t tid, int signal) {
  return (int)ptrace(PTRACE_DETACH, tid, NULL, (void *)(long)signal);
}
int swref_get_regs(pid_t tid, struct user_regs_struct *regs) {
  return (int)ptrace(PTRACE_GETREGS, tid, NULL, regs);
}

pid_t swref_wait_thread(pid_t tid, int *status, int nohang) {
  pid_t r;
  do {
    r = waitpid(tid, status, __WALL | (nohang ? WNOHANG : 0));
  } while (r < 0 && errno == EINTR);
  return r;
}

int swref_open_unlinked(const char *directory) {
  return open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

int swref_punch_hole(int fd, uint64_t offset, uint64_t length) {
  return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length) == 0 ? 0 : -errno;
}

void *swref_grow_mapping(void *mapping, size_t old_size, size_t new_size) {
  void *moved = mremap(mapping, old_size, new_size, MREMAP_MAYMOVE);
  return moved == MAP_FAILED ? NULL : moved;
}

void *swref_move_pages(void *from, size_t size, void *to) {
  void *moved = to ? mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, to) : mremap(from, size, size, MREMAP_MAYMOVE, NULL);
  return moved == MAP_FAILED ? NULL : moved;
}

void *swref_take_pages(void *from, size_t size) {
  void *moved = mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);  // the address must be given: no hint
  return moved == MAP_FAILED ? NULL : moved;
}

ssize_t swref_read_remote(pid_t pid, void *local, uint64_t remote, size_t length) {
  struct iovec l = {local, length};
  struct iovec r = {(void *)(uintptr_t)remote, length};
  ssize_t n;
  do {
    n = process_vm_readv(pid, &l, 1, &r, 1, 0);
  } while (n < 0 && errno == EINTR);
  return n;
}

// A fixed table: the handler must not allocate. Threads beyond it still detach when
// swref exits, because the kernel detaches tracees of a dead tracer.
#define SWREF_MAX_TRACEES 65536
static volatile pid_t tracees[SWREF_MAX_TRACEES];
static volatile int tracee_count;

void swref_tracees_add(pid_t tid) {
  if (tracee_count < SWREF_MAX_TRACEES) tracees[tracee_count++] = tid;
}

void swref_tracees_remove(pid_t tid) {
  for (int i = 0; i < tracee_count; i++) {
    if (tracees[i] == tid) {
      tracees[i] = tracees[tracee_count - 1];
      tracee_count--;
      return;
    }
  }
}

void swref_tracees_clear(void) { tracee_count = 0; }

static char activity[512];
static volatile int crash_status;

void swref_set_activity(const char *text) {
  size_t length = strlen(text);
  if (length >= sizeof activity) length = sizeof activity - 1;
  // The terminator first: a crash in between reads a shorter string, never an unterminated one.
  activity[0] = 0;
  memcpy(activity + 1, text + 1, length > 0 ? length - 1 : 0);
  activity[length] = 0;
  activity[0] = length > 0 ? text[0] : 0;
}

void swref_set_crash_status(int status) { crash_status = status; }

static volatile pid_t launched_child;

void swref_set_launched_child(pid_t pid) { launched_child = pid; }

static void write_text(const char *text) {
  size_t length = strlen(text);
  while (length > 0) {
    ssize_t n = write(2, text, length);
    if (n <= 0) return;
    text += n;
    length -= (size_t)n;
  }
}

static void detach_all_and_reraise(int sig, siginfo_t *info, void *context) {
  (void)context;
  int synchronous = sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || sig == SIGILL || sig == SIGFPE;
  // A fault inside a guarded libswiftRemoteMirror call jumps back to that call (never returns
  // here); a signal another process sent (kill -SEGV) is no fault of the library's.
  int raised_here = info->si_code > 0 || info->si_pid == getpid();
  if (synchronous && raised_here) swref_reflection_guard_catch(sig);
  for (int i = 0; i < tracee_count; i++) ptrace(PTRACE_DETACH, tracees[i], NULL, NULL);
  tracee_count = 0;
  if (synchronous) {
    // A trap in swref or a fault in a library it calls: say what it was doing, exit with the
    // command's documented status (never a bare "Illegal instruction").
    write_text("swref: internal error (");
    write_text(strsignal(sig));
    write_text(")");
    if (activity[0]) {
      write_text(" while ");
      write_text(activity);
    }
    write_text("; the target was not changed. Please report this with the command that was run.\n");
    if (crash_status) _exit(crash_status);
  } else if (launched_child > 0 && sig != SIGPIPE) {
    write_text("swref: interrupted (");
    write_text(strsignal(sig));
    write_text("); passing it on to the program it runs\n");
    kill(launched_child, sig);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

void swref_install_detach_handlers(void) {
  static int installed;
  if (installed) return;
  installed = 1;
  int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE, SIGPIPE};
  for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = detach_all_and_reraise;
    // On the signal stack where a thread has one (guarded reflection calls: a stack overflow).
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK;
    sigaction(signals[i], &sa, NULL);
  }
}

void swref_reinstall_crash_handler(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = detach_all_and_reraise;
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK;
  sigaction(sig, &sa, NULL);
}

static int run_zlib(const void *in, size_t in_len, void **out, size_t *out_len, int deflating) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  int rc = deflating ? deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)
                     : inflateInit2(&zs, 15 + 32);
  if (rc != Z_OK) return -1;
  size_t cap = deflating ? deflateBound(&zs, in_len) + 64 : in_len * 4 + 1024;
  unsigned char *buf = malloc(cap);
  if (!buf) goto fail;
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)in_len;
  for (;;) {
    zs.next_out = buf + zs.total_out;
    zs.avail_out = (uInt)(cap - zs.total_out);
    rc = deflating ? deflate(&zs, Z_FINISH) : inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) goto fail;
    if (zs.avail_out == 0) {
      cap *= 2;
      unsigned char *grown = realloc(buf, cap);
      if (!grown) goto fail;
      buf = grown;
    } else if (rc == Z_BUF_ERROR || zs.avail_in == 0) {
      goto fail; // truncated input
    }
  }
  *out = buf;
  *out_len = zs.total_out;
  deflating ? deflateEnd(&zs) : inflateEnd(&zs);
  return 0;
fail:
  free(buf);
  deflating ? deflateEnd(&zs) : inflateEnd(&zs);
  return -1;
}

int swref_gzip(const void *in, size_t in_len, void **out, size_t *out_len) {
  return run_zlib(in, in_len, out, out_len, 1);
}

int swref_gunzip(const void *in, size_t in_len, void **out, size_t *out_len) {
  return run_zlib(in, in_len, out, out_len, 0);
}

pid_t swref_spawn_traced(char *const argv[]) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) _exit(127);
  raise(SIGSTOP);
  execvp(argv[0], argv);
  _exit(127);
}

int swref_trace_exit(pid_t pid) {
  return (int)ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)(long)(PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC));
}

int swref_continue(pid_t pid, int signal) { return (int)ptrace(PTRACE_CONT, pid, NULL, (void *)(long)signal); }

int swref_event_message(pid_t pid, unsigned long *message) {
  return (int)ptrace(PTRACE_GETEVENTMSG, pid, NULL, message);
}
