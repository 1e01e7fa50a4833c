import CSwrefSystem
import Glibc

/// Resident pages that swref has finished with, kept to back its next large arrays.
///
/// On the virtual machines swref runs on, a page touched for the first time costs 1–2 µs (the
/// kernel clears it, the host backs it): a 1 GiB analysis makes some 350 000 such faults, a fifth
/// of its time. Most of them follow the copy of the target's heap being given back, page range by
/// page range, as the reference scan passes. Instead those ranges come here, and the arrays the
/// later phases make are built from them by moving page-table entries (`mremap`), with no fault
/// and no copy.
///
/// Pages here still count in swref's resident memory, so the pool keeps at most `limit` bytes
/// (the analysis sets it to what its later phases will hold); beyond that, pages go back to the
/// system. Taking from the pool never adds to the resident size, so the peak stays where the copy
/// put it.
public final class PagePool {
    public static let shared = PagePool()
    @inlinable public static var pageSize: Int { 4096 }
    /// Below this, arrays come from malloc: a pool allocation is a mapping of its own.
    @inlinable public static var threshold: Int { 64 << 10 }

    private let lock = SharedLock()
    /// Whole resident pages, in mappings only the pool uses now.
    private var ranges: [(start: UnsafeMutableRawPointer, bytes: Int)] = []
    private var keptBytes = 0
    private var limitBytes = 0

    /// Bytes kept at most; lowering it gives the excess back now.
    public var limit: Int {
        get { lock.locked { limitBytes } }
        set {
            lock.locked {
                limitBytes = newValue
                while keptBytes > limitBytes, let last = ranges.popLast() {
                    munmap(last.start, last.bytes)
                    keptBytes -= last.bytes
                }
            }
        }
    }

    public var kept: Int { lock.locked { keptBytes } }

    public static func pages(_ bytes: Int) -> Int { (bytes + pageSize - 1) & ~(pageSize - 1) }

    /// A fresh private mapping of at least `bytes`, its front made of kept pages (their contents
    /// are stale: callers initialize what they read). Nil when the system has no address space left.
    public func allocate(bytes: Int) -> UnsafeMutableRawPointer? {
        guard let base = reserve(bytes: bytes) else { return nil }
        fill(base, bytes: PagePool.pages(max(bytes, 1)))
        return base
    }

    /// Address space for `bytes`, no page of it touched: pages cost nothing until written.
    public func reserve(bytes: Int) -> UnsafeMutableRawPointer? {
        guard let base = mmap(nil, PagePool.pages(max(bytes, 1)), PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), base != MAP_FAILED else { return nil }
        return base
    }

    /// Moves kept pages over `start..<start+bytes` (whole pages of a mapping from `reserve`, not yet
    /// written), from its front, as far as the pool has them.
    public func fill(_ start: UnsafeMutableRawPointer, bytes size: Int) {
        lock.locked {
            var offset = 0
            while offset < size, let last = ranges.popLast() {
                let moved = min(last.bytes, size - offset)
                keptBytes -= last.bytes
                guard swref_move_pages(last.start, moved, start + offset) != nil else {
                    munmap(last.start, last.bytes)
                    continue
                }
                if moved < last.bytes {
                    ranges.append((last.start + moved, last.bytes - moved))
                    keptBytes += last.bytes - moved
                }
                offset += moved
            }
        }
    }

    /// Takes back a mapping of `bytes` from `allocate` or `reserve`, of which only the first `used`
    /// bytes may have been touched: its resident pages are kept, room permitting; the rest goes
    /// back to the system.
    public func deallocate(_ start: UnsafeMutableRawPointer, bytes: Int, used: Int? = nil) {
        let size = PagePool.pages(max(bytes, 1))
        let given = keepResident(start, bytes: min(PagePool.pages(used ?? size), size), take: { pointer, _ in pointer }) { munmap($0, $1) }
        if size > given { munmap(start + given, size - given) }
    }

    /// Takes the resident pages of `start..<start+bytes` (whole pages, inside one private anonymous
    /// mapping) out of that mapping, as many as the pool has room for, and gives the rest back to
    /// the system: the mapping stays and reads zeros there afterwards. Pages never touched (a
    /// thread stack's unused part) are not taken: the pool holds only pages that cost no fault.
    public func adopt(_ start: UnsafeMutableRawPointer, bytes: Int) {
        let given = keepResident(start, bytes: bytes, take: { swref_take_pages($0, $1) }) { madvise($0, $1, MADV_DONTNEED) }
        if bytes > given { madvise(start + given, bytes - given, MADV_DONTNEED) }
    }

    /// Keeps the resident runs of `start..<start+bytes` while there is room, each as `take` hands
    /// it over (nil: not kept), and gives the gaps before them back with `giveBack`. Returns where
    /// it stopped: the caller gives back the rest.
    private func keepResident(_ start: UnsafeMutableRawPointer, bytes: Int,
                              take: (UnsafeMutableRawPointer, Int) -> UnsafeMutableRawPointer?,
                              giveBack: (UnsafeMutableRawPointer, Int) -> Void) -> Int {
        var given = 0
        for run in PagePool.residentRuns(start, bytes: bytes) {
            if run.lowerBound > given { giveBack(start + given, run.lowerBound - given) }
            let kept = lock.locked { () -> Int in
                let room = min(run.count, limitBytes - keptBytes) & ~(PagePool.pageSize - 1)
                guard room > 0, let moved = take(start + run.lowerBound, room) else { return 0 }
                ranges.append((moved, room))
                keptBytes += room
                return room
            }
            given = run.lowerBound + kept
        }
        return given
    }

    /// The byte ranges of `start..<start+bytes` whose pages are resident (all of it if unknown).
    public static func residentRuns(_ start: UnsafeMutableRawPointer, bytes: Int) -> [Range<Int>] {
        let pages = bytes / pageSize
        guard pages > 0 else { return [] }
        var vector = [UInt8](repeating: 0, count: pages)
        guard mincore(start, bytes, &vector) == 0 else { return [0..<bytes] }
        var runs: [Range<Int>] = []
        var page = 0
        while page < pages {
            guard vector[page] & 1 != 0 else { page += 1; continue }
            let first = page
            while page < pages && vector[page] & 1 != 0 { page += 1 }
            runs.append(first * pageSize..<page * pageSize)
        }
        return runs
    }
}

extension UnsafeMutableBufferPointer where Element: BitwiseCopyable {
    /// Uninitialized room for `count` elements: from the page pool when large (the size alone
    /// decides, so `deallocatePooled` knows where to give it back).
    public static func allocatePooled(capacity count: Int) -> UnsafeMutableBufferPointer<Element> {
        let bytes = Swift.max(count, 1) * MemoryLayout<Element>.stride
        guard bytes >= PagePool.threshold else { return .allocate(capacity: Swift.max(count, 1)) }
        guard let raw = PagePool.shared.allocate(bytes: bytes) else {
            fatalError("swref: out of address space for \(bytes) bytes")
        }
        return UnsafeMutableBufferPointer(start: raw.bindMemory(to: Element.self, capacity: Swift.max(count, 1)), count: count)
    }

    /// Frees what `allocatePooled(capacity:)` gave, with the same count; `used`: the bytes from the
    /// front that may have been written, when not all.
    public func deallocatePooled(used: Int? = nil) {
        guard let base = baseAddress else { return }
        let bytes = Swift.max(count, 1) * MemoryLayout<Element>.stride
        if bytes >= PagePool.threshold {
            PagePool.shared.deallocate(UnsafeMutableRawPointer(base), bytes: bytes, used: used)
        } else {
            deallocate()
        }
    }
}
