import CSwrefSystem
import Glibc

/// A copy-on-write snapshot of a live process: with every thread stopped, the main thread is made
/// to call fork(2) (a `syscall` instruction found in the target's own code), its registers are put
/// back, and the process resumes — stopped only for the fork's page-table copy. The child is a
/// frozen image of the whole address space; swref reads it at leisure, then kills it.
///
/// The child never runs: it is stopped from birth, traced with PTRACE_O_EXITKILL (if swref dies it
/// is killed, not let go), and its instruction pointer is aimed at exit(2) in case anything ever
/// resumed it.
public final class ForkSnapshot {
    public let parent: Int32
    public private(set) var child: Int32 = 0
    public let threads: [ThreadState]
    public let memoryMap: MemoryMap
    public private(set) var pauseNanoseconds: UInt64 = 0

    public init(pid: Int32) throws {
        parent = pid
        guard pid > 0, ProcFS.exists(pid) else { throw SwrefError.noSuchProcess(pid) }
        let session = PtraceSession(pid: pid)
        do {
            try session.stopAll()
            threads = session.registers()
            memoryMap = try ProcFS.memoryMap(pid)
            guard let main = threads.first(where: { $0.tid == pid }) ?? threads.first else { throw SwrefError.processExited(pid) }
            child = try ForkSnapshot.injectFork(thread: main, map: memoryMap, pid: pid)
        } catch {
            session.detachAll()
            throw error
        }
        pauseNanoseconds = session.detachAll()
    }

    deinit { release() }

    /// Kills the child: call as soon as its memory has been copied.
    public func release() {
        guard child > 0 else { return }
        _ = swref_kill(child, SIGKILL)
        var status: Int32 = 0
        _ = swref_wait_thread(child, &status, 0)
        swref_tracees_remove(child)
        child = 0
    }

    private static func findSyscallInstruction(_ map: MemoryMap, pid: Int32) -> UInt64? {
        // Prefer libc's code; the vDSO is a fallback.
        let code = map.regions.filter { $0.executable && $0.readable && $0.path.contains("libc.so") }
            + map.regions.filter { $0.executable && $0.readable && $0.path == "[vdso]" }
        for region in code {
            var buffer = [UInt8](repeating: 0, count: Int(min(region.size, 1 << 20)))
            let n = buffer.withUnsafeMutableBytes { LiveCapture.readRemote(pid: pid, into: $0.baseAddress!, at: region.start, count: $0.count) }
            guard n > 2 else { continue }
            for index in 0..<(n - 1) where buffer[index] == 0x0f && buffer[index + 1] == 0x05 {
                return region.start + UInt64(index)
            }
        }
        return nil
    }

    private static func injectFork(thread: ThreadState, map: MemoryMap, pid: Int32) throws -> Int32 {
        guard let syscall = findSyscallInstruction(map, pid: pid) else {
            throw SwrefError.notSupported("no syscall instruction found in the target's code to fork it")
        }
        let tid = thread.tid
        // From here until the registers are back, a SIGINT or SIGTERM must wait: the handler would
        // detach a thread that is in the middle of a foreign syscall.
        swref_hold_signals()
        defer { swref_release_signals() }
        var saved = user_regs_struct()
        guard swref_get_regs(tid, &saved) == 0 else { throw SwrefError.system("ptrace(PTRACE_GETREGS)", errno: errno, "forking PID \(pid)") }
        var regs = saved
        regs.rip = syscall
        // clone(CLONE_PARENT | SIGCHLD): a fork whose child belongs to the target's parent, so the
        // target never gets a SIGCHLD or a zombie from it (the parent of a process is its reaper).
        regs.rax = 56        // SYS_clone
        regs.rdi = 0x8000 | UInt64(SIGCHLD)
        regs.rsi = 0
        regs.rdx = 0
        regs.r10 = 0
        regs.r8 = 0
        regs.orig_rax = UInt64(bitPattern: -1) // not inside a syscall: no restart logic on the way in
        guard swref_set_options(tid, swref_option_tracefork()) == 0, swref_set_regs(tid, &regs) == 0,
              swref_continue(tid, 0) == 0 else {
            _ = swref_set_regs(tid, &saved)
            throw SwrefError.system("ptrace", errno: errno, "forking PID \(pid)")
        }
        var status: Int32 = 0
        var child: Int32 = 0
        // Expect the fork event; anything else (a signal) is put back after the step.
        var pending: Int32 = 0
        while true {
            guard swref_wait_thread(tid, &status, 0) == tid, (status & 0xff) == 0x7f else {
                throw SwrefError.processExited(pid)
            }
            let event = (status >> 16) & 0xff
            let signal = (status >> 8) & 0xff
            if event == 1 { // PTRACE_EVENT_FORK
                var message: UInt = 0
                _ = swref_event_message(tid, &message)
                child = Int32(truncatingIfNeeded: message)
                break
            }
            if event == 0 && signal != SIGTRAP { pending = signal }
            if (status >> 8) & 0xff == SIGTRAP && event == 0 {
                // The fork failed (seccomp, limits): the syscall returned without an event.
                _ = swref_set_regs(tid, &saved)
                _ = swref_set_options(tid, 0)
                throw SwrefError.notSupported("fork in the target failed")
            }
            _ = swref_continue(tid, 0)
        }
        // Finish the syscall in the parent by one step, then put everything back.
        _ = swref_single_step(tid)
        _ = swref_wait_thread(tid, &status, 0)
        _ = swref_set_regs(tid, &saved)
        _ = swref_set_options(tid, 0)
        _ = pending

        // The child: stopped from birth; killed if swref goes away; aimed at exit(2) regardless.
        swref_tracees_add(child)
        _ = swref_wait_thread(child, &status, 0)
        _ = swref_set_options(child, swref_option_exitkill())
        var childRegs = saved
        childRegs.rip = syscall
        childRegs.rax = 60 // SYS_exit
        childRegs.rdi = 0
        childRegs.orig_rax = UInt64(bitPattern: -1)
        _ = swref_set_regs(child, &childRegs)
        return child
    }

    /// Copies the child's writable memory (and small read-only data) into a snapshot; the parent
    /// is already running. Registers are the parent threads' at the moment of the fork.
    public func copy(progress: ProgressReporter? = nil) throws -> Snapshot {
        guard child > 0 else { throw SwrefError.processExited(parent) }
        let snapshot = try LiveCapture.copyStopped(pid: child, threads: threads, map: memoryMap, progress: progress,
                                                   fallbackPid: parent)
        snapshot.pauseNanoseconds = pauseNanoseconds
        return snapshot
    }
}
