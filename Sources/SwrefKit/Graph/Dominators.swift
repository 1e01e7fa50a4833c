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
        // Depth-first numbering from the root.
        var order = [Int32](repeating: -1, count: n)      // node → preorder number
        var vertex = [Int32](); vertex.reserveCapacity(n) // preorder number → node
        var parent = [Int32](repeating: -1, count: n)
        var stack: [(node: Int32, edge: UInt32)] = [(Int32(root), edgeStart[root])]
        order[root] = 0
        vertex.append(Int32(root))
        while let top = stack.last {
            let v = Int(top.node)
            if top.edge < edgeStart[v + 1] {
                stack[stack.count - 1].edge += 1
                let w = Int(targets[Int(top.edge)])
                if order[w] < 0 {
                    order[w] = Int32(vertex.count)
                    vertex.append(Int32(w))
                    parent[w] = Int32(v)
                    stack.append((Int32(w), edgeStart[w]))
                }
            } else {
                stack.removeLast()
            }
        }
        let reached = vertex.count
        // Semi-NCA (Georgiadis): semidominators by Lengauer–Tarjan's evaluation with path
        // compression, then each idom as the nearest common ancestor of its DFS parent and its
        // semidominator. Every array is indexed by preorder number, so that the walks stay local.
        var predStart = [UInt32](repeating: 0, count: reached + 1)
        for i in 0..<reached {
            let v = Int(vertex[i])
            for e in Int(edgeStart[v])..<Int(edgeStart[v + 1]) {
                let w = order[Int(targets[e])]
                if w >= 0 { predStart[Int(w) + 1] += 1 }
            }
        }
        for i in 0..<reached { predStart[i + 1] += predStart[i] }
        var preds = [Int32](repeating: 0, count: Int(predStart[reached]))
        do {
            var fill = predStart
            for i in 0..<reached {
                let v = Int(vertex[i])
                for e in Int(edgeStart[v])..<Int(edgeStart[v + 1]) {
                    let w = Int(order[Int(targets[e])])
                    guard w >= 0 else { continue }
                    preds[Int(fill[w])] = Int32(i)
                    fill[w] += 1
                }
            }
        }
        var dominator = [Int32](repeating: 0, count: reached)  // preorder number → idom's
        var semi = [Int32](repeating: 0, count: reached)
        var label = [Int32](repeating: 0, count: reached)
        var ancestor = [Int32](repeating: -1, count: reached)
        var path: [Int32] = []
        for i in 0..<reached {
            semi[i] = Int32(i)
            label[i] = Int32(i)
            dominator[i] = parent[Int(vertex[i])] >= 0 ? order[Int(parent[Int(vertex[i])])] : 0
        }
        parent = []
        semi.withUnsafeMutableBufferPointer { semi in
            label.withUnsafeMutableBufferPointer { label in
                ancestor.withUnsafeMutableBufferPointer { ancestor in
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
                }
            }
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
