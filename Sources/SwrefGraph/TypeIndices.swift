import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// Each object's index into the table of types, two bytes each (a heap has far fewer than 65 535
/// types; more go to a side table).
public struct TypeIndices: RandomAccessCollection {
    private var column: NarrowColumn

    public init(count: Int) { column = NarrowColumn(repeating: 0, count: count, shift: 0) }

    public var startIndex: Int { 0 }
    public var endIndex: Int { column.count }

    /// Sets the types of a fresh column in one pass: `body` writes each type below 65 535 into its
    /// row and returns the rows of the others.
    public mutating func setRows(_ body: (UnsafeMutableBufferPointer<UInt16>) -> [(row: Int, type: Int32)]) {
        column.setStoredRows { rows in body(rows).map { ($0.row, UInt64(UInt32(bitPattern: $0.type))) } }
    }

    @inline(__always)
    public subscript(index: Int) -> Int32 {
        get { Int32(truncatingIfNeeded: column[index]) }
        set { column[index] = UInt64(UInt32(bitPattern: newValue)) }
    }
}
