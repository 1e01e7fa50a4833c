// Unwinding through libdwfl with our own thread callbacks, so the same code serves a live
// snapshot, a core file or a fork: registers and stack memory come from swref, not from ptrace.
#define _GNU_SOURCE
#include "CSwrefSystem.h"

#include <stdlib.h>
#include <string.h>

struct swref_unwinder {
  Dwfl *dwfl;
  const swref_thread_registers *threads;
  size_t count;
  swref_read_word_fn read_word;
  void *read_context;
  int attached;
};

static char *debuginfo_path = NULL;
static const Dwfl_Callbacks offline_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

swref_unwinder *swref_unwinder_create(void) {
  swref_unwinder *u = calloc(1, sizeof *u);
  if (!u) return NULL;
  u->dwfl = dwfl_begin(&offline_callbacks);
  if (!u->dwfl) {
    free(u);
    return NULL;
  }
  dwfl_report_begin(u->dwfl);
  return u;
}

int swref_unwinder_add_image(swref_unwinder *u, const char *path, uint64_t bias) {
  return dwfl_report_elf(u->dwfl, path, path, -1, bias, false) ? 0 : -1;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg) {
  (void)dwfl;
  swref_unwinder *u = arg;
  uint64_t value = 0;
  if (u->read_word(u->read_context, addr, &value) != 0) return false;
  *result = value;
  return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *thread_arg) {
  const swref_thread_registers *regs = thread_arg;
  return dwfl_thread_state_registers(thread, 0, 17, (const Dwarf_Word *)regs->regs);
}

struct frame_walk {
  swref_frame_fn frame;
  void *context;
  int32_t tid;
  int remaining;
};

static int on_frame(Dwfl_Frame *state, void *arg) {
  struct frame_walk *walk = arg;
  Dwarf_Addr pc = 0;
  bool activation = false;
  if (!dwfl_frame_pc(state, &pc, &activation)) return DWARF_CB_ABORT;
  Dwarf_Word sp = 0, bp = 0;
  if (dwfl_frame_reg(state, 7, &sp) != 0) sp = 0;
  if (dwfl_frame_reg(state, 6, &bp) != 0) bp = 0;
  walk->frame(walk->context, walk->tid, pc, sp, bp, activation);
  return --walk->remaining > 0 ? DWARF_CB_OK : DWARF_CB_ABORT;
}

// The thread argument handed to set_initial_registers must be the register block itself.
static pid_t next_thread_regs(Dwfl *dwfl, void *arg, void **thread_argp) {
  (void)dwfl;
  swref_unwinder *u = arg;
  const swref_thread_registers *current = *thread_argp;
  size_t next = current ? (size_t)(current - u->threads) + 1 : 0;
  if (next >= u->count) return 0;
  *thread_argp = (void *)&u->threads[next];
  return u->threads[next].tid;
}

static bool get_thread_regs(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp) {
  (void)dwfl;
  swref_unwinder *u = arg;
  for (size_t i = 0; i < u->count; i++) {
    if (u->threads[i].tid == tid) {
      *thread_argp = (void *)&u->threads[i];
      return true;
    }
  }
  return false;
}

static const Dwfl_Thread_Callbacks register_callbacks = {
    .next_thread = next_thread_regs,
    .get_thread = get_thread_regs,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
};

int swref_unwinder_run(swref_unwinder *u, const swref_thread_registers *threads, size_t count,
                       swref_read_word_fn read_word, void *read_context, swref_frame_fn frame,
                       void *frame_context, int max_frames) {
  if (!u->attached) {
    dwfl_report_end(u->dwfl, NULL, NULL);
    u->threads = threads;
    u->count = count;
    u->read_word = read_word;
    u->read_context = read_context;
    if (count == 0) return 0;
    if (!dwfl_attach_state(u->dwfl, NULL, threads[0].tid, &register_callbacks, u)) return -1;
    u->attached = 1;
  }
  for (size_t i = 0; i < count; i++) {
    struct frame_walk walk = {frame, frame_context, threads[i].tid, max_frames};
    // An error ends a thread's stack: what was unwound so far stands.
    dwfl_getthread_frames(u->dwfl, threads[i].tid, on_frame, &walk);
  }
  return 0;
}

void swref_unwinder_destroy(swref_unwinder *u) {
  if (!u) return;
  dwfl_end(u->dwfl);
  free(u);
}

const char *swref_unwinder_error(void) { return dwfl_errmsg(-1); }
