import CSwrefSystem
import Glibc
import SwrefMemory
import SwrefSupport

/// A fork snapshot read in place (`--capture fork-in-place`): the frozen child is not copied up
/// front; swref's copy of each mapping is reserved address space that a pager (SwrefLazyPager.c)
/// fills from the child's /proc/PID/mem when the analysis first reads it, giving stretches back
/// past a resident limit. swref's memory then follows what the analysis reads — block headers,
/// objects with references — not the heap's bytes, and the kernel's copy-on-write keeps the child
/// one instant however long the analysis takes. The target pays instead: every page it writes
/// while the child lives is duplicated (charged to its memory and its cgroup), and the child lives
/// until the reference scan is done.
extension ForkSnapshot {
    /// Stretches the pager reads at once: big enough that a sequential scan faults rarely (the
    /// next stretch is filled while the scan reads this one), small enough to cost little when a
    /// lone header is wanted.
    public static let inPlaceChunk = 256 << 10

    /// A snapshot whose copy fills itself as it is read. The snapshot keeps this fork (and its
    /// child) alive until its copy is released; `residentLimit` bounds the bytes filled at once.
    public func readInPlace(residentLimit: Int) throws -> Snapshot {
        guard child > 0 else { throw SwrefError.processExited(parent) }
        let pager = try ForkPager(fork: self, residentLimit: residentLimit)
        let map = memoryMap
        let snapshot = Snapshot(memoryMap: map, threads: threads, pid: parent,
                                fallback: LiveProcessReader(pid: parent, memoryMap: map))
        do {
            for index in map.regions.indices where LiveCapture.shouldCopy(map.regions[index]) {
                let region = map.regions[index]
                let size = Int(region.size)
                let buffer = try Snapshot.allocate(size, populate: false)
                snapshot.adoptLazyCopy(index, buffer: buffer, size: size, filler: pager)
                try pager.add(buffer, region: region)
            }
            try pager.start()
        } catch {
            _ = pager.end()
            throw error
        }
        snapshot.pauseNanoseconds = pauseNanoseconds
        snapshot.captureMethod = .forkInPlace
        return snapshot
    }

    /// A process's private resident bytes (smaps_rollup): for the frozen child, the pages the
    /// target has written since the fork — the kernel gave the target new copies and left the
    /// child the old ones, which only the child now maps.
    static func privateBytes(_ pid: Int32) -> UInt64 {
        guard pid > 0, let text = ProcFS.readFile("/proc/\(pid)/smaps_rollup") else { return 0 }
        var total: UInt64 = 0
        for line in text.split(separator: "\n") where line.hasPrefix("Private_Clean:") || line.hasPrefix("Private_Dirty:") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kib = UInt64(fields[1]) { total += kib * 1024 }
        }
        return total
    }
}

/// The pager of a fork read in place (SwrefLazyPager.c) and the fork it reads: ending it stops the
/// pager, measures what the child cost, then lets the child go (in that order: the child's
/// copy-on-write pages are read from its smaps before it dies).
final class ForkPager: CopyFiller {
    private let fork: ForkSnapshot
    private let memFD: Int32
    private let pager: LazyPager
    private let born = monotonicNanoseconds()

    init(fork: ForkSnapshot, residentLimit: Int) throws {
        self.fork = fork
        memFD = open("/proc/\(fork.child)/mem", O_RDONLY | O_CLOEXEC)
        guard memFD >= 0 else { throw SwrefError.system("open", errno: errno, "reading /proc/\(fork.child)/mem") }
        do {
            pager = try LazyPager(source: memFD, residentLimit: residentLimit, serving: "the in-place copy")
        } catch {
            close(memFD)
            throw error
        }
    }

    deinit { _ = end() }

    /// Registers swref's `buffer` as the copy of the child's `region`; before `start`.
    func add(_ buffer: UnsafeMutableRawPointer, region: MemoryRegion) throws {
        try pager.add(buffer, size: region.size, offset: region.start,
                      what: "the in-place copy of \(region.path.isEmpty ? "an anonymous mapping" : region.path)")
    }

    func start() throws { try pager.start() }

    // Pages the kernel refuses in a live child (a file mapping past its file's end) read as zeros,
    // as in a copy; a child gone takes every page after it.
    var failure: String? {
        guard let stats = pager.stats, stats.lost != 0 else { return nil }
        return "\(formatBytes(stats.failed)) of the frozen copy of PID \(fork.parent) could not be read "
            + "(the copy's process went away during the analysis)"
    }

    func end() -> InPlaceReading {
        guard let stats = pager.end() else { return InPlaceReading() }
        close(memFD)
        var reading = InPlaceReading(stats)
        reading.copyOnWriteBytes = ForkSnapshot.privateBytes(fork.child)
        reading.childNanoseconds = monotonicNanoseconds() - born
        fork.release()
        return reading
    }
}
