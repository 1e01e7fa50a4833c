import Glibc
import SwrefImages
import SwrefMemory
import SwrefSupport

/// What of `/proc/PID` only a target needs: its maps, threads, and why ptrace was refused.
extension ProcFS {
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

    /// Why ptrace was refused, with the fix: the user's next step. The causes that are not about
    /// permission come first (a zombie, a kernel thread, another tracer), so that the container
    /// hint is given only when it is the one that fits.
    public static func permissionHint(_ pid: Int32) -> String {
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

    /// Where the target's files are seen from here: "" in swref's own mount namespace; in another
    /// (a sidecar container sharing only the PID namespace) through /proc/PID/root, so that the images
    /// read are the target's own (their build ids are checked against what it mapped either way).
    public static func fileRoot(of pid: Int32) -> String {
        func namespace(_ path: String) -> String? {
            var buffer = [CChar](repeating: 0, count: 256)
            let n = readlink(path, &buffer, buffer.count - 1)
            return n > 0 ? String(cString: buffer) : nil
        }
        guard let own = namespace("/proc/self/ns/mnt"), let target = namespace("/proc/\(pid)/ns/mnt"), own != target else { return "" }
        return "/proc/\(pid)/root"
    }
}
