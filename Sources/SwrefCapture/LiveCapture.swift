import CSwrefSystem
import Glibc
import SwrefImages
import SwrefMemory
import SwrefSupport

/// Takes a `Snapshot` of a live process — registers of every thread and a copy of its writable
/// memory as of one instant — by pre-copy, fork snapshot or stop-the-world (docs/architecture.md).
/// The analysis then runs on the copy while the target goes on.
public enum LiveCapture {
    public struct Options {
        public var progress: ProgressReporter?
        /// Test hook: stay stopped this long after stopping (pre-copy and fork snapshot: with the
        /// injected registers in place), so a test can kill the target or swref at that moment.
        public var stallMilliseconds: Int = 0
        /// The way to try first: pre-copy with write tracking (pause: the last round's copy), a fork
        /// snapshot (pause: the fork's page-table copy) or stop-the-world (pause: the whole copy).
        /// A way the target or kernel does not allow falls back to the next one, with a note.
        public var method: CaptureMethod = .precopy
        /// Called with the target's mappings (and why the other ways failed, when it is a fallback) before stop-the-world
        /// maps its buffers, which cost every copied mapping's whole size: the memory budget's
        /// check, since a pre-copy's estimate counted only the pages that exist.
        public var beforeStopTheWorld: ((MemoryMap, _ fallbackNote: String?) throws -> Void)? = nil
        /// A fork snapshot read in place holds at most about this much of the child's memory at once.
        public var inPlaceResidentLimit = Int(CaptureEstimate.inPlaceResidentBytes)

        public init(progress: ProgressReporter? = nil, stallMilliseconds: Int = 0, method: CaptureMethod = .precopy) {
            self.progress = progress
            self.stallMilliseconds = stallMilliseconds
            self.method = method
        }
    }

    public static func capture(pid: Int32, options: Options = Options()) throws -> Snapshot {
        let started = monotonicNanoseconds()
        let snapshot = try takeSnapshot(pid: pid, options: options)
        snapshot.captureNanoseconds = monotonicNanoseconds() - started
        snapshot.files = FileResolver(sysroot: ProcFS.fileRoot(of: pid))
        return snapshot
    }

    private static func takeSnapshot(pid: Int32, options: Options) throws -> Snapshot {
        guard pid > 0, ProcFS.exists(pid) else { throw SwrefError.noSuchProcess(pid) }
        guard pid != getpid() else { throw SwrefError.invalidInput("swref cannot attach to itself (PID \(pid))") }
        var notes: [String] = []
        if options.method == .precopy {
            do {
                let tracking = try PrecopySnapshot(pid: pid, stallMilliseconds: options.stallMilliseconds)
                return try tracking.capture(progress: options.progress)
            } catch let error as SwrefError where !error.isProcessGone && !error.isPermissionDenied {
                notes.append("no pre-copy (\(error))")
            }
        }
        // Only when asked: the frozen child is made the target's parent's child (CLONE_PARENT, so
        // the target itself never sees it), and that parent gets a SIGCHLD and a zombie it never
        // started — a supervisor blocked in wait() gets back a process it does not know. A
        // pre-copy that is not possible falls back to stopping the world instead.
        if options.method == .precopyToDisk {
            do {
                let tracking = try PrecopySnapshot(pid: pid, stallMilliseconds: options.stallMilliseconds,
                                                   spill: try SpillFile())
                return try tracking.capture(progress: options.progress, residentLimit: options.inPlaceResidentLimit)
            } catch let error as SwrefError where !error.isProcessGone && !error.isPermissionDenied {
                notes.append("no pre-copy to disk (\(error))")
            }
        }
        // The other way that needs no copy in memory, when a pre-copy to disk was not possible.
        if options.method == .forkInPlace || options.method == .precopyToDisk {
            do {
                let fork = try ForkSnapshot(pid: pid, stallMilliseconds: options.stallMilliseconds)
                let snapshot = try fork.readInPlace(residentLimit: options.inPlaceResidentLimit)
                if !notes.isEmpty { snapshot.captureNote = notes.joined(separator: "; ") + "; read a fork of it in place instead" }
                return snapshot
            } catch let error as SwrefError where !error.isProcessGone && !error.isPermissionDenied {
                notes.append("no fork snapshot read in place (\(error))")
            }
        }
        if options.method == .forkSnapshot {
            do {
                let fork = try ForkSnapshot(pid: pid, stallMilliseconds: options.stallMilliseconds)
                defer { fork.release() }
                let snapshot = try fork.copy(progress: options.progress)
                snapshot.captureMethod = .forkSnapshot
                if !notes.isEmpty { snapshot.captureNote = notes.joined(separator: "; ") + "; took a fork snapshot instead" }
                return snapshot
            } catch let error as SwrefError where !error.isProcessGone && !error.isPermissionDenied {
                notes.append("no fork snapshot (\(error))")
            }
        }
        let fallbackNote = notes.isEmpty ? nil : notes.joined(separator: "; ") + "; stopped the target for the whole copy instead"
        // Buffers for the copy are mapped and faulted in before the target stops, so the pause is the
        // copy itself (page faults on fresh memory would roughly double it).
        let map = try ProcFS.memoryMap(pid)
        try options.beforeStopTheWorld?(map, notes.isEmpty ? nil : notes.joined(separator: "; "))
        var prepared = try PreparedBuffers(map)
        defer { prepared.unmapRest() }
        let session = PtraceSession(pid: pid)
        defer { session.detachAll() }
        try session.stopAll()
        if options.stallMilliseconds > 0 { usleep(UInt32(options.stallMilliseconds) * 1000) }

        let threads = session.registers()
        if threads.isEmpty { throw SwrefError.processExited(pid) }
        let snapshot = try copyStopped(pid: pid, threads: threads, progress: options.progress, prepared: &prepared,
                                       reader: RemoteReader(pid: pid, viaProcMem: false), sparse: false)
        snapshot.pauseNanoseconds = session.detachAll()
        snapshot.captureMethod = .stopTheWorld
        snapshot.captureNote = fallbackNote
        return snapshot
    }

