#ifndef CSWREF_SYSTEM_H
#define CSWREF_SYSTEM_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/user.h>
#include <libelf.h>
#include <gelf.h>
#include <elfutils/libdwfl.h>
#include <elfutils/libdw.h>

// MARK: ptrace and process memory
// ptrace(2) is variadic and process_vm_readv(2) is not exported by Glibc's Swift module.

int swref_seize(pid_t tid);
int swref_interrupt(pid_t tid);
/// Seizes, interrupts and waits (at most 5 s) for one thread: 1 stopped (its pending signal in
/// `*signal_out`), 0 gone, -errno refused or -ETIMEDOUT (SwrefInjectionHolder.c).
int swref_stop_thread(pid_t tid, int *signal_out);
int swref_detach(pid_t tid, int signal);
int swref_get_regs(pid_t tid, struct user_regs_struct *regs);
/// waitpid(tid, status, __WALL) retried on EINTR.
pid_t swref_wait_thread(pid_t tid, int *status, int nohang);
/// mremap(2) with MREMAP_MAYMOVE (variadic, so not imported): the grown mapping, or NULL with errno.
void *swref_grow_mapping(void *mapping, size_t old_size, size_t new_size);
/// An unlinked file (O_TMPFILE, mode 0600) in `directory`, read-write: -1 with errno.
int swref_open_unlinked(const char *directory);
/// Makes `length` bytes at `offset` of `fd` a hole (reads as zeros); 0 or -errno.
int swref_punch_hole(int fd, uint64_t offset, uint64_t length);
/// Moves the pages of `from..<from+size` (inside one mapping) to `to`, replacing what was mapped
/// there (mremap with MREMAP_FIXED); to NULL, wherever the kernel chooses. The pages' new address,
/// or NULL with errno.
void *swref_move_pages(void *from, size_t size, void *to);
/// Moves the pages of `from..<from+size` (inside one private anonymous mapping) to a new address,
/// leaving `from` mapped, reading zeros (MREMAP_DONTUNMAP, Linux 5.7): the new address, or NULL.
void *swref_take_pages(void *from, size_t size);
/// Reads `length` bytes of `pid` at `remote` into `local`; returns bytes read or -1.
ssize_t swref_read_remote(pid_t pid, void *local, uint64_t remote, size_t length);

// MARK: injection holder (SwrefInjectionHolder.c)

enum { SWREF_HOLD_FORK = 0, SWREF_HOLD_USERFAULTFD = 1 };

/// What the holder reports first: then `thread_count` swref_fork_thread records follow.
struct swref_fork_report {
  int error;          // 0, or -errno of what failed (-EPERM: the target's clone failed)
  pid_t child;        // SWREF_HOLD_FORK: the frozen child, stopped and traced by the holder
  int thread_count;
  int failed_stage;   // 1: stopping the threads, 2: the injected call
  uint64_t pause_ns;  // from the first stop to the last detach
  int descriptor;     // SWREF_HOLD_USERFAULTFD: the holder's copy of the target's userfaultfd
  int reserved;
};

struct swref_fork_thread {
  pid_t tid;
  int reserved;
  struct user_regs_struct regs;
};

/// Forks the holder process for `job` on `pid`, injecting at `syscall_address`: SWREF_HOLD_FORK
/// stops every thread, makes the main thread fork and lets them go; SWREF_HOLD_USERFAULTFD stops
/// the main thread only, has it create a userfaultfd and keeps a copy. Reads come on *report_fd;
/// write a byte to (or close) *control_fd when the child or descriptor is no longer needed.
/// `stall_ms` (a test hook) holds the main thread with the injected registers that long.
/// Returns the holder's PID, or -1 with errno.
pid_t swref_holder_start(pid_t pid, int job, uint64_t syscall_address, int stall_ms, int *report_fd, int *control_fd);
/// pidfd_getfd(2): a copy of descriptor `fd` of process `pid`, or -1 with errno.
int swref_take_descriptor(pid_t pid, int fd);

