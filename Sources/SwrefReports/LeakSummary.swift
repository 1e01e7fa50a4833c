import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// Leak groups with identical shape folded together, as the text and JSON reports show them:
/// `40 × ROOT CYCLE: Parent.child → Child.parent → Parent, 2 objects, 96 B each`.
public struct LeakSummary {
    public struct Entry {
        public var kind: LeakReport.Kind
        public var shape: String
        public var instances: Int
        public var objectsEach: Int
        public var bytesEach: UInt64
        /// Types retained below each instance: type name → (count, bytes) per instance.
        public var retained: [(type: String, count: Int, bytes: UInt64)]
        public var examples: [UInt64]
        public var suppressedBy: String?
        public var totalBytes: UInt64 { bytesEach * UInt64(instances) }
        public var totalObjects: Int { objectsEach * instances }
    }

    public var entries: [Entry] = []
    public var heapObjects: Int
    public var heapBytes: UInt64

    public var leakedObjects: Int { entries.filter { $0.suppressedBy == nil }.reduce(0) { $0 + $1.totalObjects } }
    public var leakedBytes: UInt64 { entries.filter { $0.suppressedBy == nil }.reduce(0) { $0 + $1.totalBytes } }
    public var suppressedObjects: Int { entries.filter { $0.suppressedBy != nil }.reduce(0) { $0 + $1.totalObjects } }
    public var suppressedBytes: UInt64 { entries.filter { $0.suppressedBy != nil }.reduce(0) { $0 + $1.totalBytes } }
    public var hasLeaks: Bool { leakedObjects > 0 }

    /// Marks leak roots made only of system objects (Foundation, XCTest, Dispatch, the standard
    /// library, untyped malloc blocks): what test harnesses and runtimes leave at exit.
    public static let systemSuppression = "<system>"
    public static let systemModules: Set<String> = ["Swift", "Foundation", "FoundationEssentials", "FoundationInternationalization",
                                             "FoundationNetworking", "FoundationXML", "XCTest", "Testing", "Dispatch", "_Concurrency"]

    /// Whether every module-qualified name in a type name is a system module's (`box<() -> ()>`,
    /// `<malloc>` and `Foundation._NSCFString` are; `Swift._ContiguousArrayStorage<App.Node>` is not).
    public static func isSystemType(_ name: String) -> Bool {
        var components: [String] = []
        var current = ""
        for character in name + " " {
            if character.isLetter || character.isNumber || character == "_" {
                current.append(character)
            } else if character == ".", !current.isEmpty {
                components.append(current)
                current = ""
            } else {
                // End of a dotted name: its first component is a module when there was a dot.
                if !components.isEmpty, !systemModules.contains(components[0]) { return false }
                components = []
                current = ""
            }
        }
        return true
    }

    public init(_ report: LeakReport, objects: ObjectTable, suppressions: Suppressions = Suppressions(), includeSystem: Bool = false) {
        heapObjects = objects.count
        heapBytes = objects.sizes.reduce(0, +)
        var index: [String: Int] = [:]
        for group in report.groups {
            let bytes = report.bytes(of: group, objects: objects)
            var retained: [String: (Int, UInt64)] = [:]
            for object in group.retained {
                let type = objects.types[Int(objects.typeIndices[Int(object)])].name
                let current = retained[type] ?? (0, 0)
                retained[type] = (current.0 + 1, current.1 + objects.sizes[Int(object)])
            }
            let retainedList = retained.map { (type: $0.key, count: $0.value.0, bytes: $0.value.1) }
                .sorted { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.type < $1.type }
            let key = "\(group.kind.rawValue)|\(group.shape)|\(group.count)|\(bytes)|" + retainedList.map { "\($0.type)×\($0.count)" }.joined(separator: ",")
            if let existing = index[key] {
                entries[existing].instances += 1
                if entries[existing].examples.count < 3 { entries[existing].examples.append(objects.addresses[Int(group.members[0])]) }
                continue
            }
            let memberTypes = group.members.map { objects.types[Int(objects.typeIndices[Int($0)])].name }
            var suppressed = suppressions.leakPattern(matching: [group.shape] + memberTypes + retainedList.map(\.type))
            if suppressed == nil && !includeSystem && (memberTypes + retainedList.map(\.type)).allSatisfy(LeakSummary.isSystemType) {
                suppressed = LeakSummary.systemSuppression
            }
            index[key] = entries.count
            entries.append(Entry(kind: group.kind, shape: group.shape, instances: 1, objectsEach: group.count, bytesEach: bytes,
                                 retained: retainedList, examples: [objects.addresses[Int(group.members[0])]], suppressedBy: suppressed))
        }
        entries.sort { $0.totalBytes != $1.totalBytes ? $0.totalBytes > $1.totalBytes : $0.shape < $1.shape }
    }

