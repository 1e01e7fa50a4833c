import SwrefImages
import SwrefMemory
import SwrefSupport

/// What a heap walk saw of each block's first two words while they were in cache: whether the
/// block can be a Swift object by them (`SwiftObjectRecognizer.screen`), and if so its first word,
/// the metadata candidate, as a number among the distinct ones. The object table then classifies
/// the blocks without reading every header of the heap a second time (with a fork read in place,
/// without filling every page again). Two bytes a block, given back once the table is made.
public struct ScreenedHeaders {
    /// Per block: 0 when its header says it is no Swift object; else 1 + the index of its first
    /// word in `metadata`, with `sideTableFlag` set when its count word points to a side table.
    public private(set) var rows: [UInt16] = []
    /// The distinct first words that passed, in the order met.
    public private(set) var metadata: [UInt64] = []
    @inlinable public static var sideTableFlag: UInt16 { 0x8000 }
    /// Numbers take 15 bits: a walk that meets more distinct first words stops screening.
    static let limit = 0x7fff
    private var numbers: [UInt64: UInt16] = [:]
    /// Blocks of the same few types lie side by side: most lookups are answered without hashing.
    private var recent = DirectMappedCache(bits: 6)

    public init() {}

    public var count: Int { rows.count }

    public mutating func reserveCapacity(_ count: Int) { rows.reserveCapacity(count) }

    /// Adds a block's screening; false (and nothing added) when its first word would be one too many.
    @inline(__always)
    mutating func append(_ screened: (metadata: UInt64, sideTable: Bool)?) -> Bool {
        guard let screened else {
            rows.append(0)
            return true
        }
        let flag = screened.sideTable ? ScreenedHeaders.sideTableFlag : 0
        if let number = recent.value(for: screened.metadata) {
            rows.append(UInt16(truncatingIfNeeded: number) | flag)
            return true
        }
        let number: UInt16
        if let known = numbers[screened.metadata] {
            number = known
        } else {
            guard metadata.count < ScreenedHeaders.limit - 1 else { return false }
            metadata.append(screened.metadata)
            number = UInt16(metadata.count)
            numbers[screened.metadata] = number
        }
        recent.set(UInt32(number), for: screened.metadata)
        rows.append(number | flag)
        return true
    }

    /// Appends `other`'s rows from `start` on after these, as if their blocks had been screened
    /// here after these: their first words are numbered on from these, in the order those rows
    /// meet them. False (and nothing added) when that makes more distinct first words than a walk
    /// screens.
    mutating func append(contentsOf other: ScreenedHeaders, from start: Int = 0) -> Bool {
        let flag = ScreenedHeaders.sideTableFlag
        // `other`'s numbers in the order its rows meet them: all of them, in order, from its first
        // row; from a later one, some may be missing or met in another order.
        var order = Array(1..<other.metadata.count + 1)
        if start > 0 {
            var met = [Bool](repeating: false, count: other.metadata.count + 1)
            order = []
            for row in other.rows[start...] where !met[Int(row & ~flag)] {
                met[Int(row & ~flag)] = true
                if row & ~flag != 0 { order.append(Int(row & ~flag)) }
            }
        }
        let fresh = order.filter { numbers[other.metadata[$0 - 1]] == nil }.count
        guard metadata.count + fresh <= ScreenedHeaders.limit - 1 else { return false }
        var renumbered = [UInt16](repeating: 0, count: other.metadata.count + 1)
        for number in order {
            let word = other.metadata[number - 1]
            if let known = numbers[word] {
                renumbered[number] = known
            } else {
                metadata.append(word)
                renumbered[number] = UInt16(metadata.count)
                numbers[word] = UInt16(metadata.count)
            }
        }
        let first = rows.count
        rows.append(contentsOf: other.rows[start...])
        if renumbered.indices.contains(where: { Int(renumbered[$0]) != $0 }) {
            renumbered.withUnsafeBufferPointer { renumbered in
                rows.withUnsafeMutableBufferPointer { rows in
                    for index in first..<rows.count { rows[index] = renumbered[Int(rows[index] & ~flag)] | (rows[index] & flag) }
                }
            }
        }
        return true
    }

    mutating func removeLast(_ count: Int) { rows.removeLast(count) }

    mutating func removeRows(at indices: [Int]) {
        let kept = rows.withUnsafeMutableBufferPointer { rows in
            compactStretches(count: rows.count, removing: indices) { from, to, length in
                UnsafeMutableRawPointer(rows.baseAddress! + to).copyMemory(from: rows.baseAddress! + from,
                                                                           byteCount: length * MemoryLayout<UInt16>.stride)
            }
        }
        rows.removeLast(rows.count - kept)
    }

    func permuted(_ order: [Int]) -> ScreenedHeaders {
        var result = self
        result.rows = order.map { rows[$0] }
        return result
    }
}