// MARK: write tracking (SwrefWriteTracking.c)
// Userfaultfd asynchronous write protection plus PAGEMAP_SCAN (Linux 6.7): which pages of the
// target were written since they were last protected, without stopping it.

struct swref_page_range {
  uint64_t start;
  uint64_t end;
  uint64_t categories;
};

/// UFFDIO_API with asynchronous write protection; 0 or -errno (-EINVAL: the kernel lacks it).
int swref_uffd_enable_write_tracking(int uffd);
/// UFFDIO_REGISTER in write-protect mode; 0 or -errno.
int swref_uffd_register(int uffd, uint64_t start, uint64_t length);
/// UFFDIO_UNREGISTER (which also lifts the protection of the range's pages); 0 or -errno.
int swref_uffd_unregister(int uffd, uint64_t start, uint64_t length);
/// PAGEMAP_SCAN over [start, end) of the target's /proc/PID/pagemap: the written pages, as
/// ranges, write-protected again if `protect`. Returns the number of ranges (at most
/// `capacity`) or -errno; *walk_end says where the scan stopped (end, unless the output filled).
long swref_pagemap_written(int pagemap_fd, uint64_t start, uint64_t end, int protect,
                           struct swref_page_range *ranges, size_t capacity, uint64_t *walk_end);
/// One PAGEMAP_SCAN for both: the pages written since protected, and those neither present nor
/// swapped; each range's `categories` has SWREF_PAGE_WRITTEN (2), _PRESENT (8), _SWAPPED (16) as found.
long swref_pagemap_changed(int pagemap_fd, uint64_t start, uint64_t end, struct swref_page_range *ranges,
                           size_t capacity, uint64_t *walk_end);
/// Copies `count` ranges of `pid` into `local` + (range.start - `base`), batched into
/// process_vm_readv calls. Returns 0, or -errno (ESRCH: the process is gone).
int swref_read_ranges(pid_t pid, uint64_t base, void *local, const struct swref_page_range *ranges, size_t count);
/// read(2) until `length` bytes arrived; -1 on error or end of file.
int swref_read_all(int fd, void *data, size_t length);

// MARK: lazy snapshot (SwrefLazyPager.c)
// swref's copy of a frozen fork child filled on first touch through a userfaultfd of swref's own.

typedef struct swref_lazy swref_lazy;

struct swref_lazy_stats {
  uint64_t filled;        // bytes placed in the copy (again after a give-back)
  uint64_t faults;        // first touches served
  uint64_t failed;        // bytes the child refused (zeros in the copy)
  uint64_t dropped;       // bytes given back past the limit
  uint64_t peak_resident; // most bytes filled and not given back at once
  int lost;               // the child went away
};

/// A pager reading from `memfd` (the child's /proc/PID/mem) in stretches of `chunk` bytes (a
/// power of two), keeping at most about `limit` bytes filled. NULL with errno (no userfaultfd).
swref_lazy *swref_lazy_create(int memfd, size_t chunk, size_t limit);
/// Registers swref's mapping [local, local+length) as the copy of the child's `remote`; before start.
int swref_lazy_add(swref_lazy *lazy, void *local, uint64_t length, uint64_t remote);
/// Starts the thread that serves first touches.
int swref_lazy_start(swref_lazy *lazy);
void swref_lazy_stats(const swref_lazy *lazy, struct swref_lazy_stats *out);
/// Stops the thread and closes the userfaultfd (the ranges read as zeros where never filled).
void swref_lazy_destroy(swref_lazy *lazy);

// MARK: detach on signals
// The threads we stopped are recorded here so that SIGINT/SIGTERM/SIGHUP/SIGQUIT and
// crashes detach them from the signal handler before swref goes away.

void swref_tracees_add(pid_t tid);
void swref_tracees_remove(pid_t tid);
void swref_tracees_clear(void);
/// Installs the handlers once; they detach every recorded tracee and re-raise the signal.
void swref_install_detach_handlers(void);
/// What swref is doing, for the crash report: copied into a fixed buffer (the handler reads it).
void swref_set_activity(const char *activity);
/// The exit status after a crash (a trap in swref, a fault in a library it calls): 0 re-raises.
void swref_set_crash_status(int status);
/// The program `swref run` launched: a SIGINT/SIGTERM/SIGHUP/SIGQUIT to swref is passed on to it
/// (after its threads are detached), so that it does not go on as an orphan. 0: none.
void swref_set_launched_child(pid_t pid);

