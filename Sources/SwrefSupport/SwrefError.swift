import Glibc

/// An error swref reports to its user as one line.
///
/// A struct around a private enum so that cases can grow without breaking callers.
public struct SwrefError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Equatable {
        case noSuchProcess(pid: Int32)
        case permissionDenied(pid: Int32, detail: String)
        case processExited(pid: Int32)
        case system(call: String, errno: Int32, what: String)
        case invalidInput(String)
        case notSupported(String)
        case heapUnreadable(String)
    }

    public let kind: Kind

    public static func noSuchProcess(_ pid: Int32) -> SwrefError { .init(kind: .noSuchProcess(pid: pid)) }
    public static func permissionDenied(_ pid: Int32, _ detail: String) -> SwrefError {
        .init(kind: .permissionDenied(pid: pid, detail: detail))
    }
    public static func processExited(_ pid: Int32) -> SwrefError { .init(kind: .processExited(pid: pid)) }
    public static func system(_ call: String, errno: Int32, _ what: String) -> SwrefError {
        .init(kind: .system(call: call, errno: errno, what: what))
    }
    public static func invalidInput(_ message: String) -> SwrefError { .init(kind: .invalidInput(message)) }
    public static func notSupported(_ message: String) -> SwrefError { .init(kind: .notSupported(message)) }
    /// The target's heap could not be read: never reported as an empty, clean one (exit 125).
    public static func heapUnreadable(_ reason: String) -> SwrefError { .init(kind: .heapUnreadable(reason)) }

    public var description: String {
        switch kind {
        case .noSuchProcess(let pid):
            return "no process with PID \(pid)"
        case .permissionDenied(let pid, let detail):
            return "not permitted to trace PID \(pid): \(detail)"
        case .processExited(let pid):
            return "process \(pid) exited while it was being read"
        case .system(let call, let err, let what):
            return "\(what): \(call) failed: \(String(cString: strerror(err)))"
        case .invalidInput(let message), .notSupported(let message):
            return message
        case .heapUnreadable(let reason):
            return "the heap could not be read: \(reason)"
        }
    }

    public var isPermissionDenied: Bool {
        if case .permissionDenied = kind { return true }
        return false
    }

    public var isHeapUnreadable: Bool {
        if case .heapUnreadable = kind { return true }
        return false
    }

    public var isProcessGone: Bool {
        if case .processExited = kind { return true }
        if case .noSuchProcess = kind { return true }
        return false
    }
}
