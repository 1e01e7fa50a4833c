import SwrefImages
import SwrefMemory
import SwrefSupport

/// Block addresses, four bytes each instead of eight: rows come in groups of 4096, and a row keeps
/// its offset, in 16-byte units, from its group's base. Addresses ascend, so a group spans little
/// address space: up to 32 GiB from the first base, and as much again from a second base for the
/// one jump a group may hold (the main heap to the mmap area). Anything else (a third window, an
/// address off the 16-byte grain) goes to a side table.
public struct BlockAddresses: RandomAccessCollection {
    @inlinable static var groupShift: Int { 12 }
    @inlinable static var second: UInt32 { 0x8000_0000 }
    @inlinable static var wideMark: UInt32 { .max }

    @usableFromInline var offsets: [UInt32] = []
    /// Per group: the first base (its first row's address) and the second (0 while unused).
    @usableFromInline var bases: [UInt64] = []
    @usableFromInline var secondBases: [UInt64] = []
    @usableFromInline var wide: [Int: UInt64] = [:]
    /// Whether any address ever stored was off the 16-byte grain (kept when such rows are removed).
    @usableFromInline var offGrain = false

    public init() {}

    public init(_ values: [UInt64]) {
        reserveCapacity(values.count)
        for value in values { append(value) }
    }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { offsets.count }

    @inlinable @inline(__always)
    public subscript(index: Int) -> UInt64 {
        get {
            let offset = offsets[index], group = index >> BlockAddresses.groupShift
            if offset < BlockAddresses.second { return bases[group] &+ UInt64(offset) << 4 }
            return offset == BlockAddresses.wideMark ? wide[index]! : secondBases[group] &+ UInt64(offset & ~BlockAddresses.second) << 4
        }
        set {
            if newValue & 15 != 0 { offGrain = true }
            let group = index >> BlockAddresses.groupShift
            if offsets[index] == BlockAddresses.wideMark { wide[index] = nil }
            if let offset = encode(newValue, from: bases[group]) {
                offsets[index] = offset
                return
            }
            if secondBases[group] == 0 { secondBases[group] = newValue }
            if let offset = encode(newValue, from: secondBases[group]) {
                offsets[index] = offset | BlockAddresses.second
            } else {
                offsets[index] = BlockAddresses.wideMark
                wide[index] = newValue
            }
        }
    }

    /// The offset in 16-byte units when `value` sits on that grain less than 32 GiB above `base`.
    @inlinable @inline(__always)
    func encode(_ value: UInt64, from base: UInt64) -> UInt32? {
        guard value >= base, value & 15 == base & 15 else { return nil }
        let units = (value - base) >> 4
        return units < UInt64(BlockAddresses.second) ? UInt32(units) : nil
    }

    /// Whether every address is a multiple of 16. Off-grain rows are not only in the side table:
    /// a group's first or second base may be off the grain, and its rows with it (jemalloc's and
    /// mimalloc's 8-byte blocks).
    public var allOnSixteenByteGrain: Bool { !offGrain }

    @inlinable @inline(__always)
    public mutating func append(_ value: UInt64) {
        if value & 15 != 0 { offGrain = true }
        if offsets.count >> BlockAddresses.groupShift == bases.count {
            bases.append(value)
            secondBases.append(0)
        }
        if let offset = encode(value, from: bases[bases.count - 1]) {
            offsets.append(offset)
        } else {
            offsets.append(0)
            self[offsets.count - 1] = value
        }
    }

    public mutating func reserveCapacity(_ count: Int) { offsets.reserveCapacity(count) }