// MARK: gzip

/// Compresses `in` as a gzip stream; *out is malloc'd (caller frees). Returns 0 on success.
int swref_gzip(const void *in, size_t in_len, void **out, size_t *out_len);
/// Inflates a gzip or zlib stream; *out is malloc'd. Returns 0 on success.
int swref_gunzip(const void *in, size_t in_len, void **out, size_t *out_len);

// MARK: libswiftRemoteMirror (metadata version 3), declared here because the toolchain
// ships the library without its header.

typedef uint64_t swift_addr_t;
typedef uint64_t swift_typeref_t;
typedef struct SwiftReflectionContext *SwiftReflectionContextRef;

typedef void (*swref_FreeBytesFunction)(void *reader_context, const void *bytes, void *context);
typedef const void *(*swref_ReadBytesFunction)(void *reader_context, swift_addr_t address,
                                               uint64_t size, void **out_free_context);
typedef uint64_t (*swref_GetStringLengthFunction)(void *reader_context, swift_addr_t address);
typedef swift_addr_t (*swref_GetSymbolAddressFunction)(void *reader_context, const char *name,
                                                      uint64_t name_length);

typedef enum swref_layout_kind {
  SWREF_LAYOUT_UNKNOWN = 0,
  SWREF_LAYOUT_BUILTIN,
  SWREF_LAYOUT_RAW_POINTER,
  SWREF_LAYOUT_TUPLE,
  SWREF_LAYOUT_STRUCT,
  SWREF_LAYOUT_NO_PAYLOAD_ENUM,
  SWREF_LAYOUT_SINGLE_PAYLOAD_ENUM,
  SWREF_LAYOUT_MULTI_PAYLOAD_ENUM,
  SWREF_LAYOUT_THICK_FUNCTION,
  SWREF_LAYOUT_OPAQUE_EXISTENTIAL,
  SWREF_LAYOUT_CLASS_EXISTENTIAL,
  SWREF_LAYOUT_ERROR_EXISTENTIAL,
  SWREF_LAYOUT_EXISTENTIAL_METATYPE,
  SWREF_LAYOUT_STRONG_REFERENCE,
  SWREF_LAYOUT_UNOWNED_REFERENCE,
  SWREF_LAYOUT_WEAK_REFERENCE,
  SWREF_LAYOUT_UNMANAGED_REFERENCE,
  SWREF_LAYOUT_CLASS_INSTANCE,
  SWREF_LAYOUT_CLOSURE_CONTEXT,
  SWREF_LAYOUT_ARRAY,
} swref_layout_kind_t;

typedef struct swref_typeinfo {
  swref_layout_kind_t Kind;
  unsigned Size;
  unsigned Alignment;
  unsigned Stride;
  unsigned NumFields;
} swref_typeinfo_t;

typedef struct swref_childinfo {
  const char *Name; // owned by the reflection context
  unsigned Offset;
  swref_layout_kind_t Kind;
  swift_typeref_t TR;
} swref_childinfo_t;

uint16_t swift_reflection_getSupportedMetadataVersion(void);
SwiftReflectionContextRef swift_reflection_createReflectionContext(
    void *reader_context, uint8_t pointer_size, swref_FreeBytesFunction free_bytes,
    swref_ReadBytesFunction read_bytes, swref_GetStringLengthFunction string_length,
    swref_GetSymbolAddressFunction symbol_address);
void swift_reflection_destroyReflectionContext(SwiftReflectionContextRef context);
int swift_reflection_addImage(SwiftReflectionContextRef context, swift_addr_t image_start);
swift_typeref_t swift_reflection_typeRefForMetadata(SwiftReflectionContextRef context, uintptr_t metadata);
swift_typeref_t swift_reflection_typeRefForInstance(SwiftReflectionContextRef context, uintptr_t object);
swift_typeref_t swift_reflection_typeRefForMangledTypeName(SwiftReflectionContextRef context,
                                                           const char *mangled, uint64_t length);
