import CSwrefSystem
import Glibc
import SwrefImages
import SwrefMemory
import SwrefSupport

/// Every thread of one process stopped with PTRACE_SEIZE + PTRACE_INTERRUPT.
///
/// Seize never sends the target a signal, and if swref dies the kernel detaches it and the
/// threads go on. `detachAll()` runs on every path out, including SIGINT/SIGTERM (through the
/// C handlers that know every tracee).
public final class PtraceSession {
    public let pid: Int32
    /// Stopped threads, each with the signal it was about to receive (to deliver on detach).
    public private(set) var stopped: [Int32: Int32] = [:]
    public private(set) var stopStarted: UInt64 = 0

    public init(pid: Int32) {
        self.pid = pid
        swref_install_detach_handlers()
    }

    deinit { detachAll() }

    public var threadIDs: [Int32] { stopped.keys.sorted() }

    /// Stops every thread, including threads that are born while we stop the others.
    public func stopAll() throws {
        stopStarted = monotonicNanoseconds()
        try seize(pid, isLeader: true)
        // A thread can be mid-clone while we work: list again until no new one appears.
        var rounds = 0
        while true {
            let tids = ProcFS.threadIDs(pid).filter { stopped[$0] == nil }
            if tids.isEmpty { break }
            rounds += 1
            for tid in tids { try seize(tid, isLeader: false) }
            if rounds > 1000 { throw SwrefError.notSupported("process \(pid) keeps creating threads; could not stop them all") }
        }
        if stopped.isEmpty { throw SwrefError.processExited(pid) }
    }

    /// Stops one thread the way the injection holder does (`swref_stop_thread`): the same
    /// timeout, the same handling of a signal that was on its way.
    private func seize(_ tid: Int32, isLeader: Bool) throws {
        // Listed first, so that a crash of swref while the thread is held detaches it.
        swref_tracees_add(tid)
        var signal: Int32 = 0
        let result = swref_stop_thread(tid, &signal)
        if result == 1 {
            // A signal-delivery stop holds a signal the thread must still get: given back on detach.
            stopped[tid] = signal
            return
        }
        swref_tracees_remove(tid)
        if result == 0 {
            if isLeader { throw ProcFS.exists(pid) ? SwrefError.processExited(pid) : SwrefError.noSuchProcess(pid) }
            return // the thread exited meanwhile
        }
        let err = -result
        if err == EPERM {
            if isLeader && !ProcFS.exists(pid) { throw SwrefError.processExited(pid) }
            throw SwrefError.permissionDenied(pid, ProcFS.permissionHint(pid))
        }
        if err == ETIMEDOUT {
            throw SwrefError.notSupported("thread \(tid) of process \(pid) did not stop within 5 s (stuck in the kernel?): let go")
        }
        throw SwrefError.system("ptrace(PTRACE_SEIZE)", errno: err, "attaching to thread \(tid)")
    }

    /// Registers of every stopped thread; threads that vanished are skipped.
    public func registers() -> [ThreadState] {
        var states: [ThreadState] = []
        for tid in threadIDs {
            var regs = user_regs_struct()
            guard swref_get_regs(tid, &regs) == 0 else { continue }
            let words = withUnsafeBytes(of: &regs) { Array($0.bindMemory(to: UInt64.self)) }
            states.append(ThreadState(tid: tid, userRegisters: words))
        }
        return states
    }

    /// Detaches every thread, handing back signals that arrived while they were stopped.
    /// Returns how long the threads were stopped, in nanoseconds.
    @discardableResult
    public func detachAll() -> UInt64 {
        guard !stopped.isEmpty else { return 0 }
        for (tid, signal) in stopped {
            _ = swref_detach(tid, signal)
            swref_tracees_remove(tid)
        }
        stopped.removeAll()
        return monotonicNanoseconds() - stopStarted
    }
}

