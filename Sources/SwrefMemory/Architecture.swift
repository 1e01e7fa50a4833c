// swref reads x86-64 Linux targets, and is built for x86-64 only. What assumes it, so that a port
// knows where to look:
//   ThreadState            the user_regs_struct layout (registers by index, fs_base for TLS)
//   CoreFile, CoreWriter   EM_X86_64 and the NT_PRSTATUS register layout
//   ReferenceScanner       user addresses below 2^47 (the pointer-tag mask)
//   RootFinder             the TLS block below fs_base (variant II)
//   StackUnwinder          DWARF register numbers of rip, rsp, rbp
//   RipOperands            the RIP-relative instructions allocators reach their globals with
//   Runtimes/*Layout       struct offsets of glibc, jemalloc, tcmalloc, mimalloc and the Swift
//                          runtime as built for x86-64
#if !arch(x86_64)
#error("swref reads x86-64 Linux processes and cores only: see Sources/SwrefMemory/Architecture.swift")
#endif
