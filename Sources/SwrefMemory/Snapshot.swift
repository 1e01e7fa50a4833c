import Glibc
import SwrefSupport
import Synchronization

/// A consistent image of a target: registers of every thread and a copy of its writable memory,
/// taken while the target was stopped. Read-only mappings are not copied: they cannot change, so
/// they are read on demand from a fallback (the live process, else the mapped file on disk).
public enum CaptureMethod: String, Sendable {
    case precopy = "pre-copy"
    case forkSnapshot = "fork snapshot"
    case stopTheWorld = "stop-the-world"
    case forkInPlace = "fork snapshot, read in place"
    case precopyToDisk = "pre-copy, spilled to disk"
    case atExit = "at exit"
}

public final class Snapshot: Target, DiscardableMemory {
    public let memoryMap: MemoryMap
    public let threads: [ThreadState]
    /// The process the snapshot was taken of, when it was a live one.
    public let pid: Int32?
    public let identity: TargetIdentity
    /// Where the live process's files are seen from here: its own paths, or through
    /// /proc/PID/root when it runs in another mount namespace (set by the capture).
    public var files = FileResolver.host
    /// Reads are served from swref's own copy: two scanning threads share nothing that contends.
    public var readsAreLocal: Bool { true }
    /// How long the target's threads were stopped, in nanoseconds.
    public var pauseNanoseconds: UInt64 = 0
    /// How long taking the snapshot took, stop or not, in nanoseconds.
    public var captureNanoseconds: UInt64 = 0
    /// How the image was taken, and why not the default way when it fell back.
    public var captureMethod: CaptureMethod = .stopTheWorld
    public var captureNote: String?
    /// Bytes copied while the target was stopped.
    public private(set) var copiedBytes: UInt64 = 0
    /// What fills a copy as it is read (`--capture fork-in-place`), until the copy is released.
    public private(set) var filler: CopyFiller?
    /// What such a copy cost, once it is released.
    public private(set) var inPlace: InPlaceReading?
    public var copyIsWindow: Bool { filler != nil || inPlace != nil }
    /// Why some of the copy could not be read (a lazy copy whose source went away): the analysis
    /// then reports the heap as not read, never as clean.
    public var readFailure: String? { filler?.failure }

    private var copies: [UnsafeMutableRawPointer?]
    /// Bytes mapped for each copy: the region's size, or more for a buffer prepared with headroom.
    private var mappedSizes: [Int]
    private let fallback: MemorySource?
    private let fallbackLock = SharedLock()
    /// The region the last read found: both scan threads read and write it, so it is atomic (a
    /// relaxed hint — a stale value only costs a search).
    private let lastIndex = Atomic<Int>(0)

    /// - Parameters:
    ///   - fallback: where reads of uncopied regions go; nil leaves them unreadable.
    public init(memoryMap: MemoryMap, threads: [ThreadState], pid: Int32?, fallback: MemorySource?) {
        self.memoryMap = memoryMap
        self.threads = threads
        self.pid = pid
        self.identity = TargetIdentity(pid: pid, executablePath: pid.flatMap(ProcFS.executablePath),
                                       name: pid.map { "PID \($0)" } ?? "a snapshot")
        self.fallback = fallback
        self.copies = Array(repeating: nil, count: memoryMap.regions.count)
        self.mappedSizes = Array(repeating: 0, count: memoryMap.regions.count)
    }

    private var released: [(UnsafeMutableRawPointer, Int)] = []

    deinit {
        endLazyCopy()
        for (index, copy) in copies.enumerated() where copy != nil {
            munmap(copy, mappedSizes[index])
        }
        for (copy, size) in released { munmap(copy, size) }
    }

    /// Gives the copied pages back once the references are all found (to the page pool, which
    /// builds the later phases' arrays from them, as far as it has room; the rest to the system): the rest of
    /// the analysis works on the graph, and swref's peak memory is then the larger of
    /// (copy + graph) and (graph + dominator tree), not their sum. Later reads go to the fallback.
    /// The mappings stay reserved (reading zeros) until deinit, so a stale window cannot fault.
    public func releaseCopies() {
        for index in copies.indices {
            guard let copy = copies[index] else { continue }
            let size = mappedSizes[index]
            PagePool.shared.adopt(copy, bytes: size)
            released.append((copy, size))
            copies[index] = nil
        }
        endLazyCopy()
    }

    private func endLazyCopy() {
        guard let filler else { return }
        self.filler = nil
        inPlace = filler.end()
    }

    /// Makes region `index`'s copy `buffer`, whose pages `filler` fills when they are read.
    public func adoptLazyCopy(_ index: Int, buffer: UnsafeMutableRawPointer, size: Int, filler: CopyFiller) {
        self.filler = filler
        copies[index] = buffer
        mappedSizes[index] = size
    }

