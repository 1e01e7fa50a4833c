/// A column of numbers that nearly all fit in 16 bits once divided by a power of two: two bytes a
/// row, the rare others (too large, or not a multiple of the unit) in a side table. At ten million
/// rows each column so kept is 20 MB less of swref's peak than four bytes would be.
public struct NarrowColumn {
    @usableFromInline var narrow: [UInt16] = []
    @usableFromInline var wide: [Int: UInt64] = [:]
    /// Values are stored divided by `1 << shift`.
    public let shift: UInt64

    public init(shift: UInt64) { self.shift = shift }

    public init(repeating value: UInt64, count: Int, shift: UInt64) {
        self.shift = shift
        narrow = [UInt16](repeating: 0, count: count)
        if value != 0 { for index in 0..<count { self[index] = value } }
    }

    @inlinable public var count: Int { narrow.count }

    @inlinable @inline(__always)
    public subscript(index: Int) -> UInt64 {
        get { value(stored: narrow[index], row: index) }
        set {
            let scaled = newValue >> shift
            if scaled < UInt64(UInt16.max) && scaled << shift == newValue {
                if narrow[index] == .max { wide[index] = nil }
                narrow[index] = UInt16(scaled)
            } else {
                narrow[index] = .max
                wide[index] = newValue
            }
        }
    }

    /// The value of `row`, stored as `stored`: `UInt16.max` sends it to the side table, any other
    /// is the value divided by `1 << shift`.
    @inlinable @inline(__always)
    func value(stored: UInt16, row: Int) -> UInt64 { stored == .max ? wide[row]! : UInt64(stored) << shift }

    /// The column read through its stored rows, for a pass that reads every one: no check of the
    /// array's sharing per row.
    public struct Rows {
        @usableFromInline let stored: UnsafeBufferPointer<UInt16>
        @usableFromInline let column: NarrowColumn

        @inlinable init(stored: UnsafeBufferPointer<UInt16>, column: NarrowColumn) {
            self.stored = stored
            self.column = column
        }

        @inlinable @inline(__always)
        public subscript(row: Int) -> UInt64 { column.value(stored: stored[row], row: row) }
    }

    @inlinable @inline(__always)
    public func withRows<R>(_ body: (Rows) throws -> R) rethrows -> R {
        try narrow.withUnsafeBufferPointer { try body(Rows(stored: $0, column: self)) }
    }

    /// Sets rows of a column none of whose rows is in the side table yet (a fresh one), for a pass
    /// that sets millions: `body` writes values below `UInt16.max` already divided by the unit
    /// into the stored rows, and returns the rows whose value is not, for the side table.
    public mutating func setStoredRows(_ body: (UnsafeMutableBufferPointer<UInt16>) throws -> [(row: Int, value: UInt64)]) rethrows {
        precondition(wide.isEmpty, "rows in the side table")
        let others = try narrow.withUnsafeMutableBufferPointer { try body($0) }
        for (row, value) in others { self[row] = value }
    }

    // Always inlined: the heap walk appends a row per block, ten million of them.
    @inlinable @inline(__always)
    public mutating func append(_ value: UInt64) {
        let scaled = value >> shift
        if scaled < UInt64(UInt16.max) && scaled << shift == value {
            narrow.append(UInt16(scaled))
        } else {
            narrow.append(0)
            self[narrow.count - 1] = value
        }
    }

    public mutating func reserveCapacity(_ count: Int) { narrow.reserveCapacity(count) }

    /// Appends `other`'s rows from `start` on after these (kept with the same shift): a column
    /// built in two parts, one per thread, joined once.
    public mutating func append(contentsOf other: NarrowColumn, from start: Int = 0) {
        precondition(other.shift == shift, "columns of different units")
        let offset = narrow.count - start
        narrow.append(contentsOf: other.narrow[start...])
        for (row, value) in other.wide where row >= start { wide[offset + row] = value }
    }

    /// Removes the rows at `indices` (ascending, distinct); the others keep their order.
    public mutating func removeRows(at indices: [Int]) {
        // The kept rows move down stretch by stretch; the few side entries are keyed again, each
        // by its row less the rows removed before it.
        let kept = narrow.withUnsafeMutableBufferPointer { narrow in
            compactStretches(count: narrow.count, removing: indices) { from, to, length in
                UnsafeMutableRawPointer(narrow.baseAddress! + to).copyMemory(from: narrow.baseAddress! + from,
                                                                             byteCount: length * MemoryLayout<UInt16>.stride)
            }
        }
        if !wide.isEmpty {
            var rekeyed: [Int: UInt64] = [:]
            for (row, value) in wide {
                let before = indices.lowerBound(row)
                if before < indices.count && indices[before] == row { continue }
                rekeyed[row - before] = value
            }
            wide = rekeyed
        }
        narrow.removeLast(narrow.count - kept)
    }

    public mutating func removeLast(_ count: Int) {
        if !wide.isEmpty { for index in (narrow.count - count)..<narrow.count where narrow[index] == .max { wide[index] = nil } }
        narrow.removeLast(count)
    }
}

/// Removes rows from a column in place: walks the rows from the first removed one on, calling
/// `step(row, nil)` for each removed row and `step(row, destination)` for each kept one, which
/// moves down to close the gaps. `removed` must be ascending and distinct. Returns how many rows
/// remain; the caller drops the rest.
@inline(__always)
public func compactRows(count: Int, removing removed: [Int], _ step: (_ row: Int, _ destination: Int?) -> Void) -> Int {
    guard let first = removed.first else { return count }
    var kept = first, next = 0
    for row in first..<count {
        if next < removed.count && removed[next] == row {
            next += 1
            step(row, nil)
        } else {
            step(row, kept)
            kept += 1
        }
    }
    return kept
}

/// `compactRows` by stretches: calls `move(from, to, length)` for each run of kept rows after the
/// first removed one, in ascending order (`to` < `from`: a move may overlap the run before it, so
/// it must copy as memmove does). Returns how many rows remain.
@inline(__always)
public func compactStretches(count: Int, removing removed: [Int], _ move: (_ from: Int, _ to: Int, _ length: Int) -> Void) -> Int {
    guard let first = removed.first else { return count }
    var kept = first
    for (position, row) in removed.enumerated() {
        let end = position + 1 < removed.count ? removed[position + 1] : count
        if end > row + 1 {
            move(row + 1, kept, end - row - 1)
            kept += end - row - 1
        }
    }
    return kept
}
