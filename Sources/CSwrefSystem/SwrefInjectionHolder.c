// The stops that inject a system call into the target, run in a separate "holder" process.
//
// Injecting means pointing one of the target's threads at a syscall instruction with foreign
// registers. If the tracer died in that window the kernel would detach the thread and it would
// run on with those registers. So swref does not trace the target itself here: it forks this
// holder, which stops the thread(s), injects, puts the registers back and detaches. Two jobs:
//  - fork snapshot: stop every thread, inject clone(2), keep the frozen child until swref says it
//    is done or goes away (its pipe closes);
//  - write tracking: stop the main thread only, inject userfaultfd(2), take the descriptor with
//    pidfd_getfd(2), inject close(2); swref then takes it from the holder the same way.
// The holder is in its own process group and holds the terminal's signals while it works, so
// killing swref — even with SIGKILL, even its whole process group — cannot interrupt an injection.
//
// Runs between fork and _exit in a process that may have had other threads: only system calls,
// no malloc, no stdio.
#define _GNU_SOURCE
#include "CSwrefSystem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 8192

struct held_thread {
  pid_t tid;
  int signal; // a signal the thread was about to receive: handed back on detach
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static pid_t wait_for(pid_t tid, int *status) {
  pid_t r;
  do {
    r = waitpid(tid, status, __WALL);
  } while (r < 0 && errno == EINTR);
  return r;
}

static int write_all(int fd, const void *data, size_t length) {
  const char *p = data;
  while (length > 0) {
    ssize_t n = write(fd, p, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    length -= (size_t)n;
  }
  return 0;
}

static int is_held(struct held_thread *threads, int count, pid_t tid) {
  for (int i = 0; i < count; i++)
    if (threads[i].tid == tid) return 1;
  return 0;
}

/// Seizes and interrupts one thread; returns 1 if it is now stopped, 0 if it is gone, -errno else.
/// A thread that does not stop within 5 s (stuck in the kernel) gives -ETIMEDOUT: the caller then
/// lets everything go rather than keep the target frozen. The one way swref stops a thread: the
/// holder and swref's own stop-the-world (PtraceSession) both use it.
int swref_stop_thread(pid_t tid, int *signal_out) {
  if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) return errno == ESRCH ? 0 : -errno;
  if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) != 0) return errno == ESRCH ? 0 : -errno;
  int status = 0;
  uint64_t deadline = now_ns() + 5000000000ull;
  for (;;) {
    pid_t r = waitpid(tid, &status, __WALL | WNOHANG);
    if (r == tid) break;
    if (r < 0 && errno != EINTR) return 0;
    uint64_t now = now_ns();
    if (now > deadline) {
      ptrace(PTRACE_DETACH, tid, NULL, NULL);
      return -ETIMEDOUT;
    }
    // A running thread stops within microseconds: yield for the first 2 ms (the pause is what
    // the target pays), then sleep between polls.
    if (now + 4998000000ull < deadline) {
      sched_yield();
    } else {
      struct timespec pause = {0, 200000};
      nanosleep(&pause, NULL);
    }
  }
  if (!WIFSTOPPED(status)) return 0;
  // Seized threads get no attach SIGSTOP: a signal-delivery stop (no event) is a real signal,
  // whatever it is, and goes back on detach.
  int event = (status >> 16) & 0xff;
  *signal_out = event == 0 ? WSTOPSIG(status) : 0;
  return 1;
}

/// Stops every thread, listing /proc/PID/task again until no new thread appears.
static int stop_all(pid_t pid, struct held_thread *threads, int *count) {
  char path[64];
  // No snprintf: build "/proc/PID/task" by hand.
  char digits[16];
  int n = 0;
  for (pid_t v = pid; v > 0 && n < 15; v /= 10) digits[n++] = (char)('0' + v % 10);
  int p = 0;
  const char *head = "/proc/";
  while (*head) path[p++] = *head++;
  while (n > 0) path[p++] = digits[--n];
  const char *tail = "/task";
  while (*tail) path[p++] = *tail++;
  path[p] = 0;

  for (int round = 0; round < 1000; round++) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -ESRCH;
    int added = 0;
    char buffer[4096];
    for (;;) {
      long got = syscall(SYS_getdents64, fd, buffer, sizeof buffer);
      if (got <= 0) break;
      for (long offset = 0; offset < got;) {
        struct dirent64 *entry = (struct dirent64 *)(buffer + offset);
        offset += entry->d_reclen;
        pid_t tid = 0;
        const char *c = entry->d_name;
        if (*c < '0' || *c > '9') continue;
        for (; *c >= '0' && *c <= '9'; c++) tid = tid * 10 + (*c - '0');
        if (is_held(threads, *count, tid)) continue;
        if (*count >= MAX_THREADS) { close(fd); return -E2BIG; }
        int sig = 0;
        int r = swref_stop_thread(tid, &sig);
        if (r < 0) { close(fd); return r; }
        if (r == 0) {
          if (tid == pid) { close(fd); return -ESRCH; }
          continue;
        }
        threads[*count].tid = tid;
        threads[*count].signal = sig;
        (*count)++;
        added++;
      }
    }
    close(fd);
    if (added == 0) return *count > 0 ? 0 : -ESRCH;
  }
  return -EAGAIN;
}

