import Glibc

/// Files swref reads whole or in part: `/proc` entries (swref's own or a target's status), profiles.
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
            let n = chunk.withUnsafeMutableBytes { raw in retryingOnInterrupt { Glibc.read(fd, raw.baseAddress, raw.count) } }
            if n <= 0 { break }
            data.append(contentsOf: chunk[0..<n])
        }
        return data
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
}