    /// Buffers mapped and faulted in before the stop, by region start. Writable anonymous regions
    /// (the heap) get a quarter more, up to 256 MiB: a busy target's heap grows between this moment
    /// and the stop, and a buffer too small would be replaced by fresh pages faulted in during the
    /// pause (3 s instead of 0.2 at 1 GiB while the target writes).
    public struct PreparedBuffers {
        private var buffers: [UInt64: (buffer: UnsafeMutableRawPointer, size: Int)] = [:]

        public init(_ map: MemoryMap) throws {
            do {
                for region in map.regions where shouldCopy(region) {
                    var size = Int(region.size)
                    if region.writable && !region.isFileBacked { size += min(size / 4, 256 << 20) & ~4095 }
                    buffers[region.start] = (try Snapshot.allocate(size, populate: true), size)
                }
            } catch {
                unmapRest()
                throw error
            }
        }

        public init() {}

        /// The buffer for `region` if one of its start is large enough; it is the snapshot's then.
        public mutating func take(_ region: MemoryRegion) -> (buffer: UnsafeMutableRawPointer, size: Int)? {
            guard let entry = buffers[region.start], entry.size >= Int(region.size) else { return nil }
            buffers[region.start] = nil
            return entry
        }

        public mutating func unmapRest() {
            for entry in buffers.values { munmap(entry.buffer, entry.size) }
            buffers = [:]
        }
    }

    /// Copies a process whose threads are already stopped (by us, or at its exit).
    /// - Parameter everything: copy read-only mappings too (the process is about to go away).
    /// - Parameters:
    ///   - map: the mappings to copy (default: the process's own).
    ///   - fallbackPid: the process that serves reads of what was not copied (default: `pid`).
    ///   - frozenChild: `pid` is a fork snapshot's child: read it through /proc/PID/mem. Its pages are
    ///     shared copy-on-write with the target, and process_vm_readv pins the pages it reads, which
    ///     makes the kernel unshare (copy) every one of them first: a second copy of the heap in the
    ///     child and seconds of system time at 1 GiB. /proc/PID/mem reads without pinning.
    public static func copyStopped(pid: Int32, threads: [ThreadState], everything: Bool = false, map: MemoryMap? = nil,
                                   progress: ProgressReporter? = nil, fallbackPid: Int32? = nil,
                                   frozenChild: Bool = false) throws -> Snapshot {
        var none = PreparedBuffers()
        var reader = RemoteReader(pid: pid, viaProcMem: frozenChild)
        defer { reader.close() }
        return try copyStopped(pid: pid, threads: threads, everything: everything, map: map, progress: progress,
                               fallbackPid: fallbackPid, prepared: &none, reader: reader, sparse: true)
    }

