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
