import CSwrefSystem
import Glibc
import SwrefImages
import SwrefMemory
import SwrefSupport

/// A program started under ptrace and stopped as it exits (PTRACE_O_TRACEEXIT), while its
/// memory is still intact. Children it starts are not followed.
public final class TracedLaunch {
    public let pid: Int32
    /// Whether the program image was exec'd (false: the exec failed and the fork exited).
    public private(set) var execed = false

    /// How the program ended: its exit code, or the signal that killed it.
    public enum Ending: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)

        /// The status a shell reports: the code, or 128 + the signal.
        public var shellStatus: Int32 {
            switch self {
            case .exited(let code): return code
            case .signaled(let signal): return 128 + signal
            }
        }

        public init(waitStatus status: Int32) {
            self = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
        }
    }

    public init(arguments: [String]) throws {
        guard !arguments.isEmpty else { throw SwrefError.invalidInput("no program to run") }
        var argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        pid = swref_spawn_traced(&argv)
        guard pid > 0 else { throw SwrefError.system("fork", errno: errno, "starting \(arguments[0])") }
        var status: Int32 = 0
        guard swref_wait_thread(pid, &status, 0) == pid, (status & 0xff) == 0x7f else {
            throw SwrefError.invalidInput("\(arguments[0]) could not be started under ptrace")
        }
        guard swref_trace_exit(pid) == 0 else { throw SwrefError.system("ptrace(PTRACE_SETOPTIONS)", errno: errno, "tracing \(arguments[0])") }
        _ = swref_continue(pid, 0)
    }

    /// Runs the program until it is about to exit, passing on every signal it receives.
    /// Returns its ending, read while it is stopped; nil if it vanished without an exit stop.
    public func runUntilExit() -> Ending? {
        var status: Int32 = 0
        while true {
            guard swref_wait_thread(pid, &status, 0) == pid else { return nil }
            if (status & 0xff) != 0x7f { return Ending(waitStatus: status) } // already gone
            let signal = (status >> 8) & 0xff
            let event = (status >> 16) & 0xff
            if signal == SIGTRAP && event == 6 { // PTRACE_EVENT_EXIT
                var message: UInt = 0
                _ = swref_event_message(pid, &message)
                return Ending(waitStatus: Int32(truncatingIfNeeded: message))
            }
            if signal == SIGTRAP && event == 4 { execed = true } // PTRACE_EVENT_EXEC
            if signal == SIGTRAP && event != 0 { _ = swref_continue(pid, 0); continue }
            _ = swref_continue(pid, signal == SIGTRAP ? 0 : signal)
        }
    }

    /// Registers of the stopped program's main thread.
    public func registers() -> [ThreadState] {
        var regs = user_regs_struct()
        guard swref_get_regs(pid, &regs) == 0 else { return [] }
        let words = withUnsafeBytes(of: &regs) { Array($0.bindMemory(to: UInt64.self)) }
        return [ThreadState(tid: pid, userRegisters: words)]
    }

    /// Lets the program finish and reaps it.
    public func finish() -> Ending? {
        _ = swref_continue(pid, 0)
        var status: Int32 = 0
        while swref_wait_thread(pid, &status, 0) == pid {
            if (status & 0xff) != 0x7f { return Ending(waitStatus: status) }
            _ = swref_continue(pid, 0)
        }
        return nil
    }
}