/// Makes `tid` run system call `number` (arguments `a0`, `a1`) at `syscall_address` by single
/// steps, then puts its registers back. Returns the call's result (-errno on failure). With
/// `trace_fork`, a process the call forks is reported in *child (stopped from birth, traced by us).
static long inject_syscall(pid_t tid, uint64_t syscall_address, long number, long a0, long a1, int trace_fork,
                           pid_t *child, int *pending_signal, int stall_ms) {
  struct user_regs_struct saved, regs;
  if (ptrace(PTRACE_GETREGS, tid, NULL, &saved) != 0) return -errno;
  regs = saved;
  regs.rip = syscall_address;
  regs.rax = (unsigned long long)number;
  regs.rdi = (unsigned long long)a0;
  regs.rsi = (unsigned long long)a1;
  regs.rdx = regs.r10 = regs.r8 = regs.r9 = 0;
  regs.orig_rax = (unsigned long long)-1; // not inside a syscall: no restart logic on the way in
  // Signals that arrive meanwhile stay queued, with their sender's details, until the mask goes
  // back: none has to be carried through the detach.
  // Not the synchronous signals: one the kernel forces while it is blocked (the step's own SIGTRAP,
  // a fault, seccomp's SIGSYS) would reset the thread's handler for it to the default.
  uint64_t saved_mask = 0, all = ~0ull;
  const int synchronous[] = {SIGTRAP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS};
  for (size_t i = 0; i < sizeof synchronous / sizeof synchronous[0]; i++) all &= ~(1ull << (synchronous[i] - 1));
  int masked = ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof saved_mask, &saved_mask) == 0 &&
               ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof all, &all) == 0;
  if (trace_fork && ptrace(PTRACE_SETOPTIONS, tid, NULL, (void *)(long)PTRACE_O_TRACEFORK) != 0) {
    int err = errno;
    if (masked) ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof saved_mask, &saved_mask);
    return -err;
  }
  if (ptrace(PTRACE_SETREGS, tid, NULL, &regs) != 0) {
    int err = errno;
    if (masked) ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof saved_mask, &saved_mask);
    return -err;
  }
  if (stall_ms > 0) { // test hook: the window a killed tracer would make fatal
    struct timespec pause = {stall_ms / 1000, (long)(stall_ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {}
  }
  // Single steps, not PTRACE_CONT: a call that fails (EINVAL for PID 1's CLONE_PARENT, EAGAIN at
  // a process limit, seccomp) reports no event, and the step's SIGTRAP right after the syscall
  // instruction is where the registers go back. Continuing would let the thread run on with the
  // injected registers.
  int status = 0;
  int trapped = 0;
  while (!trapped) {
    if (ptrace(PTRACE_SINGLESTEP, tid, NULL, NULL) != 0) {
      int err = errno;
      ptrace(PTRACE_SETREGS, tid, NULL, &saved);
      if (trace_fork) ptrace(PTRACE_SETOPTIONS, tid, NULL, NULL);
      if (masked) ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof saved_mask, &saved_mask);
      return -err;
    }
    for (;;) {
      if (wait_for(tid, &status) != tid || !WIFSTOPPED(status)) return -ESRCH;
      int event = (status >> 16) & 0xff, sig = WSTOPSIG(status);
      if (event == PTRACE_EVENT_FORK) { // the clone is done; the next step ends the syscall
        unsigned long message = 0;
        ptrace(PTRACE_GETEVENTMSG, tid, NULL, &message);
        if (child) *child = (pid_t)message;
        ptrace(PTRACE_SINGLESTEP, tid, NULL, NULL);
        continue;
      }
      if (event == 0 && sig == SIGTRAP) {
        // The step's own trap comes right after the syscall instruction; a SIGTRAP anywhere else
        // was sent to the thread (a kill, a raise) and is a signal like the others.
        struct user_regs_struct at;
        if (ptrace(PTRACE_GETREGS, tid, NULL, &at) == 0 && at.rip == syscall_address + 2) { trapped = 1; break; }
      }
      if (event == 0) *pending_signal = sig; // a signal that could not be held back: keep it for the detach
      break;                                 // step again
    }
  }
  struct user_regs_struct after;
  long result = ptrace(PTRACE_GETREGS, tid, NULL, &after) == 0 ? (long)after.rax : -EAGAIN;
  ptrace(PTRACE_SETREGS, tid, NULL, &saved);
  if (trace_fork) ptrace(PTRACE_SETOPTIONS, tid, NULL, NULL);
  if (masked) ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof saved_mask, &saved_mask);
  return result;
}

