import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// Counts and bytes per type: what `heap` prints on macOS, and the first thing a user asks.
public struct HeapCensus {
    public struct Row: Sendable {
        public var type: String
        public var kind: HeapObjectKind
        public var count: Int
        public var bytes: UInt64
    }

    /// Largest first; ties broken by name so the order is stable.
    public let rows: [Row]
    public var totalCount: Int { rows.reduce(0) { $0 + $1.count } }
    public var totalBytes: UInt64 { rows.reduce(0) { $0 + $1.bytes } }
    public var swiftCount: Int { rows.filter { $0.kind != .malloc }.reduce(0) { $0 + $1.count } }

    public init(objects: ObjectTable) {
        let (firstTypes, rowOfType) = objects.rowsByName
        var counts = [Int](repeating: 0, count: firstTypes.count)
        var bytes = [UInt64](repeating: 0, count: firstTypes.count)
        for index in 0..<objects.count {
            let row = rowOfType[Int(objects.typeIndices[index])]
            counts[row] += 1
            bytes[row] += objects.sizes[index]
        }
        var rows = firstTypes.indices.filter { counts[$0] > 0 }.map { row in
            Row(type: objects.types[firstTypes[row]].name, kind: objects.types[firstTypes[row]].kind, count: counts[row], bytes: bytes[row])
        }
        rows.sort { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.type < $1.type }
        self.rows = rows
    }

    public func row(named type: String) -> Row? { rows.first { $0.type == type } }
}