    /// Gives back the copied pages wholly inside `range`, as `releaseCopies` does (they read as zeros afterwards): for a scan
    /// that is done with them and streams through the heap. Safe from several threads on disjoint ranges.
    public func discard(_ range: Range<UInt64>) {
        guard var index = MemoryMap.index(in: memoryMap.regions, containing: range.lowerBound)
                ?? memoryMap.regions.firstIndex(where: { $0.start >= range.lowerBound }) else { return }
        while index < memoryMap.regions.count, memoryMap.regions[index].start < range.upperBound {
            let region = memoryMap.regions[index]
            if let copy = copies[index] {
                let start = (max(range.lowerBound, region.start) - region.start + 4095) & ~4095
                let end = (min(range.upperBound, region.end) - region.start) & ~4095
                if end > start { PagePool.shared.adopt(copy + Int(start), bytes: Int(end - start)) }
            }
            index += 1
        }
    }

    /// Copies region `index` with `fill`, which writes the region's bytes into the buffer it is
    /// given and returns false when the target is gone. Anonymous pages that are never touched
    /// cost nothing: the buffer is a fresh private mapping.
    public func copyRegion(_ index: Int, prepared: (buffer: UnsafeMutableRawPointer, size: Int)? = nil,
                    fill: (UnsafeMutableRawPointer, MemoryRegion) throws -> Void) throws {
        let region = memoryMap.regions[index]
        let buffer = try prepared?.buffer ?? Snapshot.allocate(Int(region.size), populate: false)
        copies[index] = buffer
        mappedSizes[index] = prepared?.size ?? Int(region.size)
        try fill(buffer, region)
        copiedBytes += region.size
    }

    /// A private anonymous mapping; `populate` faults its pages in now (before a pause, not during).
    public static func allocate(_ size: Int, populate: Bool) throws -> UnsafeMutableRawPointer {
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : MAP_NORESERVE)
        let buffer = mmap(nil, size, PROT_READ | PROT_WRITE, flags, -1, 0)
        guard let buffer, buffer != MAP_FAILED else {
            throw SwrefError.system("mmap", errno: errno, "allocating \(size) bytes for the snapshot")
        }
        return buffer
    }

    /// The bytes of a copied region, for scans that walk a whole region without per-word lookups.
    public func copiedBytes(of region: MemoryRegion) -> UnsafeRawBufferPointer? {
        guard let index = MemoryMap.index(in: memoryMap.regions, containing: region.start),
              let copy = copies[index] else { return nil }
        return UnsafeRawBufferPointer(start: copy, count: Int(memoryMap.regions[index].size))
    }

    public func localBytes(containing address: UInt64) -> (start: UInt64, bytes: UnsafeRawBufferPointer)? {
        guard let index = MemoryMap.index(in: memoryMap.regions, containing: address), let copy = copies[index] else { return nil }
        let region = memoryMap.regions[index]
        return (region.start, UnsafeRawBufferPointer(start: copy, count: Int(region.size)))
    }

    public func isCopied(_ address: UInt64) -> Bool {
        guard let index = MemoryMap.index(in: memoryMap.regions, containing: address) else { return false }
        return copies[index] != nil
    }

    public func read(_ address: UInt64, count: Int, into buffer: UnsafeMutableRawPointer) -> Bool {
        let regions = memoryMap.regions
        var index = lastIndex.load(ordering: .relaxed)
        if index >= regions.count || !regions[index].contains(address) {
            guard let found = MemoryMap.index(in: regions, containing: address) else { return false }
            index = found
            lastIndex.store(found, ordering: .relaxed)
        }
        let region = regions[index]
        let available = region.end - address
        if UInt64(count) > available {
            // Spans into the next mapping: read both parts.
            return read(address, count: Int(available), into: buffer)
                && read(region.end, count: count - Int(available), into: buffer + Int(available))
        }
        if let copy = copies[index] {
            memcpy(buffer, copy + Int(address - region.start), count)
            return true
        }
        guard region.readable, let fallback else { return false }
        // The fallback opens and caches files: one reader at a time (the scan may run on two threads).
        return fallbackLock.locked { fallback.read(address, count: count, into: buffer) }
    }
}

/// What fills a snapshot's copy as it is read: ended once, when the copy is released (or the
/// snapshot goes).
public protocol CopyFiller: AnyObject {
    /// Why part of the copy could not be filled; nil while every read is served.
    var failure: String? { get }
    /// Stops filling the copy (its unfilled pages read as zeros after); what the filling cost.
    func end() -> InPlaceReading
}

/// What a copy filled as it is read cost: swref's side and the target's.
public struct InPlaceReading: Sendable {
    /// Bytes read from the frozen child into swref's copy (a stretch read again counts again).
    public var filledBytes: UInt64 = 0
    /// Most of them held at once.
    public var peakResidentBytes: UInt64 = 0
    /// First touches served.
    public var faults: UInt64 = 0
    /// The target's pages duplicated because it wrote them while the child lived (copy-on-write,
    /// charged to the target's memory and cgroup).
    public var copyOnWriteBytes: UInt64 = 0
    /// How long the child lived after the fork.
    public var childNanoseconds: UInt64 = 0
    /// A pre-copy spilled to disk: the bytes written to its unlinked file, and where.
    public var spilledBytes: UInt64 = 0
    public var spillDirectory = ""

    public init() {}
}

