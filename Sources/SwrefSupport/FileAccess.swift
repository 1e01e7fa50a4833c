import Glibc

/// Opening files swref is given: inputs are read only when they are regular files (a FIFO would
/// block `open` forever, a directory fails later with a misleading error), and outputs are never
/// written through a symbolic link (root writing through a link someone left in /tmp).
public enum FileAccess {
    /// A descriptor for reading `path`, refused unless it is a regular file. Opened non-blocking,
    /// so a FIFO cannot hang the open; the type is checked on the descriptor, not the name.
    public static func openRegular(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw SwrefError.system("open", errno: errno, "opening \(path)") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = errno
            close(fd)
            throw SwrefError.system("fstat", errno: error, "opening \(path)")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw SwrefError.invalidInput("\(path): not a regular file (\(kind(info.st_mode)))")
        }
        return fd
    }

    /// Checks, before the target is touched, that `path` can be written as `create` would: its
    /// directory exists and is writable, and the path is not a symbolic link or anything but a
    /// regular file.
    public static func checkWritable(_ path: String) throws {
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFREG else {
                throw SwrefError.invalidInput("\(path): not a regular file (\(kind(info.st_mode))); not written")
            }
            guard access(path, W_OK) == 0 else { throw SwrefError.system("access", errno: errno, "writing \(path)") }
            return
        }
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        guard access(directory.isEmpty ? "/" : directory, W_OK) == 0 else {
            throw SwrefError.system("access", errno: errno, "writing \(path)")
        }
    }

    /// A descriptor for writing `path` from its start: never through a symbolic link (O_NOFOLLOW),
    /// only a regular file, and with `mode` whatever the file had before (a core must not stay
    /// world-readable because an old file was).
    public static func create(_ path: String, mode: mode_t) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, mode)
        guard fd >= 0 else {
            let error = errno
            if error == ELOOP { throw SwrefError.invalidInput("\(path): a symbolic link; not written") }
            throw SwrefError.system("open", errno: error, "writing \(path)")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw SwrefError.invalidInput("\(path): not a regular file; not written")
        }
        guard fchmod(fd, mode) == 0, ftruncate(fd, 0) == 0 else {
            let error = errno
            close(fd)
            throw SwrefError.system("open", errno: error, "writing \(path)")
        }
        return fd
    }

    private static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: return "a FIFO"
        case S_IFDIR: return "a directory"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFLNK: return "a symbolic link"
        default: return "not a regular file"
        }
    }

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