/// Whether descriptor `fd` of this process is a userfaultfd (readlink of /proc/self/fd/N).
static int is_userfaultfd(int fd) {
  char path[32] = "/proc/self/fd/", target[64];
  int p = 14;
  char digits[12];
  int n = 0;
  for (int v = fd; n == 0 || v > 0; v /= 10) digits[n++] = (char)('0' + v % 10);
  while (n > 0) path[p++] = digits[--n];
  path[p] = 0;
  ssize_t length = readlink(path, target, sizeof target - 1);
  if (length <= 0) return 0;
  target[length] = 0;
  const char *want = "anon_inode:[userfaultfd]";
  for (int i = 0; want[i] || target[i]; i++)
    if (want[i] != target[i]) return 0;
  return 1;
}

/// Makes `tid` run clone(CLONE_PARENT | SIGCHLD). Returns the child (stopped, traced by us) or -errno.
static pid_t inject_fork(pid_t tid, uint64_t syscall_address, int *pending_signal, int stall_ms) {
  pid_t child = 0;
  // CLONE_PARENT: the child belongs to the target's parent, so the target never sees a SIGCHLD or
  // a zombie of ours.
  long result = inject_syscall(tid, syscall_address, SYS_clone, CLONE_PARENT | SIGCHLD, 0, 1, &child,
                               pending_signal, stall_ms);
  if (child <= 0) return result < 0 && result > -4096 ? (pid_t)result : -EAGAIN; // the clone's own error

  // The child never runs: killed if the holder dies, aimed at exit(2) in case it ever resumed.
  int status;
  wait_for(child, &status);
  ptrace(PTRACE_SETOPTIONS, child, NULL, (void *)(long)PTRACE_O_EXITKILL);
  struct user_regs_struct exit_regs;
  if (ptrace(PTRACE_GETREGS, child, NULL, &exit_regs) == 0) {
    exit_regs.rip = syscall_address;
    exit_regs.rax = SYS_exit;
    exit_regs.rdi = 0;
    exit_regs.orig_rax = (unsigned long long)-1;
    ptrace(PTRACE_SETREGS, child, NULL, &exit_regs);
  }
  return child;
}

/// Has `tid` create a userfaultfd and copies it into this process; closes the target's copy.
/// Returns our descriptor or -errno.
static int inject_userfaultfd(pid_t pid, pid_t tid, uint64_t syscall_address, int *pending_signal, int stall_ms) {
  // UFFD_USER_MODE_ONLY (1): allowed to unprivileged targets; write tracking never needs kernel faults.
  long remote = inject_syscall(tid, syscall_address, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | 1, 0, 0, NULL,
                               pending_signal, stall_ms);
  if (remote < 0) return (int)remote;
  int result;
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) result = -errno;
  else {
    result = (int)syscall(SYS_pidfd_getfd, pidfd, (int)remote, 0);
    if (result < 0) result = -errno;
    close(pidfd);
  }
  // Close the target's copy only if it is the userfaultfd we made: never one of its own files.
  if (result >= 0 && !is_userfaultfd(result)) {
    close(result);
    return -EBADF;
  }
  inject_syscall(tid, syscall_address, SYS_close, remote, 0, 0, NULL, pending_signal, 0);
  return result;
}

