import CSwrefSystem
import Glibc
import SwrefMemory
import SwrefSupport

/// Where a pre-copy spilled to disk (`--capture precopy-to-disk`) keeps its copy: an unlinked
/// file (`O_TMPFILE`, mode 0600) in the temporary directory, which no other process can open and
/// which is gone when swref exits, however it exits. Each mapping's copy is a stretch of it,
/// written through a shared mapping: its pages are page cache, which the kernel writes out and
/// drops when memory is short, instead of swref's own memory. The copy's mappings are dropped
/// after each step (the pages stay in the file), so swref's resident size does not grow with
/// the heap.
public final class SpillFile {
    public let fd: Int32
    public let directory: String
    private var next: UInt64 = 0
    /// The sizes of the mappings the file holds copies of (their holes included).
    public private(set) var reservedBytes: UInt64 = 0
    /// Bytes the file refused to take (`write`).
    public private(set) var unwrittenBytes: UInt64 = 0

    /// The directory the copy goes to: `$TMPDIR`, else /tmp.
    public static var defaultDirectory: String {
        if let value = getenv("TMPDIR").map({ String(cString: $0) }), !value.isEmpty { return value }
        return "/tmp"
    }

    /// Free bytes for an unprivileged writer in `directory`, nil if it cannot be told.
    public static func freeBytes(_ directory: String) -> UInt64? {
        var stats = statvfs()
        guard statvfs(directory, &stats) == 0 else { return nil }
        return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    }

    public init(directory: String = SpillFile.defaultDirectory) throws {
        self.directory = directory
        fd = swref_open_unlinked(directory)
        guard fd >= 0 else { throw SwrefError.system("open", errno: errno, "an unlinked file in \(directory) for the copy (O_TMPFILE)") }
    }

    deinit { close(fd) }

    /// A stretch of the file for a mapping of `size` bytes, with room to grow (a busy heap grows
    /// between rounds): the file is sparse, so room costs nothing until written.
    public func reserve(_ size: Int) throws -> (offset: UInt64, capacity: Int) {
        let huge = 2 << 20
        let capacity = (size + max(size / 4, 64 << 20) + huge - 1) / huge * huge
        let offset = next
        guard ftruncate(fd, off_t(offset) + off_t(capacity)) == 0 else {
            throw SwrefError.system("ftruncate", errno: errno, "growing the copy's file in \(directory)")
        }
        next += UInt64(capacity)
        reservedBytes += UInt64(size)
        return (offset, capacity)
    }

    /// A shared mapping of `length` bytes of the file at `offset`.
    public func map(offset: UInt64, length: Int) throws -> UnsafeMutableRawPointer {
        let buffer = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(offset))
        guard let buffer, buffer != MAP_FAILED else {
            throw SwrefError.system("mmap", errno: errno, "mapping \(length) bytes of the copy's file")
        }
        return buffer
    }

    /// Zeroes `length` bytes at `offset` (a hole: the disk blocks go back).
    public func zero(offset: UInt64, length: Int) {
        guard swref_punch_hole(fd, offset, UInt64(length)) != 0 else { return }
        // A filesystem without holes: write zeros.
        let zeros = [UInt8](repeating: 0, count: 1 << 16)
        var done = 0
        while done < length {
            let n = min(zeros.count, length - done)
            guard zeros.withUnsafeBytes({ write($0.baseAddress!, length: n, at: offset + UInt64(done)) }) else { return }
            done += n
        }
    }

    /// Writes `length` bytes at `offset`; false if the file refused some (a full disk), which are
    /// counted in `unwrittenBytes`: the copy read back is then not the target's.
    @discardableResult
    public func write(_ bytes: UnsafeRawPointer, length: Int, at offset: UInt64) -> Bool {
        var done = 0
        while done < length {
            let n = pwrite(fd, bytes + done, length - done, off_t(offset) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                unwrittenBytes += UInt64(length - done)
                return false
            }
            done += n
        }
        return true
    }
}

/// The pager that reads a spilled copy back (SwrefLazyPager.c, reading the file where it reads a
/// frozen child's memory for a fork read in place): swref's copy of each mapping fills from the
/// file as the analysis reads it, within the same resident window.
final class SpillPager: CopyFiller {
    private let spill: SpillFile
    private let pager: LazyPager

    init(spill: SpillFile, residentLimit: Int) throws {
        self.spill = spill
        pager = try LazyPager(source: spill.fd, residentLimit: residentLimit, serving: "the copy read back from disk")
    }

    deinit { _ = end() }

    func add(_ buffer: UnsafeMutableRawPointer, size: Int, fileOffset: UInt64) throws {
        try pager.add(buffer, size: UInt64(size), offset: fileOffset, what: "the copy read back from disk")
    }

    func start() throws { try pager.start() }

    var failure: String? {
        if spill.unwrittenBytes > 0 {
            return "\(formatBytes(spill.unwrittenBytes)) of the copy could not be written to \(spill.directory) (the disk is full)"
        }
        guard let stats = pager.stats, stats.failed != 0 else { return nil }
        return "\(formatBytes(stats.failed)) of the copy spilled to \(spill.directory) could not be read back"
    }

    func end() -> InPlaceReading {
        guard let stats = pager.end() else { return InPlaceReading() }
        var reading = InPlaceReading(stats)
        reading.spilledBytes = spill.reservedBytes
        reading.spillDirectory = spill.directory
        return reading
    }
}
