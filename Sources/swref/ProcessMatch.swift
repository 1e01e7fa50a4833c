import Glibc
import SwrefKit

/// Finds a process by name for `serve --match`: its command name (`/proc/PID/comm`, 15 characters
/// at most) or its executable's file name. Of several, the one started first, so that a short-lived
/// child of the same name does not take the place of the server.
enum ProcessMatch {
    static func find(_ name: String) -> Int32? {
        guard let dir = opendir("/proc") else { return nil }
        defer { closedir(dir) }
        let me = getpid()
        var best: (start: UInt64, pid: Int32)? = nil
        while let entry = readdir(dir) {
            let entryName = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            guard let pid = Int32(entryName), pid != me, matches(pid, name), let start = startTime(pid) else { continue }
            if best == nil || (start, pid) < (best!.start, best!.pid) { best = (start, pid) }
        }
        return best?.pid
    }

    static func matches(_ pid: Int32, _ name: String) -> Bool {
        let comm = (ProcFS.readFile("/proc/\(pid)/comm") ?? "").split(separator: "\n").first.map(String.init) ?? ""
        if !comm.isEmpty, comm == name || (comm.count == 15 && name.hasPrefix(comm)) { return true }
        guard let exe = ProcFS.executablePath(pid) else { return false }
        return exe.split(separator: "/").last.map(String.init) == name
    }

    /// Field 22 of /proc/PID/stat: clock ticks after boot at which the process started.
    static func startTime(_ pid: Int32) -> UInt64? {
        guard let stat = ProcFS.readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }
}