    /// As above, taking buffers from `prepared` for the regions they fit.
    /// - Parameter sparse: copy only the pages that exist (not worth its pagemap read while the target
    ///   waits, and pointless into buffers already faulted in).
    public static func copyStopped(pid: Int32, threads: [ThreadState], everything: Bool = false, map: MemoryMap? = nil,
                            progress: ProgressReporter? = nil, fallbackPid: Int32? = nil,
                            prepared: inout PreparedBuffers, reader: RemoteReader,
                            sparse: Bool) throws -> Snapshot {
        let map = try map ?? ProcFS.memoryMap(pid)
        let snapshot = Snapshot(memoryMap: map, threads: threads, pid: fallbackPid ?? pid,
                                fallback: LiveProcessReader(pid: fallbackPid ?? pid, memoryMap: map))
        let toCopy = map.regions.indices.filter { shouldCopy(map.regions[$0], everything: everything) }
        let total = toCopy.reduce(UInt64(0)) { $0 + map.regions[$1].size }
        var done: UInt64 = 0
        for index in toCopy {
            try snapshot.copyRegion(index, prepared: prepared.take(map.regions[index])) { buffer, region in
                try copyPages(reader, region: region, into: buffer, sparse: sparse)
            }
            done += map.regions[index].size
            progress?.update("copying memory", done: done, total: total, unit: .bytes)
        }
        return snapshot
    }

    /// One process_vm_readv; the number of bytes read, or -1.
    public static func readRemote(pid: Int32, into buffer: UnsafeMutableRawPointer, at address: UInt64, count: Int) -> Int {
        swref_read_remote(pid, buffer, address, count)
    }

    /// Writable memory can change once the target runs again, so it is copied while stopped.
    /// Read-only file mappings cannot change and are read later — except small non-executable ones,
    /// which are copied too: they may be RELRO data (relocated, then made read-only), which the file
    /// on disk does not hold as the process sees it.
    public static func shouldCopy(_ region: MemoryRegion, everything: Bool = false) -> Bool {
        guard region.readable else { return false }
        if region.path == "[vvar]" || region.path == "[vsyscall]" || region.path.hasPrefix("[vvar") { return false }
        if everything || region.writable || !region.isFileBacked { return true }
        return !region.executable && region.size <= 1 << 20
    }

    /// Copies an anonymous region's pages that exist — present or swapped out, by /proc/PID/pagemap — and
    /// leaves the rest as the buffer's untouched zero pages: an 8 MiB thread stack that used 20 KiB
    /// costs 20 KiB, not 8 MiB (reading a never-touched page would only copy zeros).
    public static func copyPages(_ reader: RemoteReader, region: MemoryRegion, into buffer: UnsafeMutableRawPointer,
                          sparse: Bool) throws {
        let page = 4096
        let pages = Int(region.size) / page
        let pid = reader.pid
        // File-backed pages never touched still hold the file's bytes: those are read whole.
        let pagemap = sparse && pages >= 16 && !region.isFileBacked ? open("/proc/\(pid)/pagemap", O_RDONLY | O_CLOEXEC) : -1
        guard pagemap >= 0 else {
            try copy(reader, region: region, range: 0..<Int(region.size), into: buffer)
            if !ProcFS.exists(pid) { throw SwrefError.processExited(pid) }
            return
        }
        defer { close(pagemap) }
        // In windows of 64 Ki pages (256 MiB): the flags of a huge reservation never sit in memory at once.
        let window = 1 << 16
        for first in stride(from: 0, to: pages, by: window) {
            let count = min(window, pages - first)
            guard let present = residentPages(pagemap, at: region.start + UInt64(first * page), pages: count) else {
                try copy(reader, region: region, range: (first * page)..<((first + count) * page), into: buffer)
                continue
            }
            var runs: [Range<Int>] = []
            var index = 0
            while index < count {
                guard present[index] else { index += 1; continue }
                var end = index + 1
                while end < count && present[end] { end += 1 }
                runs.append(((first + index) * page)..<((first + end) * page))
                index = end
            }
            try copy(reader, region: region, runs: runs, into: buffer)
        }
        if !ProcFS.exists(pid) { throw SwrefError.processExited(pid) }
    }

    /// Copies `runs` of the region. Into fresh memory, the kernel's page faults and zeroing cost
    /// about as much as the copy itself (~0.4 s per GiB here), so on a large stretch a second core
    /// faults the pages in ahead of the copy (`MADV_POPULATE_WRITE`, Linux 5.14+), the same pages
    /// the copy will write and no others.
    private static func copy(_ reader: RemoteReader, region: MemoryRegion, runs: [Range<Int>], into buffer: UnsafeMutableRawPointer) throws {
        func copyRuns() throws { for run in runs { try copy(reader, region: region, range: run, into: buffer) } }
        guard runs.reduce(0, { $0 + $1.count }) >= 32 << 20, Parallel.hasSecondCore else { return try copyRuns() }
        var failure: Error? = nil
        let stop = StopFlag()
        Parallel.run({
            do {
                try copyRuns()
            } catch {
                failure = error
            }
            stop.set()
        }, {
            for run in runs {
                var offset = run.lowerBound
                while offset < run.upperBound && !stop.isSet {
                    let length = min(4 << 20, run.upperBound - offset)
                    if madvise(buffer + offset, length, 23 /* MADV_POPULATE_WRITE */) != 0 { return }
                    offset += length
                }
            }
        })
        if let failure { throw failure }
    }

