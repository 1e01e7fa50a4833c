/// Immediate dominators of a directed graph in compressed sparse rows, by Lengauer and Tarjan's
/// algorithm (the simple version: path compression, O(m log n)), iterative so that ten-million-node
/// heaps do not overflow the stack. Nodes unreachable from the root get -1.
public enum Dominators {
    /// - Parameters:
    ///   - edgeStart: `edgeStart[v]..<edgeStart[v+1]` indexes `targets` for node v (count + 1 entries).
    /// - Returns: `idom[v]` for every node; `idom[root] == root`.
    public static func immediateDominators(edgeStart: [UInt32], targets: [Int32], root: Int) -> [Int32] {
        let n = edgeStart.count - 1
        guard n > 0 else { return [] }
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
        // Predecessors of reached nodes, in CSR.
        var predStart = [UInt32](repeating: 0, count: n + 1)
        for v in 0..<n where order[v] >= 0 {
            for e in Int(edgeStart[v])..<Int(edgeStart[v + 1]) where order[Int(targets[e])] >= 0 { predStart[Int(targets[e]) + 1] += 1 }
        }
        for v in 0..<n { predStart[v + 1] += predStart[v] }
        var fill = predStart
        var preds = [Int32](repeating: 0, count: Int(predStart[n]))
        for v in 0..<n where order[v] >= 0 {
            for e in Int(edgeStart[v])..<Int(edgeStart[v + 1]) {
                let w = Int(targets[e])
                guard order[w] >= 0 else { continue }
                preds[Int(fill[w])] = Int32(v)
                fill[w] += 1
            }
        }
        fill = []

        var semi = order                                   // semidominator, as a preorder number
        var idom = [Int32](repeating: -1, count: n)
        var ancestor = [Int32](repeating: -1, count: n)
        var label = [Int32](repeating: 0, count: n)
        for v in 0..<n { label[v] = Int32(v) }
        var bucketHead = [Int32](repeating: -1, count: n)
        var bucketNext = [Int32](repeating: -1, count: n)
        var path: [Int32] = []

        func eval(_ v: Int) -> Int {
            if ancestor[v] < 0 { return v }
            // Compress the ancestor path, keeping the label with the smallest semidominator.
            var u = v
            while ancestor[Int(ancestor[u])] >= 0 { path.append(Int32(u)); u = Int(ancestor[u]) }
            while let x = path.popLast() {
                let a = Int(ancestor[Int(x)])
                if semi[Int(label[a])] < semi[Int(label[Int(x)])] { label[Int(x)] = label[a] }
                ancestor[Int(x)] = ancestor[a]
            }
            return Int(label[v])
        }

        if reached > 1 {
            for i in stride(from: reached - 1, through: 1, by: -1) {
                let w = Int(vertex[i])
                for p in Int(predStart[w])..<Int(predStart[w + 1]) {
                    let u = eval(Int(preds[p]))
                    if semi[u] < semi[w] { semi[w] = semi[u] }
                }
                let s = Int(vertex[Int(semi[w])])
                bucketNext[w] = bucketHead[s]
                bucketHead[s] = Int32(w)
                let p = Int(parent[w])
                ancestor[w] = Int32(p)
                var v = bucketHead[p]
                while v >= 0 {
                    let u = eval(Int(v))
                    idom[Int(v)] = semi[u] < semi[Int(v)] ? Int32(u) : Int32(p)
                    v = bucketNext[Int(v)]
                }
                bucketHead[p] = -1
            }
            for i in 1..<reached {
                let w = Int(vertex[i])
                if idom[w] != vertex[Int(semi[w])] { idom[w] = idom[Int(idom[w])] }
            }
        }
        idom[root] = Int32(root)
        return idom
    }
}