    /// - Parameter heap: the allocator and how much of its heap was read (`HeapBlocks.description`).
    public func text(target: String, heap: String? = nil) -> String {
        var lines: [String] = []
        let allocator = heap.map { "\($0): " } ?? ""
        if entries.isEmpty {
            lines.append("\(target): no leaks (\(allocator)\(heapObjects) blocks, \(formatBytes(heapBytes)) in use)")
            return lines.joined(separator: "\n") + "\n"
        }
        lines.append("\(target): \(leakedObjects) leaked objects, \(formatBytes(leakedBytes)) in \(entries.filter { $0.suppressedBy == nil }.reduce(0) { $0 + $1.instances }) leak roots"
                     + (suppressedObjects > 0 ? " (\(suppressedObjects) more suppressed)" : "") + (heap.map { "; heap: \($0)" } ?? ""))
        for entry in entries {
            let objects = entry.objectsEach == 1 ? "1 object" : "\(entry.objectsEach) objects"
            var line = "\(entry.instances) × \(entry.kind.rawValue): \(entry.shape), \(objects), \(formatBytes(entry.bytesEach))"
                + (entry.instances > 1 ? " each (\(formatBytes(entry.totalBytes)))" : "")
            if let pattern = entry.suppressedBy { line += " [suppressed by \(pattern)]" }
            lines.append(line)
            for item in entry.retained {
                lines.append("      retains \(item.count) × \(item.type), \(formatBytes(item.bytes))")
            }
            lines.append("      at " + entry.examples.map { "0x" + String($0, radix: 16) }.joined(separator: ", ") + (entry.instances > entry.examples.count ? ", …" : ""))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The leak part of the JSON report (docs/json-report.md).
    public var json: JSONValue {
        .object([
            ("leakedObjects", .int(Int64(leakedObjects))),
            ("leakedBytes", .int(Int64(leakedBytes))),
            ("suppressedObjects", .int(Int64(suppressedObjects))),
            ("suppressedBytes", .int(Int64(suppressedBytes))),
            ("heapObjects", .int(Int64(heapObjects))),
            ("heapBytes", .int(Int64(heapBytes))),
            ("groups", .array(entries.map { entry in
                .object([
                    ("kind", .string(entry.kind == .cycle ? "cycle" : "leak")),
                    ("shape", .string(entry.shape)),
                    ("instances", .int(Int64(entry.instances))),
                    ("objectsEach", .int(Int64(entry.objectsEach))),
                    ("bytesEach", .int(Int64(entry.bytesEach))),
                    ("totalBytes", .int(Int64(entry.totalBytes))),
                    ("retained", .array(entry.retained.map { .object([("type", .string($0.type)), ("count", .int(Int64($0.count))), ("bytes", .int(Int64($0.bytes)))]) })),
                    ("examples", .array(entry.examples.map { .string("0x" + String($0, radix: 16)) })),
                    ("suppressedBy", entry.suppressedBy.map { .string($0) } ?? .null),
                ])
            })),
        ])
    }
}
