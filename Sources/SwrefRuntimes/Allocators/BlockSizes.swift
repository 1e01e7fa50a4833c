import SwrefImages
import SwrefMemory
import SwrefSupport

/// Chunk sizes, two bytes each: glibc's chunks are multiples of 16 bytes, and all but blocks of a
/// mebibyte or more (few, by their size) fit in 16 bits once divided by 16.
public struct BlockSizes: RandomAccessCollection {
    @usableFromInline var column: NarrowColumn

    /// - Parameter shift: sizes are kept divided by `1 << shift` when that is exact: 4 for glibc's
    ///   16-byte chunks, 3 for allocators with an 8-byte class (jemalloc), which would otherwise
    ///   send every 8-byte block to the side table.
    public init(shift: UInt64 = 4) { column = NarrowColumn(shift: shift) }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { column.count }

    @inlinable @inline(__always)
    public subscript(index: Int) -> UInt64 {
        get { column[index] }
        set { column[index] = newValue }
    }

    /// The sizes read through their stored rows (`NarrowColumn.withRows`), for a pass over all.
    @inlinable @inline(__always)
    public func withRows<R>(_ body: (NarrowColumn.Rows) throws -> R) rethrows -> R { try column.withRows(body) }

    @inlinable @inline(__always)
    public mutating func append(_ size: UInt64) { column.append(size) }

    public mutating func reserveCapacity(_ count: Int) { column.reserveCapacity(count) }

    /// Appends `other`'s sizes from row `start` on after these (kept with the same shift).
    public mutating func append(contentsOf other: BlockSizes, from start: Int = 0) { column.append(contentsOf: other.column, from: start) }

    public mutating func removeLast(_ count: Int) { column.removeLast(count) }

    /// Removes the rows at `indices` (ascending, distinct); the others keep their order.
    public mutating func removeRows(at indices: [Int]) { column.removeRows(at: indices) }

    /// The sizes in `order` (indices into these).
    public func permuted(_ order: [Int]) -> BlockSizes {
        var result = BlockSizes(shift: column.shift)
        result.reserveCapacity(order.count)
        for index in order { result.append(self[index]) }
        return result
    }
}
