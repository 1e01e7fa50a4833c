import Glibc

/// Calls `call` again while it fails with EINTR (a signal arrived during it: SIGCHLD, the crash
/// handler's neighbours, a terminal resize): the one retry loop swref has for system calls.
@inline(__always)
public func retryingOnInterrupt<R: SignedInteger>(_ call: () -> R) -> R {
    while true {
        let result = call()
        if result >= 0 || errno != EINTR { return result }
    }
}

extension FileAccess {
    /// Writes all of `bytes` to `fd`, or throws naming `path`.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = retryingOnInterrupt { write(fd, bytes.baseAddress! + done, bytes.count - done) }
            guard n > 0 else { throw SwrefError.system("write", errno: errno, "writing \(path)") }
            done += n
        }
    }
}