static void holder_main(pid_t pid, int job, uint64_t syscall_address, int stall_ms, int report_fd, int control_fd) {
  // Own process group: a kill of swref's group does not reach us. Terminal signals wait until
  // the target is running again; after that their default action is fine (EXITKILL kills the child).
  setpgid(0, 0);
  int held[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
  sigset_t set;
  sigemptyset(&set);
  for (size_t i = 0; i < sizeof held / sizeof held[0]; i++) {
    signal(held[i], SIG_DFL);
    sigaddset(&set, held[i]);
  }
  sigprocmask(SIG_BLOCK, &set, NULL);

  struct held_thread *threads = mmap(NULL, sizeof(struct held_thread) * MAX_THREADS, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  struct swref_fork_report report;
  memset(&report, 0, sizeof report);
  if (threads == MAP_FAILED) {
    report.error = -ENOMEM;
    write_all(report_fd, &report, sizeof report);
    _exit(1);
  }
  int count = 0;
  uint64_t started = now_ns();
  int r;
  if (job == SWREF_HOLD_FORK) r = stop_all(pid, threads, &count);
  else { // write tracking: only the main thread waits, and only for two system calls
    r = swref_stop_thread(pid, &threads[0].signal);
    if (r == 1) { threads[0].tid = pid; count = 1; r = 0; }
    else if (r == 0) r = -ESRCH;
  }
  struct swref_fork_thread *states = (struct swref_fork_thread *)mmap(
      NULL, sizeof(struct swref_fork_thread) * MAX_THREADS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  pid_t child = 0;
  int tracker = -1;
  if (r != 0) report.failed_stage = 1;
  if (r == 0 && states == MAP_FAILED) r = -ENOMEM;
  if (r == 0 && job == SWREF_HOLD_USERFAULTFD) {
    int pending = 0;
    tracker = inject_userfaultfd(pid, pid, syscall_address, &pending, stall_ms);
    if (tracker < 0) {
      r = tracker;
      report.failed_stage = 2;
    }
    if (pending && !threads[0].signal) threads[0].signal = pending;
  } else if (r == 0) {
    int main_index = 0;
    for (int i = 0; i < count; i++) {
      states[i].tid = threads[i].tid;
      if (ptrace(PTRACE_GETREGS, threads[i].tid, NULL, &states[i].regs) != 0) states[i].tid = 0;
      if (threads[i].tid == pid) main_index = i;
    }
    int pending = 0;
    child = inject_fork(threads[main_index].tid, syscall_address, &pending, stall_ms);
    if (child < 0) {
      r = child;
      report.failed_stage = 2;
    }
    if (pending && !threads[main_index].signal) threads[main_index].signal = pending;
  }
  for (int i = 0; i < count; i++) ptrace(PTRACE_DETACH, threads[i].tid, NULL, (void *)(long)threads[i].signal);
  report.pause_ns = now_ns() - started;
  sigprocmask(SIG_UNBLOCK, &set, NULL);

  report.error = r < 0 ? r : 0;
  report.child = r < 0 ? 0 : child;
  report.descriptor = r < 0 ? -1 : tracker;
  int reported = 0;
  if (r == 0 && job == SWREF_HOLD_FORK)
    for (int i = 0; i < count; i++)
      if (states[i].tid) reported++;
  report.thread_count = reported;
  if (write_all(report_fd, &report, sizeof report) == 0 && r == 0) {
    for (int i = 0; i < count; i++)
      if (states[i].tid && write_all(report_fd, &states[i], sizeof states[i]) != 0) break;
  }
  close(report_fd);

  // Keep the child (or the descriptor) until swref has taken it: any byte or the end of the pipe
  // (swref gone).
  if (child > 0 || tracker >= 0) {
    char byte;
    while (read(control_fd, &byte, 1) < 0 && errno == EINTR) {}
  }
  if (child > 0) {
    kill(child, SIGKILL);
    int status;
    wait_for(child, &status);
  }
  _exit(0);
}

pid_t swref_holder_start(pid_t pid, int job, uint64_t syscall_address, int stall_ms, int *report_fd, int *control_fd) {
  int report[2], control[2];
  if (pipe2(report, O_CLOEXEC) != 0) return -1;
  if (pipe2(control, O_CLOEXEC) != 0) {
    close(report[0]);
    close(report[1]);
    return -1;
  }
  pid_t holder = fork();
  if (holder < 0) {
    int err = errno;
    close(report[0]); close(report[1]); close(control[0]); close(control[1]);
    errno = err;
    return -1;
  }
  if (holder == 0) {
    close(report[0]);
    close(control[1]);
    holder_main(pid, job, syscall_address, stall_ms, report[1], control[0]);
  }
  close(report[1]);
  close(control[0]);
  *report_fd = report[0];
  *control_fd = control[1];
  return holder;
}

int swref_read_all(int fd, void *data, size_t length) {
  char *p = data;
  while (length > 0) {
    ssize_t n = read(fd, p, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    length -= (size_t)n;
  }
  return 0;
}
