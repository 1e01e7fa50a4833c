import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// RPC-framework-aware mode: framework buffers charged to the user code that retains them.
///
/// A buffer's frame (`ByteBuffer (NIOCore) 64 KiB pinned, 8 B viewed`) holds its storage and its
/// bytes. It is charged to the first frame on its path, from the root, that belongs to user code:
/// not a framework module (NIO…, Foundation, SwiftProtobuf, GRPC…), not the standard library, not
/// a runtime or conservative root. A buffer with no such frame is framework-owned.
public struct FrameworkCharges {
    public struct Retainer {
        public var frame: String
        public var buffers: Int64
        public var bytes: Int64
    }

    public struct PinningSlice {
        public var path: [String]
        public var count: Int64
        public var pinnedBytes: UInt64
        public var viewedBytes: UInt64
    }

    public static let frameworkOwned = "<framework>"
    /// Modules whose frames are not the user's: the frameworks, the standard library, the runtime
    /// (each framework lists its own, `Frameworks.modules`).
    public static let frameworkModules: Set<String> = Frameworks.modules

    public var retainers: [Retainer] = []
    public var slices: [PinningSlice] = []
    public var totalBytes: Int64 = 0

    /// The framework buffer a node sits in (itself or an ancestor), and whom it is charged to.
    public static func buffer(of node: Int32, _ attribution: Attribution) -> (FrameworkBuffer, String)? {
        var chain: [Int32] = []
        var current = node
        while current >= 0 { chain.append(current); current = attribution.nodes[Int(current)].parent }
        chain.reverse()
        guard let index = chain.lastIndex(where: { attribution.names.frameworkBuffers[attribution.nodes[Int($0)].frame] != nil }) else {
            return nil
        }
        let buffer = attribution.names.frameworkBuffers[attribution.nodes[Int(chain[index])].frame]!
        let root = attribution.roots[Int(attribution.nodes[Int(node)].root)]
        var charged = frameworkOwned
        if root.kind == .global || root.kind == .stack || root.kind == .task {
            for candidate in chain[..<index] where isUserCode(attribution.names[attribution.nodes[Int(candidate)].frame]) {
                charged = attribution.names[attribution.nodes[Int(candidate)].frame]
                break
            }
        }
        return (buffer, charged)
    }

    /// Whether a frame names user code: its module (the type in `(…)`, or the root's own name) is
    /// none of the frameworks'.
    public static func isUserCode(_ frame: String) -> Bool {
        var subject = frame
        if let open = frame.range(of: ". (") { subject = String(frame[open.upperBound...]) }
        if let arrow = subject.range(of: " › ") { subject = String(subject[arrow.upperBound...]) }
        // `module.Name…`: a module is an identifier before the first dot; standard-library
        // collections are shown without theirs (`Dictionary<…>`, `[T]`) and are not user code.
        guard let dot = subject.firstIndex(of: "."),
              subject[..<dot].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }), !subject[..<dot].isEmpty else { return false }
        return !frameworkModules.contains(String(subject[..<dot]))
    }

    public init(_ attribution: Attribution, objects: ObjectTable, minimumRatio: UInt64 = 8) {
        var counts = [Int64](repeating: 0, count: attribution.nodes.count)
        var bytes = [Int64](repeating: 0, count: attribution.nodes.count)
        for object in 0..<objects.count where attribution.nodeOf[object] >= 0 {
            counts[Int(attribution.nodeOf[object])] += 1
            bytes[Int(attribution.nodeOf[object])] += Int64(objects.sizes[object])
        }
        var byRetainer: [String: (Int64, Int64)] = [:]
        var byPath: [String: PinningSlice] = [:]
        for node in attribution.nodes.indices where bytes[node] > 0 {
            let frame = attribution.nodes[node].frame
            guard let buffer = attribution.names.frameworkBuffers[frame], let (_, charged) = FrameworkCharges.buffer(of: Int32(node), attribution) else { continue }
            // Storage and bytes both sit in the buffer's node: a buffer is its storage object.
            let storages = max(counts[node] / buffer.blocks, 1)
            let current = byRetainer[charged] ?? (0, 0)
            byRetainer[charged] = (current.0 + storages, current.1 + bytes[node])
            totalBytes += bytes[node]
            if let viewed = buffer.viewedBytes, buffer.pinnedBytes > 0, viewed * minimumRatio <= buffer.pinnedBytes {
                let path = attribution.frames(of: Int32(node))
                let key = path.joined(separator: " › ")
                var slice = byPath[key] ?? PinningSlice(path: path, count: 0, pinnedBytes: buffer.pinnedBytes, viewedBytes: viewed)
                slice.count += storages
                byPath[key] = slice
            }
        }
        retainers = byRetainer.map { Retainer(frame: $0.key, buffers: $0.value.0, bytes: $0.value.1) }
            .sorted { ($0.bytes, $1.frame) > ($1.bytes, $0.frame) }
        slices = byPath.values.sorted { ($0.pinnedBytes * UInt64($0.count), $1.path.joined()) > ($1.pinnedBytes * UInt64($1.count), $0.path.joined()) }
    }

    public func text(limit: Int = 15) -> String {
        guard !retainers.isEmpty else { return "Framework buffers: none found\n" }
        var lines = ["Framework buffers by user-code retainer (\(formatBytes(UInt64(totalBytes))) in all):"]
        for retainer in retainers.prefix(limit) {
            lines.append("  \(formatBytes(UInt64(retainer.bytes))) in \(retainer.buffers) buffers  \(retainer.frame)")
        }
        if !slices.isEmpty {
            lines.append("Small views pinning large buffers:")
            for slice in slices.prefix(limit) {
                let ratio = slice.viewedBytes > 0 ? "\(slice.pinnedBytes / slice.viewedBytes)×" : "∞"
                lines.append("  \(slice.count) × \(formatBytes(slice.pinnedBytes)) pinned for \(formatBytes(slice.viewedBytes)) viewed (\(ratio))  \(slice.path.joined(separator: " › "))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
