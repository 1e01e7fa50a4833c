import CSwrefSystem
import Glibc

/// Takes a `Snapshot` of a live process: stop every thread, copy registers and writable memory,
/// resume. The analysis then runs on the copy while the target goes on.
public enum LiveCapture {
    public struct Options {
        public var progress: ProgressReporter?
        /// Test hook: stay stopped this long after stopping, so a test can kill the target mid-read.
        public var stallMilliseconds: Int = 0

        public init(progress: ProgressReporter? = nil, stallMilliseconds: Int = 0) {
            self.progress = progress
            self.stallMilliseconds = stallMilliseconds
        }
    }

    public static func capture(pid: Int32, options: Options = Options()) throws -> Snapshot {
        guard pid > 0, ProcFS.exists(pid) else { throw SwrefError.noSuchProcess(pid) }
        guard pid != getpid() else { throw SwrefError.invalidInput("swref cannot attach to itself (PID \(pid))") }
        let session = PtraceSession(pid: pid)
        defer { session.detachAll() }
        try session.stopAll()
        if options.stallMilliseconds > 0 { usleep(UInt32(options.stallMilliseconds) * 1000) }

        let map = try ProcFS.memoryMap(pid)
        let threads = session.registers()
        if threads.isEmpty { throw SwrefError.processExited(pid) }
        let snapshot = Snapshot(memoryMap: map, threads: threads, pid: pid,
                                fallback: LiveProcessReader(pid: pid, memoryMap: map))
        let toCopy = map.regions.indices.filter { shouldCopy(map.regions[$0]) }
        let total = toCopy.reduce(UInt64(0)) { $0 + map.regions[$1].size }
        var done: UInt64 = 0
        for index in toCopy {
            try snapshot.copyRegion(index) { buffer, region in
                try copy(pid: pid, region: region, into: buffer)
            }
            done += map.regions[index].size
            options.progress?.update("copying memory", done: done, total: total, unit: .bytes)
        }
        snapshot.pauseNanoseconds = session.detachAll()
        return snapshot
    }

    /// One process_vm_readv; the number of bytes read, or -1.
    public static func readRemote(pid: Int32, into buffer: UnsafeMutableRawPointer, at address: UInt64, count: Int) -> Int {
        swref_read_remote(pid, buffer, address, count)
    }

    /// Writable memory can change once the target runs again, so it is copied while stopped;
    /// read-only file mappings cannot, and are read later.
    static func shouldCopy(_ region: MemoryRegion) -> Bool {
        guard region.readable else { return false }
        if region.path == "[vvar]" || region.path == "[vsyscall]" || region.path.hasPrefix("[vvar") { return false }
        return region.writable || !region.isFileBacked
    }

    private static func copy(pid: Int32, region: MemoryRegion, into buffer: UnsafeMutableRawPointer) throws {
        let batch = 16 << 20
        var offset = 0
        let size = Int(region.size)
        while offset < size {
            let length = min(batch, size - offset)
            let n = swref_read_remote(pid, buffer + offset, region.start + UInt64(offset), length)
            if n == length { offset += length; continue }
            if n < 0 && errno == ESRCH { throw SwrefError.processExited(pid) }
            // Some page refused (a file mapping past EOF, a hole): go page by page, zeros for the rest.
            let end = offset + length
            var page = offset + max(0, n)
            while page < end {
                let pageLength = min(4096, end - page)
                if swref_read_remote(pid, buffer + page, region.start + UInt64(page), pageLength) < 0 && errno == ESRCH {
                    throw SwrefError.processExited(pid)
                }
                page += pageLength
            }
            offset = end
        }
        if !ProcFS.exists(pid) { throw SwrefError.processExited(pid) }
    }
}
