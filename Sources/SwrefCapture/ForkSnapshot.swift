import CSwrefSystem
import Glibc
import SwrefImages
import SwrefMemory
import SwrefSupport

/// A copy-on-write snapshot of a live process: with every thread stopped, the main thread is made
/// to call clone(2) (a `syscall` instruction found in the target's own code), its registers are put
/// back, and the process resumes — stopped only for the fork's page-table copy. The child is a
/// frozen image of the whole address space; swref reads it at leisure, then has it killed.
///
/// The stop and the injection run in a holder process (SwrefInjectionHolder.c), not in swref: killing
/// swref at any moment, even with SIGKILL, cannot leave a thread of the target with the injected
/// registers. The child never runs: it is stopped from birth, traced by the holder with
/// PTRACE_O_EXITKILL, killed when swref is done or gone, and aimed at exit(2) regardless.
public final class ForkSnapshot {
    public let parent: Int32
    public private(set) var child: Int32 = 0
    public private(set) var threads: [ThreadState] = []
    /// The child's mappings: the target's at the instant of the fork (a map read before the stop
    /// would miss what a busy target mapped meanwhile — a grown heap).
    public private(set) var memoryMap = MemoryMap(regions: [])
    public private(set) var pauseNanoseconds: UInt64 = 0
    private var holder: Int32 = 0
    private var control: Int32 = -1

    public init(pid: Int32, stallMilliseconds: Int = 0) throws {
        parent = pid
        guard pid > 0, ProcFS.exists(pid) else { throw SwrefError.noSuchProcess(pid) }
        guard let syscall = InjectionHolder.findSyscallInstruction(try ProcFS.memoryMap(pid), pid: pid) else {
            throw SwrefError.notSupported("no syscall instruction found in the target's code to fork it")
        }
        var reportFD: Int32 = -1
        holder = swref_holder_start(pid, Int32(SWREF_HOLD_FORK), syscall, Int32(stallMilliseconds), &reportFD, &control)
        guard holder > 0 else { throw SwrefError.system("fork", errno: errno, "starting the snapshot holder") }
        defer { close(reportFD) }
        let report: swref_fork_report
        do {
            report = try InjectionHolder.readReport(reportFD, pid: pid, injected: "fork")
        } catch {
            release()
            throw error
        }
        child = report.child
        pauseNanoseconds = report.pause_ns
        var states: [ThreadState] = []
        for _ in 0..<report.thread_count {
            var record = swref_fork_thread()
            guard swref_read_all(reportFD, &record, MemoryLayout<swref_fork_thread>.size) == 0 else { break }
            let words = withUnsafeBytes(of: &record.regs) { Array($0.bindMemory(to: UInt64.self)) }
            states.append(ThreadState(tid: record.tid, userRegisters: words))
        }
        threads = states.sorted { $0.tid < $1.tid }
        if threads.isEmpty { release(); throw SwrefError.processExited(pid) }
        do {
            memoryMap = try ProcFS.memoryMap(child)
        } catch {
            release()
            throw error
        }
    }

    deinit { release() }

    /// Has the holder kill the child: call as soon as its memory has been copied.
    public func release() {
        // The end of the pipe is the signal (a write could meet a holder that already exited, and
        // SIGPIPE would end swref).
        if control >= 0 {
            close(control)
            control = -1
        }
        if holder > 0 {
            var status: Int32 = 0
            _ = retryingOnInterrupt { waitpid(holder, &status, 0) }
            holder = 0
        }
        child = 0
    }

    /// Copies the child's writable memory (and small read-only data) into a snapshot; the parent
    /// is already running. Registers are the parent threads' at the moment of the fork.
    public func copy(progress: ProgressReporter? = nil) throws -> Snapshot {
        guard child > 0 else { throw SwrefError.processExited(parent) }
        let snapshot = try LiveCapture.copyStopped(pid: child, threads: threads, map: memoryMap, progress: progress,
                                                   fallbackPid: parent, frozenChild: true)
        snapshot.pauseNanoseconds = pauseNanoseconds
        return snapshot
    }
}