swref_typeinfo_t swift_reflection_infoForTypeRef(SwiftReflectionContextRef context, swift_typeref_t tr);
swref_childinfo_t swift_reflection_childOfTypeRef(SwiftReflectionContextRef context, swift_typeref_t tr,
                                                  unsigned index);
swref_typeinfo_t swift_reflection_infoForMetadata(SwiftReflectionContextRef context, uintptr_t metadata);
swref_childinfo_t swift_reflection_childOfMetadata(SwiftReflectionContextRef context, uintptr_t metadata,
                                                   unsigned index);
swref_typeinfo_t swift_reflection_infoForInstance(SwiftReflectionContextRef context, uintptr_t object);
swref_childinfo_t swift_reflection_childOfInstance(SwiftReflectionContextRef context, uintptr_t object,
                                                   unsigned index);
unsigned swift_reflection_genericArgumentCountOfTypeRef(swift_typeref_t tr);
swift_typeref_t swift_reflection_genericArgumentOfTypeRef(swift_typeref_t tr, unsigned index);
int swift_reflection_projectExistential(SwiftReflectionContextRef context, swift_addr_t existential,
                                       swift_typeref_t existential_tr, swift_typeref_t *out_instance_tr,
                                       swift_addr_t *out_start_of_data);
int swift_reflection_projectEnumValue(SwiftReflectionContextRef context, swift_addr_t enum_address,
                                      swift_typeref_t enum_tr, int *out_case_index);
/// Returns a malloc'd demangled name, or NULL; the caller frees it.
char *swift_reflection_copyDemangledNameForTypeRef(SwiftReflectionContextRef context, swift_typeref_t tr);
size_t swift_reflection_demangle(const char *mangled, size_t length, char *out, size_t max_length);

// Guarded calls (SwrefReflectionGuard.c): 0 when the call returned and *out holds its result, or
// the signal (SIGSEGV, SIGBUS, SIGILL, SIGABRT, SIGFPE) that interrupted it inside the library.
/// Installs the crash handlers and this thread's signal stack; before the first guarded call.
void swref_reflection_guard_prepare(void);
/// Called first by the crash handler: jumps back to the guarded call on this thread, if any.
int swref_reflection_guard_catch(int sig);
/// The handler again for `sig` (SA_RESETHAND took it away when the guarded fault arrived).
void swref_reinstall_crash_handler(int sig);
/// Around swref's own callbacks from the library: a fault there is swref's, for the crash handler.
void *swref_reflection_guard_suspend(void);
void swref_reflection_guard_resume(void *jump);
int swref_guarded_addImage(SwiftReflectionContextRef c, swift_addr_t start, int *out);
int swref_guarded_typeRefForMetadata(SwiftReflectionContextRef c, uintptr_t metadata, swift_typeref_t *out);
int swref_guarded_typeRefForMangledTypeName(SwiftReflectionContextRef c, const char *name, uint64_t length,
                                            swift_typeref_t *out);
int swref_guarded_copyDemangledNameForTypeRef(SwiftReflectionContextRef c, swift_typeref_t tr, char **out);
int swref_guarded_infoForTypeRef(SwiftReflectionContextRef c, swift_typeref_t tr, swref_typeinfo_t *out);
int swref_guarded_childOfTypeRef(SwiftReflectionContextRef c, swift_typeref_t tr, unsigned index, swref_childinfo_t *out);
int swref_guarded_infoForMetadata(SwiftReflectionContextRef c, uintptr_t metadata, swref_typeinfo_t *out);
int swref_guarded_childOfMetadata(SwiftReflectionContextRef c, uintptr_t metadata, unsigned index, swref_childinfo_t *out);
int swref_guarded_infoForInstance(SwiftReflectionContextRef c, uintptr_t object, swref_typeinfo_t *out);
int swref_guarded_childOfInstance(SwiftReflectionContextRef c, uintptr_t object, unsigned index, swref_childinfo_t *out);
/// The generic argument `index` of `tr` (0 when it has fewer).
int swref_guarded_genericArgumentOfTypeRef(swift_typeref_t tr, unsigned index, swift_typeref_t *out);

