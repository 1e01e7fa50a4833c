import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// The reference-path profile: one sample per distinct path, root first in the flame graph,
/// labelled with the root's kind. Objects no root reaches sit under `<unreachable>`, by type, so
/// the totals still equal the census.
public enum ReferenceReport {
    public static let unreachableRoot = "<unreachable>"

    public static func profile(_ attribution: Attribution, objects: ObjectTable, comments: [String] = []) -> PprofProfile {
        var counts = [Int64](repeating: 0, count: attribution.nodes.count)
        var bytes = [Int64](repeating: 0, count: attribution.nodes.count)
        var unreachableCounts = [Int64](repeating: 0, count: objects.types.count)
        var unreachableBytes = [Int64](repeating: 0, count: objects.types.count)
        // Ten million objects: the columns through their stored rows, the tallies through pointers.
        attribution.nodeOf.withUnsafeBufferPointer { nodeOf in
            objects.sizes.withRows { sizes in
                counts.withUnsafeMutableBufferPointer { counts in
                    bytes.withUnsafeMutableBufferPointer { bytes in
                        for object in 0..<objects.count {
                            let node = Int(nodeOf[object])
                            let size = Int64(sizes[object])
                            if node >= 0 {
                                counts[node] += 1
                                bytes[node] += size
                            } else {
                                let type = Int(objects.typeIndices[object])
                                unreachableCounts[type] += 1
                                unreachableBytes[type] += size
                            }
                        }
                    }
                }
            }
        }
        var profile = PprofProfile()
        profile.comments = comments
        for node in attribution.nodes.indices where counts[node] > 0 {
            let root = attribution.roots[Int(attribution.nodes[node].root)]
            var sample = PprofProfile.Sample(frames: attribution.frames(of: Int32(node)), values: [counts[node], bytes[node]],
                                             labels: ["root": root.kind.rawValue])
            if let (buffer, chargedTo) = FrameworkCharges.buffer(of: Int32(node), attribution) {
                sample.labels["framework"] = buffer.framework
                sample.labels["charged_to"] = chargedTo
                if let viewed = buffer.viewedBytes {
                    sample.numericLabels["pinned_bytes"] = (Int64(buffer.pinnedBytes), "bytes")
                    sample.numericLabels["viewed_bytes"] = (Int64(viewed), "bytes")
                }
            }
            profile.samples.append(sample)
        }
        for type in objects.types.indices where unreachableCounts[type] > 0 {
            profile.samples.append(.init(frames: [unreachableRoot, SwiftTypeNames.display(objects.types[type].name)],
                                         values: [unreachableCounts[type], unreachableBytes[type]],
                                         labels: ["root": "unreachable"]))
        }
        return profile
    }
}
