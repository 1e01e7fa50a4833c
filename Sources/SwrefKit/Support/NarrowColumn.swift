/// A column of numbers that nearly all fit in 16 bits once divided by a power of two: two bytes a
/// row, the rare others (too large, or not a multiple of the unit) in a side table. At ten million
/// rows each column so kept is 20 MB less of swref's peak than four bytes would be.
struct NarrowColumn {
    private var narrow: [UInt16] = []
    private var wide: [Int: UInt64] = [:]
    /// Values are stored divided by `1 << shift`.
    let shift: UInt64

    init(shift: UInt64) { self.shift = shift }

    init(repeating value: UInt64, count: Int, shift: UInt64) {
        self.shift = shift
        narrow = [UInt16](repeating: 0, count: count)
        if value != 0 { for index in 0..<count { self[index] = value } }
    }

    var count: Int { narrow.count }

    @inline(__always)
    subscript(index: Int) -> UInt64 {
        get {
            let value = narrow[index]
            return value == .max ? wide[index]! : UInt64(value) << shift
        }
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

    mutating func append(_ value: UInt64) {
        let scaled = value >> shift
        if scaled < UInt64(UInt16.max) && scaled << shift == value {
            narrow.append(UInt16(scaled))
        } else {
            narrow.append(0)
            self[narrow.count - 1] = value
        }
    }

    mutating func reserveCapacity(_ count: Int) { narrow.reserveCapacity(count) }

    /// Removes the rows at `indices` (ascending, distinct); the others keep their order.
    mutating func removeRows(at indices: [Int]) {
        guard let first = indices.first else { return }
        var kept = first, next = 0
        for index in first..<narrow.count {
            let value = narrow[index]
            if next < indices.count && indices[next] == index {
                next += 1
                if value == .max { wide[index] = nil }
                continue
            }
            // Every row from `first` on has been moved or dropped by now: `kept`'s own side entry is gone.
            if value == .max { wide[kept] = wide.removeValue(forKey: index) }
            narrow[kept] = value
            kept += 1
        }
        removeLast(narrow.count - kept)
    }

    mutating func removeLast(_ count: Int) {
        if !wide.isEmpty { for index in (narrow.count - count)..<narrow.count where narrow[index] == .max { wide[index] = nil } }
        narrow.removeLast(count)
    }
}