#endif

// MARK: Swift runtime demangler (exported by libswiftCore)

/// Returns a malloc'd demangled string (caller frees) or NULL.
char *swift_demangle(const char *mangled, size_t length, char *output, size_t *output_size, uint32_t flags);

// MARK: Unwinding with libdwfl over any memory source

typedef int (*swref_read_word_fn)(void *context, uint64_t address, uint64_t *out);
typedef void (*swref_frame_fn)(void *context, int32_t tid, uint64_t pc, uint64_t sp, uint64_t bp, int is_activation);

typedef struct swref_thread_registers {
  int32_t tid;
  uint64_t regs[17]; // DWARF order: rax rdx rcx rbx rsi rdi rbp rsp r8-r15 rip
} swref_thread_registers;

typedef struct swref_unwinder swref_unwinder;

swref_unwinder *swref_unwinder_create(void);
/// Reports an image placed at `bias` (the load bias). Returns 0 on success.
int swref_unwinder_add_image(swref_unwinder *unwinder, const char *path, uint64_t bias);
/// Unwinds each thread; `frame` is called for every frame, innermost first.
int swref_unwinder_run(swref_unwinder *unwinder, const swref_thread_registers *threads, size_t count,
                       swref_read_word_fn read_word, void *read_context, swref_frame_fn frame,
                       void *frame_context, int max_frames);
void swref_unwinder_destroy(swref_unwinder *unwinder);
const char *swref_unwinder_error(void);

// MARK: DWARF globals

typedef void (*swref_global_fn)(void *context, const char *name, uint64_t address, uint64_t size,
                                const char *type_linkage_name);
/// Calls `found` for every variable DIE with a DW_OP_addr location (address unrelocated).
/// Returns the number found, or -1 when the file has no DWARF.
int swref_dwarf_globals(const char *path, swref_global_fn found, void *context);

// MARK: Launching a traced program (swref run)

/// Forks; the child asks to be traced, stops itself, then execs argv[0] (searched in PATH).
/// Returns the child's pid, or -1. Swift cannot call fork().
pid_t swref_spawn_traced(char *const argv[]);
/// PTRACE_SETOPTIONS with PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC.
int swref_trace_exit(pid_t pid);
int swref_continue(pid_t pid, int signal);
/// PTRACE_GETEVENTMSG.
int swref_event_message(pid_t pid, unsigned long *message);

// MARK: DWARF locals

/// Where a local lives at a pc: `base` is 0 for the frame base, 1 for the CFA, 2 + N for DWARF
/// register N; the value is at base + offset (then dereferenced when `deref`).
typedef void (*swref_local_fn)(void *context, const char *name, int base, int64_t offset, int deref,
                               const char *type_linkage_name);
/// Calls `found` for each variable and parameter of the innermost function scope holding `pc`
/// (unrelocated) whose location there is a simple stack slot. `frame_base` gets the function's
/// frame base kind (same encoding as `base`, -1 when unknown). Returns the count, or -1.
int swref_dwarf_locals(const char *path, uint64_t pc, swref_local_fn found, void *context, int *frame_base);

/// The C++ ABI's demangler (libstdc++, which libswiftRemoteMirror already needs); caller frees.
char *__cxa_demangle(const char *mangled, char *output, size_t *length, int *status);

// MARK: Memory hints

/// Asks the CPU to start loading the cache line at `address`: the reference scan looks up the
/// targets of a container's elements a few dozen elements ahead, so that their misses overlap.
static inline void swref_prefetch(const void *address) { __builtin_prefetch(address); }

/// A flag one thread sets and another polls (the capture's page-faulting helper stops on it).
static inline int32_t swref_atomic_load(const int32_t *flag) { return __atomic_load_n(flag, __ATOMIC_ACQUIRE); }
static inline void swref_atomic_store(int32_t *flag, int32_t value) { __atomic_store_n(flag, value, __ATOMIC_RELEASE); }