    /// Appends `other`'s addresses from row `start` on after these, as appending each would. They
    /// land in other groups, against other bases: a row's offset moves by the difference between
    /// its base and its new group's, and only the rows that do not fit so (a side table's, a second
    /// base's, one too far off) are encoded again, one by one, in order.
    public mutating func append(contentsOf other: BlockAddresses, from start: Int = 0) {
        let shift = BlockAddresses.groupShift, second = BlockAddresses.second
        // Row `row` of `other` becomes row `row + moved` here.
        let first = offsets.count, moved = first - start
        // The groups that begin among the new rows: their first rows are their bases.
        var groupStart = ((first + (1 << shift) - 1) >> shift) << shift
        while groupStart < other.count + moved {
            let base = other[groupStart - moved]
            if base & 15 != 0 { offGrain = true }
            bases.append(base)
            secondBases.append(0)
            groupStart += 1 << shift
        }
        offsets.append(contentsOf: repeatElement(0, count: other.count - start))
        let bases = bases
        var misfits: [Int] = []
        offsets.withUnsafeMutableBufferPointer { offsets in
            var row = start
            while row < other.count {
                // To where the row's new group or its group in `other` ends, whichever comes first.
                let group = (row + moved) >> shift
                let end = Swift.min(other.count, (group + 1) << shift - moved, (row >> shift + 1) << shift)
                let from = other.bases[row >> shift], to = bases[group]
                let delta = from >= to ? Int64((from - to) >> 4) : -Int64((to - from) >> 4)
                let sameGrain = from & 15 == to & 15
                while row < end {
                    let offset = other.offsets[row]
                    let units = Int64(offset) + delta
                    if sameGrain && offset < second && units >= 0 && units < Int64(second) {
                        offsets[row + moved] = UInt32(units)
                    } else {
                        misfits.append(row + moved)
                    }
                    row += 1
                }
            }
        }
        for row in misfits { self[row] = other[row - moved] }
    }

    public mutating func removeLast(_ count: Int) {
        if !wide.isEmpty { for index in (offsets.count - count)..<offsets.count where offsets[index] == BlockAddresses.wideMark { wide[index] = nil } }
        offsets.removeLast(count)
        let groups = (offsets.count + (1 << BlockAddresses.groupShift) - 1) >> BlockAddresses.groupShift
        bases.removeLast(bases.count - groups)
        secondBases.removeLast(secondBases.count - groups)
    }

    /// Removes the rows at `indices` (ascending, distinct); the others keep their order. A row
    /// that stays in its group keeps its offset as it is.
    public mutating func removeRows(at indices: [Int]) {
        if wide.isEmpty {
            removeRowsWithoutSideTable(at: indices)
            return
        }
        let kept = compactRows(count: offsets.count, removing: indices) { row, destination in
            let offset = offsets[row]
            guard let destination else {
                if offset == BlockAddresses.wideMark { wide[row] = nil }
                return
            }
            if row >> BlockAddresses.groupShift == destination >> BlockAddresses.groupShift && offset != BlockAddresses.wideMark {
                offsets[destination] = offset
            } else {
                let value = self[row]
                if offset == BlockAddresses.wideMark { wide[row] = nil }
                self[destination] = value
            }
        }
        removeLast(offsets.count - kept)
    }

    /// `removeRows` when no row is in the side table: the kept rows' offsets move down stretch by
    /// stretch, and only the rows that land in an earlier group than their own (the first rows of
    /// each group, as many as the rows removed before them) are encoded again, against that group.
    /// The same rows and offsets as the row-by-row way, without a call per row.
    private mutating func removeRowsWithoutSideTable(at indices: [Int]) {
        let shift = BlockAddresses.groupShift
        let kept = compactStretches(count: offsets.count, removing: indices) { from, to, length in
            offsets.withUnsafeMutableBufferPointer { offsets in
                UnsafeMutableRawPointer(offsets.baseAddress! + to).copyMemory(from: offsets.baseAddress! + from,
                                                                              byteCount: length * MemoryLayout<UInt32>.stride)
            }
            let distance = from - to
            var source = from
            while source < from + length {
                let destination = source - distance
                let group = source >> shift
                // Until the source's group ends, its rows stay in it (a destination lies below its source).
                if destination >> shift == group {
                    source = (group + 1) << shift
                    continue
                }
                // Rows are moved in ascending order: this group's bases are not changed yet (a
                // group gains a second base only as a destination, after its own rows left it).
                let offset = offsets[destination]
                self[destination] = offset < BlockAddresses.second ? bases[group] &+ UInt64(offset) << 4
                    : secondBases[group] &+ UInt64(offset & ~BlockAddresses.second) << 4
                source += 1
            }
        }
        removeLast(offsets.count - kept)
    }

    /// The addresses in `order` (indices into these).
    public func permuted(_ order: [Int]) -> BlockAddresses {
        var result = BlockAddresses()
        result.reserveCapacity(order.count)
        for index in order { result.append(self[index]) }
        return result
    }
}

extension BlockAddresses {
    /// The row holding exactly `address`.
    public func index(of address: UInt64) -> Int? {
        let index = lowerBound(address)
        return index < count && self[index] == address ? index : nil
    }
}
