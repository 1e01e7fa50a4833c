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
        var counts = [Int](repeating: 0, count: objects.types.count)
        var bytes = [UInt64](repeating: 0, count: objects.types.count)
        for index in 0..<objects.count {
            let type = Int(objects.typeIndices[index])
            counts[type] += 1
            bytes[type] += objects.sizes[index]
        }
        // One row per name: closure contexts of the same captures are types of their own (their
        // layouts may differ) yet one row.
        var rows: [Row] = []
        var rowOfName: [String: Int] = [:]
        for (index, entry) in objects.types.enumerated() where counts[index] > 0 {
            if let row = rowOfName[entry.name] {
                rows[row].count += counts[index]
                rows[row].bytes += bytes[index]
            } else {
                rowOfName[entry.name] = rows.count
                rows.append(Row(type: entry.name, kind: entry.kind, count: counts[index], bytes: bytes[index]))
            }
        }
        rows.sort { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.type < $1.type }
        self.rows = rows
    }

    public func row(named type: String) -> Row? { rows.first { $0.type == type } }
}
