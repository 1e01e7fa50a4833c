/// Maps a path as the target saw it to the file to open on this machine: under a sysroot when
/// one is given (a core from another machine or container), else the path itself. Every reader of
/// a target's files (symbols, DWARF, the unwinder, the reflection library) goes through one, so
/// that none of them opens the host's file of the same name by mistake.
public struct FileResolver: Sendable {
    /// The directory the target's root file system is under, or "" for this machine's own.
    public let sysroot: String
    /// Paths given on the command line as they are (an EXE for a core): never under the sysroot.
    public let exactPaths: Set<String>

    public init(sysroot: String = "", exactPaths: Set<String> = []) {
        self.sysroot = sysroot.hasSuffix("/") ? String(sysroot.dropLast()) : sysroot
        self.exactPaths = exactPaths
    }

    /// The file to open for `path`, a path inside the target.
    public func hostPath(_ path: String) -> String {
        guard !sysroot.isEmpty, path.hasPrefix("/"), !exactPaths.contains(path) else { return path }
        return sysroot + path
    }
}

/// A live process's files: its own paths, on this machine.
extension FileResolver {
    public static let host = FileResolver()
}
