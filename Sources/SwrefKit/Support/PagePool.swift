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
final class PagePool {
    static let shared = PagePool()
    static let pageSize = 4096
    /// Below this, arrays come from malloc: a pool allocation is a mapping of its own.
    static let threshold = 1 << 20

    private let lock = SharedLock()
    /// Whole pages, each range one mapping of its own (as `mremap` moved it here).
    private var ranges: [(start: UnsafeMutableRawPointer, bytes: Int)] = []
    private var keptBytes = 0
    private var limitBytes = 0

    /// Bytes kept at most; lowering it gives the excess back now.
    var limit: Int {
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

    var kept: Int { lock.locked { keptBytes } }

    static func pages(_ bytes: Int) -> Int { (bytes + pageSize - 1) & ~(pageSize - 1) }

    /// A fresh private mapping of at least `bytes`, its front made of kept pages (their contents
    /// are stale: callers initialize what they read). Nil when the system has no address space left.
    func allocate(bytes: Int) -> UnsafeMutableRawPointer? {
        guard let base = reserve(bytes: bytes) else { return nil }
        fill(base, bytes: PagePool.pages(max(bytes, 1)))
        return base
    }

    /// Address space for `bytes`, no page of it touched: pages cost nothing until written.
    func reserve(bytes: Int) -> UnsafeMutableRawPointer? {
        guard let base = mmap(nil, PagePool.pages(max(bytes, 1)), PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), base != MAP_FAILED else { return nil }
        return base
    }

    /// Moves kept pages over `start..<start+bytes` (whole pages of a mapping from `reserve`, not yet
    /// written), from its front, as far as the pool has them.
    func fill(_ start: UnsafeMutableRawPointer, bytes size: Int) {
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

    /// Takes back a mapping of `bytes` from `allocate` or `reserve`, whose first `used` bytes were
    /// written (those are kept, room permitting; the rest goes back to the system).
    func deallocate(_ start: UnsafeMutableRawPointer, bytes: Int, used: Int? = nil) {
        let size = PagePool.pages(max(bytes, 1))
        let resident = min(PagePool.pages(used ?? size), size)
        let kept = lock.locked { () -> Int in
            let room = min(resident, limitBytes - keptBytes) & ~(PagePool.pageSize - 1)
            guard room > 0 else { return 0 }
            ranges.append((start, room))
            keptBytes += room
            return room
        }
        if kept < size { munmap(start + kept, size - kept) }
    }

    /// Takes the pages at the front of `start..<start+bytes` (whole pages, inside one private
    /// anonymous mapping) out of that mapping, as many as the pool has room for; the mapping stays
    /// and reads zeros there afterwards. Returns the bytes taken: the caller gives the rest back.
    func adopt(_ start: UnsafeMutableRawPointer, bytes: Int) -> Int {
        lock.locked {
            let room = min(bytes, limitBytes - keptBytes) & ~(PagePool.pageSize - 1)
            guard room > 0, let moved = swref_take_pages(start, room) else { return 0 }
            ranges.append((moved, room))
            keptBytes += room
            return room
        }
    }
}

extension UnsafeMutableBufferPointer where Element: BitwiseCopyable {
    /// Uninitialized room for `count` elements: from the page pool when large (the size alone
    /// decides, so `deallocatePooled` knows where to give it back).
    static func allocatePooled(capacity count: Int) -> UnsafeMutableBufferPointer<Element> {
        let bytes = Swift.max(count, 1) * MemoryLayout<Element>.stride
        guard bytes >= PagePool.threshold else { return .allocate(capacity: Swift.max(count, 1)) }
        guard let raw = PagePool.shared.allocate(bytes: bytes) else {
            fatalError("swref: out of address space for \(bytes) bytes")
        }
        return UnsafeMutableBufferPointer(start: raw.bindMemory(to: Element.self, capacity: Swift.max(count, 1)), count: count)
    }

    /// Frees what `allocatePooled(capacity:)` gave, with the same count.
    func deallocatePooled() {
        guard let base = baseAddress else { return }
        let bytes = Swift.max(count, 1) * MemoryLayout<Element>.stride
        if bytes >= PagePool.threshold {
            PagePool.shared.deallocate(UnsafeMutableRawPointer(base), bytes: bytes)
        } else {
            deallocate()
        }
    }
}
