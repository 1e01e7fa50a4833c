import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// What changed between two heap profiles: paths and types that grew or shrank, and leak groups
/// that are new or larger. The basis of `swref diff` and `swref check`.
public struct ProfileDiff {
    public struct Change {
        public var key: String
        public var baseCount: Int64
        public var baseBytes: Int64
        public var newCount: Int64
        public var newBytes: Int64
        public var deltaBytes: Int64 { newBytes - baseBytes }
        public var deltaCount: Int64 { newCount - baseCount }
    }

    public var paths: [Change] = []
    public var types: [Change] = []
    /// Groups under `<leaked>` that are new or hold more than in the base.
    public var leaks: [Change] = []
    public var baseTotal: (count: Int64, bytes: Int64) = (0, 0)
    public var newTotal: (count: Int64, bytes: Int64) = (0, 0)

    public static let pathSeparator = " › "

    public init(base: PprofProfile, new: PprofProfile, suppressions: Suppressions = Suppressions()) {
        func index(_ profile: PprofProfile) -> (paths: [String: (Int64, Int64)], types: [String: (Int64, Int64)],
                                                 leaks: [String: (Int64, Int64)], total: (Int64, Int64)) {
            var paths: [String: (Int64, Int64)] = [:], types: [String: (Int64, Int64)] = [:], leaks: [String: (Int64, Int64)] = [:]
            var total: (Int64, Int64) = (0, 0)
            let countIndex = profile.sampleTypes.firstIndex { $0.type == "inuse_objects" } ?? 0
            let bytesIndex = profile.sampleTypes.firstIndex { $0.type == "inuse_space" } ?? min(1, profile.sampleTypes.count - 1)
            for sample in profile.samples {
                if suppressions.pathPattern(matching: sample.frames) != nil { continue }
                if sample.frames.first == Attribution.leakedRoot, sample.frames.count > 1,
                   suppressions.leakPattern(matching: [sample.frames[1]]) != nil { continue }
                let count = sample.values[countIndex], bytes = sample.values[bytesIndex]
                total = (total.0 + count, total.1 + bytes)
                let path = ProfileDiff.withoutAddresses(sample.frames.joined(separator: ProfileDiff.pathSeparator))
                paths[path] = ((paths[path]?.0 ?? 0) + count, (paths[path]?.1 ?? 0) + bytes)
                let type = ProfileDiff.typeName(of: sample.frames)
                types[type] = ((types[type]?.0 ?? 0) + count, (types[type]?.1 ?? 0) + bytes)
                if sample.frames.first == Attribution.leakedRoot, sample.frames.count > 1 {
                    let group = sample.frames[1]
                    leaks[group] = ((leaks[group]?.0 ?? 0) + count, (leaks[group]?.1 ?? 0) + bytes)
                }
            }
            return (paths, types, leaks, total)
        }
        let b = index(base), n = index(new)
        func changes(_ base: [String: (Int64, Int64)], _ new: [String: (Int64, Int64)]) -> [Change] {
            Set(base.keys).union(new.keys).map { key in
                Change(key: key, baseCount: base[key]?.0 ?? 0, baseBytes: base[key]?.1 ?? 0,
                       newCount: new[key]?.0 ?? 0, newBytes: new[key]?.1 ?? 0)
            }.filter { $0.deltaBytes != 0 || $0.deltaCount != 0 }
             .sorted { $0.deltaBytes != $1.deltaBytes ? $0.deltaBytes > $1.deltaBytes : $0.key < $1.key }
        }
        paths = changes(b.paths, n.paths)
        types = changes(b.types, n.types)
        leaks = changes(b.leaks, n.leaks).filter { $0.deltaBytes > 0 || $0.deltaCount > 0 }
        baseTotal = b.total
        newTotal = n.total
    }

    /// Addresses differ from run to run (ASLR): `<anonymous 0x7f…>` compares as `<anonymous 0x…>`.
    public static func withoutAddresses(_ text: String) -> String {
        guard text.contains("0x") else { return text }
        var out = ""
        var chars = Array(text)
        var i = 0
        while i < chars.count {
            if chars[i] == "0", i + 2 < chars.count, chars[i + 1] == "x", chars[i + 2].isHexDigit {
                out += "0x…"
                i += 2
                while i < chars.count && chars[i].isHexDigit { i += 1 }
                continue
            }
            out.append(chars[i])
            i += 1
        }
        chars.removeAll()
        return out
    }

    /// The type a sample counts: the `(T)` of its last frame, or the frame itself.
    public static func typeName(of frames: [String]) -> String {
        guard let last = frames.last else { return "?" }
        if last.hasSuffix(")"), let open = last.range(of: ". (") ?? last.range(of: "(") {
            return String(last[open.upperBound..<last.index(before: last.endIndex)])
        }
        return last
    }

    public var growthBytes: Int64 { newTotal.bytes - baseTotal.bytes }
    public var growthPercent: Double { baseTotal.bytes > 0 ? Double(growthBytes) * 100 / Double(baseTotal.bytes) : (growthBytes > 0 ? .infinity : 0) }

    public func text(limit: Int = 20) -> String {
        func sign(_ v: Int64) -> String { v >= 0 ? "+\(v)" : "\(v)" }
        func bytes(_ v: Int64) -> String { (v >= 0 ? "+" : "-") + formatBytes(UInt64(abs(v))) }
        var lines = ["total: \(formatBytes(UInt64(max(baseTotal.bytes, 0)))) → \(formatBytes(UInt64(max(newTotal.bytes, 0)))) (\(bytes(growthBytes)), "
                     + "\(String(format1: growthPercent))%), objects \(baseTotal.count) → \(newTotal.count) (\(sign(newTotal.count - baseTotal.count)))"]
        if !leaks.isEmpty {
            lines.append("new or larger leaks:")
            for change in leaks.prefix(limit) { lines.append("  \(bytes(change.deltaBytes)) \(sign(change.deltaCount)) objects  \(change.key)") }
        }
        lines.append("types that grew:")
        for change in types.filter({ $0.deltaBytes > 0 }).prefix(limit) { lines.append("  \(bytes(change.deltaBytes)) \(sign(change.deltaCount)) objects  \(change.key)") }
        lines.append("paths that grew:")
        for change in paths.filter({ $0.deltaBytes > 0 }).prefix(limit) { lines.append("  \(bytes(change.deltaBytes)) \(sign(change.deltaCount)) objects  \(change.key)") }
        return lines.joined(separator: "\n") + "\n"
    }

    public var json: JSONValue {
        func list(_ changes: [Change]) -> JSONValue {
            .array(changes.map { .object([("key", .string($0.key)), ("baseObjects", .int($0.baseCount)), ("baseBytes", .int($0.baseBytes)),
                                           ("newObjects", .int($0.newCount)), ("newBytes", .int($0.newBytes)),
                                           ("deltaObjects", .int($0.deltaCount)), ("deltaBytes", .int($0.deltaBytes))]) })
        }
        return .object([
            ("schema", .string("swref-diff/1")),
            ("base", .object([("objects", .int(baseTotal.count)), ("bytes", .int(baseTotal.bytes))])),
            ("new", .object([("objects", .int(newTotal.count)), ("bytes", .int(newTotal.bytes))])),
            ("growthBytes", .int(growthBytes)),
            ("growthPercent", .double(growthPercent)),
            ("newLeaks", list(leaks)),
            ("types", list(types)),
            ("paths", list(paths)),
        ])
    }
}
