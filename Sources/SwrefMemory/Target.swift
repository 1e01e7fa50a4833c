/// One process to analyse, as the layers above see it: its memory, its threads' registers, who it
/// is, and where its files are. A live process's snapshot and a core file both are one (Delve's
/// `proc.Target`); nothing above this layer knows which it has.
public protocol Target: MemorySource {
    var threads: [ThreadState] { get }
    var identity: TargetIdentity { get }
    /// Where the files the target mapped are on this machine (a core's sysroot).
    var files: FileResolver { get }
    /// Why part of the target's memory could not be read after all (a lazily read copy whose
    /// source went away); nil when every read was served.
    var readFailure: String? { get }
}

extension Target {
    public var readFailure: String? { nil }
}

/// Who a target is, for messages and profiles.
public struct TargetIdentity: Sendable {
    /// The process, live or when its core was taken.
    public var pid: Int32?
    /// Its executable as the target named it (inside the target's file system).
    public var executablePath: String?
    /// How messages name it: "PID 42", "core of PID 42 (server)".
    public var name: String

    public init(pid: Int32?, executablePath: String?, name: String) {
        self.pid = pid
        self.executablePath = executablePath
        self.name = name
    }
}

/// Memory that is a copy swref holds and can give back once scanned (a snapshot): the scan gives
/// each stretch back behind it, so the copy shrinks while the graph grows.
public protocol DiscardableMemory: MemorySource {
    /// Gives back the copy of `range`; later reads of it go to the fallback.
    func discard(_ range: Range<UInt64>)
    /// Gives back the whole copy.
    func releaseCopies()
    /// The copy is a window that fills as it is read and gives back what it read before: its pages
    /// would be freed anyway, so keeping them for later arrays (the page pool) only adds to the peak.
    var copyIsWindow: Bool { get }
}

extension DiscardableMemory {
    public var copyIsWindow: Bool { false }
}
