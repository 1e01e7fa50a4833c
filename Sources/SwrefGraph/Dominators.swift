import CSwrefSystem
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// Immediate dominators by the semi-NCA algorithm (Lengauer–Tarjan's semidominators with path
/// compression, O(m log n), then nearest common ancestors), iterative so that ten-million-node
/// heaps do not overflow the stack.
///
/// The algorithm works on a depth-first numbering: `immediateDominators` makes one for any graph;
/// the heap's own (`DepthFirstNumbering`) is made by the walk that finds the root tiers.
public enum Dominators {
    /// - Parameters:
    ///   - edgeStart: `edgeStart[v]..<edgeStart[v+1]` indexes `targets` for node v (count + 1 entries).
    /// - Returns: `idom[v]` for every node; `idom[root] == root`; -1 for nodes the root does not reach.
    public static func immediateDominators(edgeStart: [UInt32], targets: [Int32], root: Int) -> [Int32] {
        let n = edgeStart.count - 1
        guard n > 0 else { return [] }
        return edgeStart.withUnsafeBufferPointer { edgeStart in
            targets.withUnsafeBufferPointer { targets in
                immediateDominators(edgeStart: edgeStart, targets: targets, nodeCount: n, root: root)
            }
        }
    }

    /// Unchecked buffers: every index is a node or edge number of a well-formed graph.
    private static func immediateDominators(edgeStart: UnsafeBufferPointer<UInt32>, targets: UnsafeBufferPointer<Int32>,
                                            nodeCount n: Int, root: Int) -> [Int32] {
        let order = UnsafeMutableBufferPointer<Int32>.allocatePooled(capacity: n)  // node → preorder number
        order.initialize(repeating: -1)
        let vertex = UnsafeMutableBufferPointer<Int32>.allocatePooled(capacity: n)  // preorder number → node
        let parent = UnsafeMutableBufferPointer<Int32>.allocatePooled(capacity: n)  // preorder number → parent's
        defer { order.deallocatePooled(); vertex.deallocatePooled(); parent.deallocatePooled() }
        var reached = 0
        do {
            let stackNodes = UnsafeMutableBufferPointer<Int32>.allocate(capacity: n)
            let stackEdges = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: n)
            defer { stackNodes.deallocate(); stackEdges.deallocate() }
            var depth = 1
            stackNodes[0] = Int32(root)
            stackEdges[0] = edgeStart[root]
            order[root] = 0
            vertex[0] = Int32(root)
            parent[0] = 0
            reached = 1
            while depth > 0 {
                let v = Int(stackNodes[depth - 1])
                let edge = stackEdges[depth - 1]
                if edge < edgeStart[v + 1] {
                    stackEdges[depth - 1] = edge + 1
                    let w = Int(targets[Int(edge)])
                    if order[w] < 0 {
                        order[w] = Int32(reached)
                        vertex[reached] = Int32(w)
                        parent[reached] = order[v]
                        reached += 1
                        stackNodes[depth] = Int32(w)
                        stackEdges[depth] = edgeStart[w]
                        depth += 1
                    }
                } else {
                    depth -= 1
                }
            }
        }
        // In node order, not preorder: the edges are read sequentially.
        let predecessors = Predecessors(count: reached) { body in
            for v in 0..<n where order[v] >= 0 {
                for e in Int(edgeStart[v])..<Int(edgeStart[v + 1]) {
                    let w = order[Int(targets[e])]
                    if w >= 0 { body(order[v], w) }
                }
            }
        }
        let dominator = semiNCA(parent: UnsafeBufferPointer(rebasing: parent[0..<reached]), predecessors: predecessors)
        defer { dominator.deallocatePooled(); predecessors.deallocate() }
        var idom = [Int32](repeating: -1, count: n)
        for i in 0..<reached { idom[Int(vertex[i])] = vertex[Int(dominator[i])] }
        return idom
    }

    /// Predecessors by preorder number, as semi-NCA needs them. A predecessor numbered before its
    /// node (a tree or forward edge) is a semidominator candidate as it is, so only the smallest
    /// such is kept, per node; the others (numbered after: cross and back edges) are listed, in
    /// compressed sparse rows, for path evaluation. On a heap most references point forward.
    public struct Predecessors {
        /// Per node: the smallest of itself and its earlier-numbered predecessors.
        public let earliest: UnsafeMutableBufferPointer<Int32>
        public let start: UnsafeMutableBufferPointer<UInt32>
        public let list: UnsafeMutableBufferPointer<Int32>

        /// - Parameter edges: calls its body with (from, to) preorder numbers for every edge
        ///   between numbered nodes, in any order.
        @inline(__always)
        public init(count: Int, edges: ((Int32, Int32) -> Void) -> Void) {
            let collecting = Collecting(count: count)
            var collector = collecting.collector()
            edges { from, to in collector.add(from, to) }
            self.init(collecting, [collector])
        }

        /// The arrays being filled, before any collector starts.
        public struct Collecting {
            let earliest: UnsafeMutableBufferPointer<Int32>
            let start: UnsafeMutableBufferPointer<UInt32>

            public init(count: Int) {
                earliest = .allocatePooled(capacity: max(count, 1))
                for i in 0..<count { earliest[i] = Int32(i) }
                start = .allocatePooled(capacity: count + 1)
                start.initialize(repeating: 0)
            }

            public func collector() -> Collector { Collector(earliest: earliest, start: start) }
        }

        /// Takes edges in. Several can collect at once, on several threads, as long as no node is
        /// the `to` of edges given to two of them: a node's entries are written by its collector.
        public struct Collector {
            let earliest: UnsafeMutableBufferPointer<Int32>
            let start: UnsafeMutableBufferPointer<UInt32>
            // The listed ones are noted as they come rather than found by a second pass over every
            // edge: on a heap they are few, and each edge costs a cache miss or two to classify.
            var later: [(from: Int32, to: Int32)] = []

            /// The edge (from, to), preorder numbers.
            @inline(__always)
            public mutating func add(_ from: Int32, _ to: Int32) {
                if from < to {
                    if from < earliest[Int(to)] { earliest[Int(to)] = from }
                } else if from > to {
                    start[Int(to) + 1] += 1
                    later.append((from, to))
                }
            }

            /// Asks for the line that an edge toward `to` will write, some edges ahead.
            @inline(__always)
            public func prefetch(_ to: Int32) { swref_prefetch(earliest.baseAddress! + Int(to)) }
        }

        /// The predecessors the collectors took, once they are all done.
        public init(_ collecting: Collecting, _ collectors: [Collector]) {
            let start = collecting.start, count = collecting.start.count - 1
            for i in 0..<count { start[i + 1] += start[i] }
            let listed = collectors.reduce(0) { $0 + $1.later.count }
            let list = UnsafeMutableBufferPointer<Int32>.allocatePooled(capacity: max(listed, 1))
            if listed > 0 {
                let fill = UnsafeMutableBufferPointer<UInt32>.allocatePooled(capacity: count + 1)
                defer { fill.deallocatePooled() }
                _ = fill.initialize(from: start)
                for collector in collectors {
                    for (from, to) in collector.later {
                        list[Int(fill[Int(to)])] = from
                        fill[Int(to)] += 1
                    }
                }
            }
            earliest = collecting.earliest
            self.start = start
            self.list = list
        }

        public func deallocate() { earliest.deallocatePooled(); start.deallocatePooled(); list.deallocatePooled() }
    }

    /// The immediate dominator of every node of a depth-first numbering, by preorder number (the
    /// root, 0, gets 0). Georgiadis' semi-NCA: semidominators by Lengauer–Tarjan's evaluation with
    /// path compression, then each idom as the nearest common ancestor of its DFS parent and its
    /// semidominator. Every array is indexed by preorder number, so that the walks stay local.
    /// The caller deallocates the result, and the predecessors, whose `earliest` become the
    /// semidominators here (a copy of ten million would cost a pass and 40 MB).
    public static func semiNCA(parent: UnsafeBufferPointer<Int32>, predecessors: Predecessors) -> UnsafeMutableBufferPointer<Int32> {
        let reached = parent.count
        let dominator = UnsafeMutableBufferPointer<Int32>.allocatePooled(capacity: max(reached, 1))
        _ = dominator.initialize(from: parent)
        if reached > 0 { dominator[0] = 0 }
        let semi = predecessors.earliest
        let label = UnsafeMutableBufferPointer<Int32>.allocatePooled(capacity: max(reached, 1))
        let ancestor = UnsafeMutableBufferPointer<Int32>.allocatePooled(capacity: max(reached, 1))
        defer { label.deallocatePooled(); ancestor.deallocatePooled() }
        for i in 0..<reached {
            label[i] = Int32(i)
            ancestor[i] = -1
        }
        var path: [Int32] = []
        // The smallest semidominator on the linked path above v (v itself if unlinked).
        func eval(_ v: Int) -> Int32 {
            if ancestor[v] < 0 { return label[v] }
            var u = v
            while ancestor[Int(ancestor[u])] >= 0 { path.append(Int32(u)); u = Int(ancestor[u]) }
            while let x = path.popLast() {
                let a = Int(ancestor[Int(x)])
                if label[a] < label[Int(x)] { label[Int(x)] = label[a] }
                ancestor[Int(x)] = ancestor[a]
            }
            return label[v]
        }
        let predStart = predecessors.start, preds = predecessors.list
        for w in stride(from: reached - 1, through: 1, by: -1) {
            var best = semi[w]
            for p in Int(predStart[w])..<Int(predStart[w + 1]) {
                let candidate = eval(Int(preds[p]))
                if candidate < best { best = candidate }
            }
            semi[w] = best
            label[w] = best
            ancestor[w] = dominator[w]
        }
        if reached > 1 {
            for w in 1..<reached {
                var d = dominator[w]
                while d > semi[w] { d = dominator[Int(d)] }
                dominator[w] = d
            }
        }
        return dominator
    }

    /// The nearest common ancestor of two preorder numbers in a dominator tree by preorder number
    /// (a dominator's number is smaller than its node's).
    @inline(__always)
    public static func nearestCommonDominator(_ a: Int32, _ b: Int32, _ dominator: UnsafeMutableBufferPointer<Int32>) -> Int32 {
        var a = a, b = b
        while a != b {
            if a > b { a = dominator[Int(a)] } else { b = dominator[Int(b)] }
        }
        return a
    }
}
