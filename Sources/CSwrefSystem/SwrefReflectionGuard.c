// Calls into libswiftRemoteMirror under a guard: the library trusts the metadata it reads, and
// corrupt metadata makes it fault (null dereferences, traps, failed assertions). A fault while a
// guarded call is on this thread's stack jumps back to the call, which returns the signal instead
// of a result; a fault anywhere else still reaches swref's crash handler.
#include "CSwrefSystem.h"

#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static __thread sigjmp_buf *guard_jump;
static __thread volatile int guard_signal;
static __thread int guard_stack_ready;

int swref_reflection_guard_catch(int sig) {
  sigjmp_buf *jump = guard_jump;
  if (!jump) return 0;
  guard_jump = NULL;
  guard_signal = sig;
  // sigsetjmp saved no mask (a sigprocmask call per library call would cost more than the call):
  // the signal stays blocked until the guarded call unblocks it.
  siglongjmp(*jump, 1);
}

/// A stack overflow inside the library (recursion on cyclic metadata) needs a stack to run the
/// handler on: one per thread that makes guarded calls, made once and kept.
static void ensure_signal_stack(void) {
  if (guard_stack_ready) return;
  guard_stack_ready = 1;
  stack_t current;
  if (sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return;
  size_t size = 64 * 1024;
  void *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (stack == MAP_FAILED) return;
  stack_t alt = {.ss_sp = stack, .ss_size = size, .ss_flags = 0};
  sigaltstack(&alt, NULL);
}

static void unblock_faults(void) {
  sigset_t set;
  sigemptyset(&set);
  int signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGABRT, SIGFPE};
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) sigaddset(&set, signals[i]);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/// The library prints what it finds wrong in corrupt metadata (sections too small, the bytes
/// around, failed assertions) to `stderr`, many lines a type; swref says it in one note instead.
/// glibc's `stderr` is a variable: it points here only while a guarded call runs.
static FILE *quiet;
void swref_silence_cerr(void);

void swref_reflection_guard_prepare(void) {
  swref_install_detach_handlers();
  ensure_signal_stack();
  if (!quiet) quiet = fopen("/dev/null", "we");
  swref_silence_cerr();
}

void *swref_reflection_guard_suspend(void) {
  sigjmp_buf *jump = guard_jump;
  guard_jump = NULL;
  return jump;
}

void swref_reflection_guard_resume(void *jump) { guard_jump = jump; }

// The call runs with this frame's jump buffer armed; `volatile` keeps the result where the
// jump cannot leave it stale. The handler (reset to default by SA_RESETHAND) is installed again.
#define GUARDED(call)                                  \
  sigjmp_buf jump;                                     \
  sigjmp_buf *volatile outer = guard_jump;             \
  FILE *volatile saved = stderr;                       \
  if (sigsetjmp(jump, 0)) {                            \
    guard_jump = outer;                                \
    stderr = saved;                                    \
    swref_reinstall_crash_handler(guard_signal);       \
    unblock_faults();                                  \
    return guard_signal;                               \
  }                                                    \
  if (quiet) stderr = quiet;                           \
  guard_jump = &jump;                                  \
  call;                                                \
  guard_jump = outer;                                  \
  stderr = saved;                                      \
  return 0;

int swref_guarded_addImage(SwiftReflectionContextRef c, swift_addr_t start, int *out) {
  GUARDED(*out = swift_reflection_addImage(c, start))
}
int swref_guarded_typeRefForMetadata(SwiftReflectionContextRef c, uintptr_t metadata, swift_typeref_t *out) {
  GUARDED(*out = swift_reflection_typeRefForMetadata(c, metadata))
}
int swref_guarded_typeRefForMangledTypeName(SwiftReflectionContextRef c, const char *name, uint64_t length,
                                            swift_typeref_t *out) {
  GUARDED(*out = swift_reflection_typeRefForMangledTypeName(c, name, length))
}
int swref_guarded_copyDemangledNameForTypeRef(SwiftReflectionContextRef c, swift_typeref_t tr, char **out) {
  GUARDED(*out = swift_reflection_copyDemangledNameForTypeRef(c, tr))
}
int swref_guarded_infoForTypeRef(SwiftReflectionContextRef c, swift_typeref_t tr, swref_typeinfo_t *out) {
  GUARDED(*out = swift_reflection_infoForTypeRef(c, tr))
}
int swref_guarded_childOfTypeRef(SwiftReflectionContextRef c, swift_typeref_t tr, unsigned index, swref_childinfo_t *out) {
  GUARDED(*out = swift_reflection_childOfTypeRef(c, tr, index))
}
int swref_guarded_infoForMetadata(SwiftReflectionContextRef c, uintptr_t metadata, swref_typeinfo_t *out) {
  GUARDED(*out = swift_reflection_infoForMetadata(c, metadata))
}
int swref_guarded_childOfMetadata(SwiftReflectionContextRef c, uintptr_t metadata, unsigned index, swref_childinfo_t *out) {
  GUARDED(*out = swift_reflection_childOfMetadata(c, metadata, index))
}
int swref_guarded_infoForInstance(SwiftReflectionContextRef c, uintptr_t object, swref_typeinfo_t *out) {
  GUARDED(*out = swift_reflection_infoForInstance(c, object))
}
int swref_guarded_childOfInstance(SwiftReflectionContextRef c, uintptr_t object, unsigned index, swref_childinfo_t *out) {
  GUARDED(*out = swift_reflection_childOfInstance(c, object, index))
}
int swref_guarded_genericArgumentOfTypeRef(swift_typeref_t tr, unsigned index, swift_typeref_t *out) {
  GUARDED(*out = swift_reflection_genericArgumentCountOfTypeRef(tr) > index ? swift_reflection_genericArgumentOfTypeRef(tr, index) : 0)
}
