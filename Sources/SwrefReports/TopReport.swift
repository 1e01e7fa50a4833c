import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// `swref top`: the largest retainers, a type histogram with retained sizes, the biggest objects.
public struct TopReport {
    public struct TypeRow {
        public var type: String
        public var count: Int
        public var shallowBytes: UInt64
        /// Bytes freed if every object of the type went away (objects under another of the same
        /// type counted once).
        public var retainedBytes: UInt64
    }

    public var types: [TypeRow]
    public var retainers: [(object: Int, retainedBytes: UInt64, retainedCount: UInt32)]
    public var roots: [(root: Int, retainedBytes: UInt64, retainedCount: UInt32)]
    public var biggest: [Int]

    public init(objects: ObjectTable, paths: ReferencePaths, limit: Int) {
        let (firstTypes, rowOfType) = objects.rowsByName
        var rows = firstTypes.map { TypeRow(type: objects.types[$0].name, count: 0, shallowBytes: 0, retainedBytes: 0) }
        for object in 0..<objects.count {
            let type = rowOfType[Int(objects.typeIndices[object])]
            rows[type].count += 1
            rows[type].shallowBytes += objects.sizes[object]
        }
        retainers = []
        roots = []
        if let retained = paths.retained {
            // Depth-first over the dominator tree, counting for a type only its outermost objects.
            let nodeCount = retained.idom.count
            var childStart = [UInt32](repeating: 0, count: nodeCount + 1)
            for v in 1..<nodeCount where retained.idom[v] >= 0 { childStart[Int(retained.idom[v]) + 1] += 1 }
            for v in 0..<nodeCount { childStart[v + 1] += childStart[v] }
            var fill = childStart
            var children = [Int32](repeating: 0, count: Int(childStart[nodeCount]))
            for v in 1..<nodeCount where retained.idom[v] >= 0 {
                let p = Int(retained.idom[v])
                children[Int(fill[p])] = Int32(v)
                fill[p] += 1
            }
            var active = [Int32](repeating: 0, count: rows.count)
            var stack: [(node: Int32, next: UInt32, entered: Bool)] = [(0, childStart[0], true)]
            while let top = stack.last {
                let v = Int(top.node)
                if top.next < childStart[v + 1] {
                    stack[stack.count - 1].next += 1
                    let w = Int(children[Int(top.next)])
                    if let object = retained.object(ofNode: w) {
                        let type = rowOfType[Int(objects.typeIndices[object])]
                        if active[type] == 0 { rows[type].retainedBytes += retained.retainedBytes[w] }
                        active[type] += 1
                    }
                    stack.append((Int32(w), childStart[w], true))
                } else {
                    stack.removeLast()
                    if let object = retained.object(ofNode: v) { active[rowOfType[Int(objects.typeIndices[object])]] -= 1 }
                }
            }
            retainers = TopReport.largest(limit, from: 0..<objects.count) { retained.retainedBytes(ofObject: $0) }
                .map { ($0, retained.retainedBytes(ofObject: $0), retained.retainedCount(ofObject: $0)) }
            // Objects no single root dominates hang from the super-root itself: together they are
            // `<shared by several roots>` (often most of a server's heap), listed with the roots.
            let shared = paths.attribution.roots.firstIndex { $0.name == Attribution.sharedRoot }
            var sharedBytes: UInt64 = 0, sharedCount: UInt32 = 0
            if shared != nil {
                for v in 1..<nodeCount where retained.idom[v] == 0 && retained.object(ofNode: v) != nil {
                    sharedBytes &+= retained.retainedBytes[v]
                    sharedCount &+= retained.retainedCount[v]
                }
            }
            func rootBytes(_ root: Int) -> UInt64 { root == shared ? sharedBytes : retained.retainedBytes(ofRoot: root) }
            roots = TopReport.largest(limit, from: 0..<paths.attribution.roots.count) { rootBytes($0) }
                .map { ($0, rootBytes($0), $0 == shared ? sharedCount : retained.retainedCount[retained.node(ofRoot: $0)]) }
        }
        types = rows.filter { $0.count > 0 }.sorted {
            ($0.retainedBytes, $0.shallowBytes, $1.type) > ($1.retainedBytes, $1.shallowBytes, $0.type)
        }
        biggest = TopReport.largest(limit, from: 0..<objects.count) { objects.sizes[$0] }
    }

    /// The `limit` indices with the largest keys, largest first (ties by index).
    public static func largest(_ limit: Int, from range: Range<Int>, key: (Int) -> UInt64) -> [Int] {
        var best: [(UInt64, Int)] = []
        for index in range {
            let value = key(index)
            if best.count < limit || value > best[best.count - 1].0 {
                let position = best.firstIndex { $0.0 < value } ?? best.count
                best.insert((value, index), at: position)
                if best.count > limit { best.removeLast() }
            }
        }
        return best.map(\.1)
    }

    public func text(objects: ObjectTable, paths: ReferencePaths, limit: Int) -> String {
        func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : String(repeating: " ", count: width - s.count) + s }
        func hex(_ object: Int) -> String { "0x" + String(objects.addresses[object], radix: 16) }
        func typeName(_ object: Int) -> String { objects.types[Int(objects.typeIndices[object])].name }
        var lines: [String] = []
        if !roots.isEmpty {
            lines.append("Largest roots (retained):")
            for entry in roots where entry.retainedBytes > 0 {
                let root = paths.attribution.roots[entry.root]
                lines.append("  \(pad(formatBytes(entry.retainedBytes), 10)) \(pad("\(entry.retainedCount)", 9)) objects  \(root.name) [\(root.kind.rawValue)]")
            }
            lines.append("")
            lines.append("Largest retainers (objects):")
            for entry in retainers {
                let node = paths.attribution.nodeOf[entry.object]
                let path = node >= 0 ? paths.attribution.frames(of: node).joined(separator: " › ") : ""
                lines.append("  \(pad(formatBytes(entry.retainedBytes), 10)) \(pad("\(entry.retainedCount)", 9)) objects  \(typeName(entry.object)) \(hex(entry.object))  \(path)")
            }
            lines.append("")
        } else {
            lines.append("(no retained sizes: the dominator tree was not computed)")
        }
        lines.append("Types:")
        lines.append("  " + pad("COUNT", 10) + pad("SHALLOW", 12) + pad("RETAINED", 12) + "  TYPE")
        for row in types.prefix(limit) {
            lines.append("  " + pad("\(row.count)", 10) + pad(formatBytes(row.shallowBytes), 12) + pad(formatBytes(row.retainedBytes), 12) + "  \(row.type)")
        }
        lines.append("")
        lines.append("Biggest objects:")
        for object in biggest {
            lines.append("  \(pad(formatBytes(objects.sizes[object]), 10))  \(typeName(object)) \(hex(object))")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
