/// Immediate dominators of a directed graph in compressed sparse rows, by the semi-NCA algorithm
/// (Lengauer–Tarjan's semidominators with path compression, O(m log n), then nearest common
/// ancestors), iterative so that ten-million-node heaps do not overflow the stack. Nodes
/// unreachable from the root get -1.
public enum Dominators {
    /// - Parameters:
    ///   - edgeStart: `edgeStart[v]..<edgeStart[v+1]` indexes `targets` for node v (count + 1 entries).
    /// - Returns: `idom[v]` for every node; `idom[root] == root`.
    public static func immediateDominators(edgeStart: [UInt32], targets: [Int32], root: Int) -> [Int32] {
        tree(edgeStart: edgeStart, targets: targets, root: root).idom
    }

    /// The immediate dominators, and the reachable nodes in depth-first preorder — where every node
    /// comes after its immediate dominator, which a walk down (or, reversed, up) the tree needs.
    public static func tree(edgeStart: [UInt32], targets: [Int32], root: Int) -> (idom: [Int32], preorder: [Int32]) {
        let n = edgeStart.count - 1
        guard n > 0 else { return ([], []) }
        return edgeStart.withUnsafeBufferPointer { edgeStart in
            targets.withUnsafeBufferPointer { targets in
                tree(edgeStart: edgeStart, targets: targets, nodeCount: n, root: root)
            }
        }
    }

    /// The algorithm, on unchecked buffers: every index is a node or edge number of a well-formed
    /// graph (targets < node count, edgeStart ascending), and the scratch arrays are sized to fit.
    private static func tree(edgeStart: UnsafeBufferPointer<UInt32>, targets: UnsafeBufferPointer<Int32>,
                             nodeCount n: Int, root: Int) -> (idom: [Int32], preorder: [Int32]) {
        func scratch(_ count: Int, _ value: Int32) -> UnsafeMutableBufferPointer<Int32> {
            let buffer = UnsafeMutableBufferPointer<Int32>.allocate(capacity: max(count, 1))
            buffer.initialize(repeating: value)
            return buffer
        }
        // Depth-first numbering from the root.
        let order = scratch(n, -1)      // node → preorder number
        let parent = scratch(n, -1)
        var vertex = [Int32](repeating: 0, count: n) // preorder number → node
        var reached = 0
        do {
            let stackNodes = scratch(n, 0), stackEdges = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: n)
            defer { stackNodes.deallocate(); stackEdges.deallocate() }
            var depth = 1
            stackNodes[0] = Int32(root)
            stackEdges[0] = edgeStart[root]
            order[root] = 0
            vertex[0] = Int32(root)
            reached = 1
            vertex.withUnsafeMutableBufferPointer { vertex in
                while depth > 0 {
                    let v = Int(stackNodes[depth - 1])
                    let edge = stackEdges[depth - 1]
                    if edge < edgeStart[v + 1] {
                        stackEdges[depth - 1] = edge + 1
                        let w = Int(targets[Int(edge)])
                        if order[w] < 0 {
                            order[w] = Int32(reached)
                            vertex[reached] = Int32(w)
                            reached += 1
                            parent[w] = Int32(v)
                            stackNodes[depth] = Int32(w)
                            stackEdges[depth] = edgeStart[w]
                            depth += 1
                        }
                    } else {
                        depth -= 1
                    }
                }
            }
        }
        vertex.removeLast(n - reached)
        // Semi-NCA (Georgiadis): semidominators by Lengauer–Tarjan's evaluation with path
        // compression, then each idom as the nearest common ancestor of its DFS parent and its
        // semidominator. Every array is indexed by preorder number, so that the walks stay local.
        let predStart = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: reached + 1)
        predStart.initialize(repeating: 0)
        defer { predStart.deallocate() }
        let dominator = scratch(reached, 0)  // preorder number → idom's
        let semi = scratch(reached, 0)
        let label = scratch(reached, 0)
        let ancestor = scratch(reached, -1)
        defer { [order, parent, dominator, semi, label, ancestor].forEach { $0.deallocate() } }
        var predCount = 0
        vertex.withUnsafeBufferPointer { vertex in
            for i in 0..<reached {
                let v = Int(vertex[i])
                for e in Int(edgeStart[v])..<Int(edgeStart[v + 1]) {
                    let w = order[Int(targets[e])]
                    if w >= 0 { predStart[Int(w) + 1] += 1; predCount += 1 }
                }
            }
        }
        for i in 0..<reached { predStart[i + 1] += predStart[i] }
        let preds = scratch(predCount, 0)
        defer { preds.deallocate() }
        vertex.withUnsafeBufferPointer { vertex in
            let fill = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: reached + 1)
            defer { fill.deallocate() }
            _ = fill.initialize(from: predStart)
            for i in 0..<reached {
                let v = Int(vertex[i])
                for e in Int(edgeStart[v])..<Int(edgeStart[v + 1]) {
                    let w = Int(order[Int(targets[e])])
                    guard w >= 0 else { continue }
                    preds[Int(fill[w])] = Int32(i)
                    fill[w] += 1
                }
            }
            for i in 0..<reached {
                semi[i] = Int32(i)
                label[i] = Int32(i)
                let p = parent[Int(vertex[i])]
                dominator[i] = p >= 0 ? order[Int(p)] : 0
            }
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
        var idom = [Int32](repeating: -1, count: n)
        for i in 1..<max(reached, 1) { idom[Int(vertex[i])] = vertex[Int(dominator[i])] }
        idom[root] = Int32(root)
        return (idom, vertex)
    }
}
