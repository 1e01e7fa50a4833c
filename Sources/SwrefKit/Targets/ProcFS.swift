import Glibc

/// The files of `/proc/PID` that swref reads.
public enum ProcFS {
    public static func readFile(_ path: String) -> String? {
        readBytes(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The first `count` bytes of a file, or nil when it is shorter or unreadable.
    public static func readPrefix(_ path: String, count: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, 0) }
        return n == count ? bytes : nil
    }

    public static func readBytes(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data.append(contentsOf: chunk[0..<n])
        }
        return data
    }

    public static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    public static func exists(_ pid: Int32) -> Bool {
        var info = stat()
        return stat("/proc/\(pid)", &info) == 0
    }

    public static func memoryMap(_ pid: Int32) throws -> MemoryMap {
        guard let text = readFile("/proc/\(pid)/maps") else {
            let err = errno
            if !exists(pid) { throw SwrefError.processExited(pid) }
            if err == EACCES || err == EPERM { throw SwrefError.permissionDenied(pid, permissionHint(pid)) }
            throw SwrefError.system("open", errno: err, "reading /proc/\(pid)/maps")
        }
        return MemoryMap(parsing: text)
    }

    /// The thread ids of a process, in ascending order.
    public static func threadIDs(_ pid: Int32) -> [Int32] {
        guard let dir = opendir("/proc/\(pid)/task") else { return [] }
        defer { closedir(dir) }
        var tids: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if let tid = Int32(name) { tids.append(tid) }
        }
        return tids.sorted()
    }

    /// A field of `/proc/PID/status`, such as `State` or `TracerPid`.
    public static func statusField(_ pid: Int32, _ field: String) -> String? {
        guard let text = readFile("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return line.dropFirst(field.count + 1).trimmingCharacters(in: " \t")
        }
        return nil
    }

    /// A size field of `/proc/PID/status` (`VmRSS`, `VmHWM`, `RssAnon`: "123 kB"), in bytes; 0 if absent.
    public static func statusBytes(_ pid: Int32, _ field: String) -> UInt64 {
        let value = statusField(pid, field) ?? "0 kB"
        return (UInt64(value.split(separator: " ").first ?? "0") ?? 0) * 1024
    }

    public static func executablePath(_ pid: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/\(pid)/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        buffer[n] = 0
        return String(cString: buffer)
    }

    /// Why ptrace was refused, with the fix: the user's next step. The causes that are not about
    /// permission come first (a zombie, a kernel thread, another tracer), so that the container
    /// hint is given only when it is the one that fits.
    static func permissionHint(_ pid: Int32) -> String {
        if let state = statusField(pid, "State"), state.hasPrefix("Z") || state.hasPrefix("X") {
            return "it has exited (a zombie its parent has not reaped): there is no memory left to read"
        }
        if statusField(pid, "Kthread") == "1" || (pid == 2 || statusField(pid, "PPid") == "2") && (readFile("/proc/\(pid)/cmdline") ?? "").isEmpty {
            return "it is a kernel thread: it has no user memory"
        }
        if let tracer = statusField(pid, "TracerPid"), tracer != "0" {
            return "it is already traced by PID \(tracer)" + (tracer == "\(getpid())" ? "" : " (a debugger, or another swref?)")
        }
        var hints: [String] = []
        if geteuid() != 0 {
            hints.append("run as root or give swref CAP_SYS_PTRACE (sudo setcap cap_sys_ptrace+ep $(which swref))")
        }
        if let scope = readFile("/proc/sys/kernel/yama/ptrace_scope")?.trimmingCharacters(in: " \n"),
           scope != "0" {
            hints.append("kernel.yama.ptrace_scope is \(scope)")
        }
        if hints.isEmpty {
            // Root without CAP_SYS_PTRACE (bit 19 of the effective set) is a container's default.
            let effective = statusField(getpid(), "CapEff").flatMap { UInt64($0, radix: 16) } ?? 0
            hints.append(effective & (1 << 19) == 0
                         ? "swref lacks CAP_SYS_PTRACE: in a container, allow ptrace (--cap-add=SYS_PTRACE)"
                         : "the kernel refused although swref has CAP_SYS_PTRACE (a security module or seccomp policy?)")
        }
        return hints.joined(separator: "; ")
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var sub = self[...]
        while let first = sub.first, chars.contains(first) { sub = sub.dropFirst() }
        while let last = sub.last, chars.contains(last) { sub = sub.dropLast() }
        return String(sub)
    }
}
