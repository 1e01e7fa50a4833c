import Glibc
import SwrefMemory
import SwrefSupport

/// What a capture and the analysis after it would cost swref in memory, from the target's mappings
/// alone: read before the target is touched (docs/performance.md, "Memory budget").
public struct MemoryEstimate: Sendable, Equatable {
    /// The copy of the target's memory in swref (anonymous memory of swref's own).
    public var copyBytes: UInt64
    /// What the analysis adds beyond the copy (0 when nothing is analysed: `swref dump`).
    public var analysisBytes: UInt64
    /// A pre-copy to disk: the copy's bytes, which go to its file instead of swref's memory.
    public var diskBytes: UInt64 = 0
    /// What the figures were made from, for the messages.
    public var basis: String

    public var total: UInt64 { copyBytes + analysisBytes }

    public init(copyBytes: UInt64, analysisBytes: UInt64, diskBytes: UInt64 = 0, basis: String) {
        self.copyBytes = copyBytes
        self.analysisBytes = analysisBytes
        self.diskBytes = diskBytes
        self.basis = basis
    }
}

public enum CaptureEstimate {
    /// swref's own start-up, images and reflection: a 35-block target peaks at 31 MiB.
    public static let analysisFixedBytes: UInt64 = 32 << 20

    /// Beyond the copy of a live target: measured 0.12× (1 GiB), 0.21× (a target writing while
    /// captured) and 0.22× (256 MiB, most of it the fixed part) of the heap — the later phases'
    /// arrays are built from the copy's own pages (the page pool). A quarter, plus the fixed part.
    public static func analysisBytes(copy: UInt64) -> UInt64 { analysisFixedBytes + copy / 4 }

    /// Beyond a core's mapping (page cache, which the kernel can drop and read again, not swref's
    /// anonymous memory): the object table, graph and dominator arrays, which have no copy to take
    /// pages from. Measured: 166 MiB of anonymous memory at its peak for a 242 MiB heap of 2.5 M
    /// blocks (the bench, about 100 bytes a block): 0.56× beyond the fixed part. Three quarters
    /// of the heap's bytes; a heap of smaller blocks needs more.
    public static func coreAnalysisBytes(heap: UInt64) -> UInt64 { analysisFixedBytes + heap / 4 * 3 }

    /// The estimate for capturing live process `pid` with `method` (and analysing it when `analysis`).
    /// Pre-copy and fork copy only the pages that exist: the resident and swapped bytes of each
    /// mapping swref copies (`/proc/PID/smaps`); stop-the-world maps and faults in a buffer of each
    /// mapping's whole size before it stops the target (and a quarter more for the heap).
    public static func live(pid: Int32, method: CaptureMethod, analysis: Bool) throws -> MemoryEstimate {
        guard pid > 0, ProcFS.exists(pid) else { throw SwrefError.noSuchProcess(pid) }
        let copy: UInt64
        let basis: String
        if method != .stopTheWorld, let smaps = ProcFS.readFile("/proc/\(pid)/smaps"), !smaps.isEmpty {
            copy = copyBytes(smaps: smaps)
            basis = "resident"
        } else {
            copy = copyBytes(map: try ProcFS.memoryMap(pid), method: .stopTheWorld)
            basis = "mapped"
        }
        if method == .forkInPlace || method == .precopyToDisk {
            // The copy fills as it is read, held to the pager's limit; the analysis' arrays have no
            // copy to take pages from (as for a core).
            return MemoryEstimate(copyBytes: min(copy, inPlaceResidentBytes), analysisBytes: analysis ? analysisBytes(copy: copy) : 0,
                                  diskBytes: method == .precopyToDisk ? copy : 0,
                                  basis: "in place")
        }
        return MemoryEstimate(copyBytes: copy, analysisBytes: analysis ? analysisBytes(copy: copy) : 0, basis: basis)
    }

    /// What a fork read in place holds of the child at once (`LiveCapture.Options.inPlaceResidentLimit`).
    public static let inPlaceResidentBytes: UInt64 = 32 << 20

    /// The bytes a pre-copy or fork snapshot copies, from the text of `/proc/PID/smaps`: for every
    /// mapping `LiveCapture.shouldCopy` takes, its `Rss` and `Swap` if anonymous, its size if a file's
    /// (file mappings are read whole).
    public static func copyBytes(smaps: String) -> UInt64 {
        var total: UInt64 = 0
        var region: MemoryRegion? = nil
        var present: UInt64 = 0
        func flush() {
            if let region { total += regionBytes(region, present: present, method: .precopy) }
        }
        for line in smaps.split(separator: "\n") {
            if let next = MemoryMap.parseLine(line) {
                flush()
                region = next
                present = 0
            } else if line.hasPrefix("Rss:") || line.hasPrefix("Swap:") {
                let fields = line.split(separator: " ")
                present += (fields.count >= 2 ? UInt64(fields[1]) ?? 0 : 0) * 1024
            }
        }
        flush()
        return total
    }

    /// The bytes a capture copies from `map`, with no resident sizes: every mapping whole.
    public static func copyBytes(map: MemoryMap, method: CaptureMethod) -> UInt64 {
        map.regions.reduce(0) { $0 + regionBytes($1, present: nil, method: method) }
    }

    /// One mapping's share: what `LiveCapture` copies of it (and for stop-the-world, what
    /// `PreparedBuffers` maps for it beforehand).
    public static func regionBytes(_ region: MemoryRegion, present: UInt64?, method: CaptureMethod) -> UInt64 {
        guard LiveCapture.shouldCopy(region) else { return 0 }
        if method == .stopTheWorld {
            let extra = region.writable && !region.isFileBacked ? min(region.size / 4, 256 << 20) & ~4095 : 0
            return region.size + extra
        }
        guard let present, !region.isFileBacked else { return region.size }
        return min(present, region.size)
    }

    /// For a core file: it is mapped (page cache, not swref's anonymous memory), so only the
    /// analysis' arrays count, estimated from the core's writable anonymous mappings (the heap),
    /// and no more than the core file's size (a kernel core leaves holes out).
    public static func core(_ map: MemoryMap, fileSize: UInt64) -> MemoryEstimate {
        let heap = map.regions.reduce(UInt64(0)) { $0 + ($1.writable && !$1.isFileBacked ? $1.size : 0) }
        return MemoryEstimate(copyBytes: 0, analysisBytes: coreAnalysisBytes(heap: min(heap, fileSize)), basis: "core")
    }
}