    /// One flag per page: bit 63 (present) or 62 (swapped) of its pagemap entry — unless it maps the
    /// kernel's shared zero page, or is the marker userfaultfd write protection leaves in a page
    /// never touched (swap type 0x1f with offset 1, and bit 57): the copy reads as zeros there
    /// already, and a pre-copy would otherwise copy every page of a thread's 8 MiB stack. Nil if
    /// unreadable.
    private static func residentPages(_ pagemap: Int32, at address: UInt64, pages: Int) -> [Bool]? {
        var entries = [UInt64](repeating: 0, count: pages)
        let wanted = pages * 8
        let got = entries.withUnsafeMutableBytes { pread(pagemap, $0.baseAddress, wanted, off_t(address / 4096 * 8)) }
        guard got == wanted else { return nil }
        let zero = zeroPageFrame.map { $0 | 1 << 63 } ?? 0
        let marker: UInt64 = 1 << 62 | 1 << 57 | 0x3f
        return entries.map { entry in
            entry & (3 << 62) != 0 && entry & (1 << 63 | frameMask) != zero
                && entry & (3 << 62 | 1 << 57 | frameMask) != marker
        }
    }

    public static let frameMask: UInt64 = (1 << 55) - 1

    /// The page frame of the shared zero page, which an anonymous page that was only ever read maps
    /// (a write-protected range the kernel filled in: a pre-copy leaves every page of a thread's
    /// 8 MiB stack mapped to it); nil when pagemap hides frames (without CAP_SYS_ADMIN).
    public static let zeroPageFrame: UInt64? = {
        guard let page = mmap(nil, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), page != MAP_FAILED else { return nil }
        defer { munmap(page, 4096) }
        let pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        guard pagemap >= 0 else { return nil }
        defer { close(pagemap) }
        var entry: UInt64 = 0
        guard madvise(page, 4096, 22 /* MADV_POPULATE_READ */) == 0,
              pread(pagemap, &entry, 8, off_t(UInt(bitPattern: page) / 4096 * 8)) == 8,
              entry >> 63 == 1, entry & frameMask != 0 else { return nil }
        return entry & frameMask
    }()

    private static func copy(_ reader: RemoteReader, region: MemoryRegion, range: Range<Int>, into buffer: UnsafeMutableRawPointer) throws {
        let pid = reader.pid
        let batch = 16 << 20
        var offset = range.lowerBound
        let size = range.upperBound
        while offset < size {
            let length = min(batch, size - offset)
            let n = reader.read(into: buffer + offset, at: region.start + UInt64(offset), count: length)
            if n == length { offset += length; continue }
            if n < 0 && errno == ESRCH { throw SwrefError.processExited(pid) }
            // Some page refused (a file mapping past EOF, a hole): go page by page, zeros for the rest.
            let end = offset + length
            var page = offset + max(0, n)
            while page < end {
                let pageLength = min(4096, end - page)
                if reader.read(into: buffer + page, at: region.start + UInt64(page), count: pageLength) < 0 && errno == ESRCH {
                    throw SwrefError.processExited(pid)
                }
                page += pageLength
            }
            offset = end
        }
    }
}

/// Reads another process's memory: process_vm_readv, or pread on /proc/PID/mem.
public struct RemoteReader {
    public let pid: Int32
    private var memFD: Int32 = -1

    public init(pid: Int32, viaProcMem: Bool) {
        self.pid = pid
        if viaProcMem { memFD = open("/proc/\(pid)/mem", O_RDONLY | O_CLOEXEC) }
    }

    /// Bytes read (a short count at a hole), or -1 with errno.
    public func read(into buffer: UnsafeMutableRawPointer, at address: UInt64, count: Int) -> Int {
        guard memFD >= 0 else { return swref_read_remote(pid, buffer, address, count) }
        var done = 0
        while done < count {
            let n = retryingOnInterrupt { pread(memFD, buffer + done, count - done, off_t(Int64(bitPattern: address &+ UInt64(done)))) }
            if n <= 0 { return done > 0 ? done : (n < 0 ? -1 : 0) }
            done += n
        }
        return done
    }

    public mutating func close() {
        if memFD >= 0 { Glibc.close(memFD) }
        memFD = -1
    }
}

/// Tells a helper thread that the work it runs ahead of is over.
private final class StopFlag {
    private let value: UnsafeMutablePointer<Int32>
    init() {
        value = .allocate(capacity: 1)
        value.initialize(to: 0)
    }
    deinit { value.deallocate() }
    var isSet: Bool { swref_atomic_load(value) != 0 }
    func set() { swref_atomic_store(value, 1) }
}
