import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// "Why is this object alive": the shortest reference paths from roots to one object, preferring
/// one path per kind of root, like `leaks -traceTree`.
public enum WhyAlive {
    public struct Step {
        public var object: Int
        /// The frame label of the reference that leads to this object ("" from a root directly).
        public var label: String
    }

    public struct Path {
        public var root: Int
        public var steps: [Step]
    }

    public static func paths(to target: Int, objects: ObjectTable, graph: ObjectGraph, attribution: Attribution,
                             limit: Int) -> [Path] {
        // Distances to the target over reversed edges.
        let n = objects.count
        var predStart = [UInt32](repeating: 0, count: n + 1)
        for v in 0..<n { for e in graph.edges(of: v) { predStart[Int(graph.targets[e]) + 1] += 1 } }
        for v in 0..<n { predStart[v + 1] += predStart[v] }
        var fill = predStart
        var preds = [Int32](repeating: 0, count: Int(predStart[n]))
        for v in 0..<n { for e in graph.edges(of: v) { let w = Int(graph.targets[e]); preds[Int(fill[w])] = Int32(v); fill[w] += 1 } }
        var distance = [Int32](repeating: -1, count: n)
        distance[target] = 0
        var queue = [Int32(target)]
        var head = 0
        while head < queue.count {
            let w = Int(queue[head]); head += 1
            for p in Int(predStart[w])..<Int(predStart[w + 1]) where distance[Int(preds[p])] < 0 {
                distance[Int(preds[p])] = distance[w] + 1
                queue.append(preds[p])
            }
        }
        // Each root's best entry point, then the path down by decreasing distance.
        var candidates: [(root: Int, entry: Int, label: UInt32, length: Int32)] = []
        for (index, root) in attribution.roots.enumerated() where root.kind != .leaked {
            var best: (Int, UInt32, Int32)? = nil
            for (target, label) in zip(root.targets, root.labels) {
                let d = distance[Int(target)]
                if d >= 0 && (best == nil || d < best!.2) { best = (Int(target), label, d) }
            }
            if let best { candidates.append((index, best.0, best.1, best.2)) }
        }
        candidates.sort { ($0.length, $0.root) < ($1.length, $1.root) }
        var chosen: [(root: Int, entry: Int, label: UInt32, length: Int32)] = []
        var kinds: Set<RootKind> = []
        for candidate in candidates where !kinds.contains(attribution.roots[candidate.root].kind) && chosen.count < limit {
            kinds.insert(attribution.roots[candidate.root].kind)
            chosen.append(candidate)
        }
        for candidate in candidates where chosen.count < limit && !chosen.contains(where: { $0.root == candidate.root }) {
            chosen.append(candidate)
        }
        chosen.sort { ($0.length, $0.root) < ($1.length, $1.root) }
        return chosen.map { candidate in
            var steps = [Step(object: candidate.entry, label: attribution.names.text(candidate.label, target: Int32(candidate.entry)))]
            var current = candidate.entry
            while current != target {
                var next: (Int, UInt32)? = nil
                for e in graph.edges(of: current) {
                    let w = Int(graph.targets[e])
                    if distance[w] == distance[current] - 1 { next = (w, graph.labels[e]); break }
                }
                guard let (w, label) = next else { break }
                steps.append(Step(object: w, label: attribution.names.text(label, target: Int32(w))))
                current = w
            }
            return Path(root: candidate.root, steps: steps)
        }
    }
}
