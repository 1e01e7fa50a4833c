import CSwrefSystem
import Glibc

/// An array of plain values for the per-object and per-reference columns of a large heap: once
/// past `PagePool.threshold` bytes its storage comes from the page pool and grows by moving its
/// pages (`mremap`), so neither growth nor a fresh page costs a copy or a fault when the pool has
/// pages. Copy-on-write, like `Array`.
public struct PooledArray<Element: BitwiseCopyable>: RandomAccessCollection, MutableCollection {
    private final class Storage {
        var base: UnsafeMutablePointer<Element>
        var count = 0
        var capacity: Int
        /// Pooled storage: bytes from the front already offered kept pages (the rest is untouched
        /// address space, filled as the count reaches it).
        var filled = 0

        init(capacity wanted: Int) {
            capacity = Swift.max(wanted, 1)
            base = Storage.allocate(capacity)
        }

        deinit { Storage.release(base, capacity: capacity, used: Swift.max(filled, Storage.bytes(count))) }

        static func bytes(_ capacity: Int) -> Int { capacity * MemoryLayout<Element>.stride }
        static func isPooled(_ capacity: Int) -> Bool { bytes(capacity) >= PagePool.threshold }

        /// Pooled storage is address space from the pool: its pages are filled as they are reached.
        static func allocate(_ capacity: Int) -> UnsafeMutablePointer<Element> {
            guard isPooled(capacity) else { return .allocate(capacity: capacity) }
            guard let raw = PagePool.shared.reserve(bytes: bytes(capacity)) else {
                fatalError("swref: out of address space for \(bytes(capacity)) bytes")
            }
            return raw.bindMemory(to: Element.self, capacity: capacity)
        }

        static func release(_ base: UnsafeMutablePointer<Element>, capacity: Int, used: Int) {
            UnsafeMutableBufferPointer(start: base, count: capacity).deallocatePooled(used: used)
        }

        /// Kept pages under the elements up to `end`, ahead of their first write.
        @inline(__always)
        func prepare(upTo end: Int) {
            let needed = Storage.bytes(end)
            guard needed > filled, Storage.isPooled(capacity) else { return }
            let total = PagePool.pages(Storage.bytes(capacity))
            let next = Swift.min(total, PagePool.pages(Swift.max(needed, filled + Swift.max(filled / 4, PagePool.threshold))))
            PagePool.shared.fill(UnsafeMutableRawPointer(base) + filled, bytes: next - filled)
            filled = next
        }

        func reserve(_ wanted: Int) {
            guard wanted > capacity else { return }
            let grown = Storage.allocate(wanted)
            let written = PagePool.pages(Swift.max(filled, Storage.bytes(count)))
            // Pooled to pooled: the written pages move, with no copy, when the kernel can move them;
            // the hole they leave is not unmapped (another thread may map something there by now).
            if Storage.isPooled(capacity), Storage.isPooled(wanted),
               swref_move_pages(UnsafeMutableRawPointer(base), written, UnsafeMutableRawPointer(grown)) != nil {
                let total = PagePool.pages(Storage.bytes(capacity))
                if total > written { munmap(UnsafeMutableRawPointer(base) + written, total - written) }
                filled = written
            } else {
                let oldBase = base, oldCapacity = capacity
                base = grown
                capacity = wanted
                filled = 0
                prepare(upTo: count)
                grown.update(from: oldBase, count: count)
                Storage.release(oldBase, capacity: oldCapacity, used: written)
                return
            }
            base = grown
            capacity = wanted
        }

        func copy() -> Storage {
            let copy = Storage(capacity: count)
            copy.prepare(upTo: count)
            copy.base.update(from: base, count: count)
            copy.count = count
            return copy
        }
    }

    private var storage: Storage

    public init() { storage = Storage(capacity: 0) }

    public init(repeating value: Element, count: Int) {
        storage = Storage(capacity: count)
        storage.prepare(upTo: count)
        storage.base.initialize(repeating: value, count: count)
        storage.count = count
    }

    /// Up to `capacity` elements that `body` writes, setting how many it wrote.
    public init(unsafeUninitializedCapacity capacity: Int,
                initializingWith body: (UnsafeMutableBufferPointer<Element>, inout Int) throws -> Void) rethrows {
        storage = Storage(capacity: capacity)
        storage.prepare(upTo: capacity)
        var count = 0
        try body(UnsafeMutableBufferPointer(start: storage.base, count: capacity), &count)
        precondition(count <= capacity, "wrote past the capacity")
        storage.count = count
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { storage.count }
    public var capacity: Int { storage.capacity }

    public subscript(index: Int) -> Element {
        @inline(__always) get {
            precondition(UInt(bitPattern: index) < UInt(bitPattern: storage.count), "index out of range")
            return storage.base[index]
        }
        @inline(__always) set {
            precondition(UInt(bitPattern: index) < UInt(bitPattern: storage.count), "index out of range")
            makeUnique()
            storage.base[index] = newValue
        }
    }

    @inline(__always)
    private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    public mutating func reserveCapacity(_ wanted: Int) {
        makeUnique()
        storage.reserve(wanted)
    }

    @inline(__always)
    public mutating func append(_ element: Element) {
        makeUnique()
        if storage.count == storage.capacity { storage.reserve(storage.capacity * 2) }
        storage.prepare(upTo: storage.count + 1)
        storage.base[storage.count] = element
        storage.count += 1
    }

    /// `append` without the copy-on-write check, for a builder that owns the array and does not
    /// copy it while appending (tens of millions of references: the check is a runtime call).
    @inline(__always)
    public mutating func appendUnshared(_ element: Element) {
        assert(isKnownUniquelyReferenced(&storage))
        if storage.count == storage.capacity { storage.reserve(storage.capacity * 2) }
        storage.prepare(upTo: storage.count + 1)
        storage.base[storage.count] = element
        storage.count += 1
    }

    public mutating func append<C: Collection>(contentsOf elements: C) where C.Element == Element {
        makeUnique()
        storage.reserve(Swift.max(storage.count + elements.count, storage.capacity))
        storage.prepare(upTo: storage.count + elements.count)
        for element in elements {
            storage.base[storage.count] = element
            storage.count += 1
        }
    }

    /// Appends every element of `other` in one copy.
    public mutating func append(contentsOf other: PooledArray<Element>) {
        makeUnique()
        let added = other.count
        storage.reserve(Swift.max(storage.count + added, storage.capacity))
        storage.prepare(upTo: storage.count + added)
        other.withUnsafeBufferPointer { source in
            if let from = source.baseAddress { (storage.base + storage.count).update(from: from, count: added) }
        }
        storage.count += added
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.base, count: storage.count))
    }

    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Element>) throws -> R) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.base, count: storage.count))
    }
}
