import Glibc
import SwrefSupport

/// Reads file-backed mappings from the files on disk: the fallback for read-only code and
/// metadata once a process has gone on (or for a core that left them out).
public final class MappedFileReader: MemorySource {
    public let memoryMap: MemoryMap
    private var descriptors: [String: Int32] = [:]
    /// Files that could not be opened, so that we say so once.
    public private(set) var missingFiles: Set<String> = []
    private let resolver: FileResolver

    public init(memoryMap: MemoryMap, files: FileResolver = .host) {
        self.memoryMap = memoryMap
        self.resolver = files
    }

    deinit { for fd in descriptors.values where fd >= 0 { close(fd) } }

    public func read(_ address: UInt64, count: Int, into buffer: UnsafeMutableRawPointer) -> Bool {
        guard let region = memoryMap.region(containing: address), region.isFileBacked,
              address + UInt64(count) <= region.end else { return false }
        let fd = descriptor(for: region.path)
        guard fd >= 0 else { return false }
        // The offset comes from a core's file notes: anything, checked before it becomes an off_t.
        let (position, overflow) = region.fileOffset.addingReportingOverflow(address - region.start)
        guard !overflow, position <= UInt64(Int64.max) - UInt64(count) else { return false }
        let offset = off_t(position)
        var done = 0
        while done < count {
            let n = retryingOnInterrupt { pread(fd, buffer + done, count - done, offset + off_t(done)) }
            // Past the end of the file a mapping reads as zeros (the tail of the last page).
            if n <= 0 { memset(buffer + done, 0, count - done); return true }
            done += n
        }
        return true
    }

    private func descriptor(for path: String) -> Int32 {
        if let fd = descriptors[path] { return fd }
        let fd = (try? FileAccess.openRegular(resolver.hostPath(path))) ?? -1
        descriptors[path] = fd
        if fd < 0 { missingFiles.insert(path) }
        return fd
    }
}
