import SwrefGraph
import SwrefSupport

/// The figures a fleet dashboard and a growth fit follow, read from one reference-path profile:
/// totals, bytes and objects per type and per retainer, what no root reaches. Taken from the profile
/// rather than the analysis so that `serve`, `watch` and any kept profile agree.
///
/// A retainer is a profile's first frame (a global, a thread's frame, `<shared by several roots>`):
/// in a dominator-attributed profile its cumulative value is what it retains.
public struct HeapMetrics {
    public struct Row: Equatable {
        public var name: String
        public var objects: Int64
        public var bytes: Int64
    }

    public var objects: Int64 = 0
    public var bytes: Int64 = 0
    /// Largest first (ties by name).
    public var types: [Row] = []
    public var retainers: [Row] = []
    /// Objects no root reaches (`<leaked>` and `<unreachable>`).
    public var leakedObjects: Int64 = 0
    public var leakedBytes: Int64 = 0

    public init(profile: PprofProfile) {
        let countIndex = profile.sampleTypes.firstIndex { $0.type == "inuse_objects" } ?? 0
        let bytesIndex = profile.sampleTypes.firstIndex { $0.type == "inuse_space" } ?? min(1, profile.sampleTypes.count - 1)
        var types: [String: (Int64, Int64)] = [:], retainers: [String: (Int64, Int64)] = [:]
        for sample in profile.samples {
            let count = sample.values[countIndex], size = sample.values[bytesIndex]
            objects += count
            bytes += size
            // Addresses change from run to run (ASLR): `<anonymous 0x…>` is one series.
            let type = ProfileDiff.withoutAddresses(ProfileDiff.typeName(of: sample.frames))
            types[type] = ((types[type]?.0 ?? 0) + count, (types[type]?.1 ?? 0) + size)
            let root = ProfileDiff.withoutAddresses(sample.frames[0])
            retainers[root] = ((retainers[root]?.0 ?? 0) + count, (retainers[root]?.1 ?? 0) + size)
            if root == Attribution.leakedRoot || root == ReferenceReport.unreachableRoot {
                leakedObjects += count
                leakedBytes += size
            }
        }
        func rows(_ table: [String: (Int64, Int64)]) -> [Row] {
            table.map { Row(name: $0.key, objects: $0.value.0, bytes: $0.value.1) }
                .sorted { ($0.bytes, $1.name) > ($1.bytes, $0.name) }
        }
        self.types = rows(types)
        self.retainers = rows(retainers)
    }

    /// The first `limit` rows, and the rest summed under `other` (nil when nothing is left): the
    /// bound on a label's values.
    public static func top(_ rows: [Row], _ limit: Int, other: String = "<other>") -> [Row] {
        guard rows.count > limit else { return rows }
        let rest = rows[limit...]
        return Array(rows.prefix(limit)) + [Row(name: other, objects: rest.reduce(0) { $0 + $1.objects },
                                                 bytes: rest.reduce(0) { $0 + $1.bytes })]
    }
}
