/// The dominator tree of the heap and what each object and root retains: the bytes and objects
/// that would be freed if it went away.
///
/// Node numbering: 0 is a virtual super-root, 1…R the roots (in `Attribution.roots` order, leaked
/// pseudo-root included, which points at every leak root), then the objects from R+1.
public struct RetainedSizes {
    public let rootCount: Int
    /// Immediate dominator of every node; -1 if unreachable.
    public let idom: [Int32]
    public let retainedBytes: [UInt64]
    public let retainedCount: [UInt32]
    /// Reachable nodes, every node after its immediate dominator.
    public let topDown: [Int32]

    @inline(__always) public func node(ofObject object: Int) -> Int { object + rootCount + 1 }
    @inline(__always) public func object(ofNode node: Int) -> Int? { node > rootCount ? node - rootCount - 1 : nil }
    @inline(__always) public func node(ofRoot root: Int) -> Int { root + 1 }

    /// Bytes of the arrays the computation needs, to decide whether it fits.
    public static func estimatedMemory(objects: Int, edges: Int, roots: Int) -> UInt64 {
        let nodes = UInt64(objects + roots + 1)
        return nodes * 4 * 12 + UInt64(edges) * 4 * 3
    }

    /// - Parameters:
    ///   - roots: every root, the `<leaked>` one included when there are leaks.
    ///   - tiers: which kind of root first reaches each object.
    public init(objects: ObjectTable, graph: ObjectGraph, roots: [Root], tiers: RootTiers, leaks: LeakReport) {
        rootCount = roots.count
        let nodeCount = objects.count + roots.count + 1
        var edgeStart = [UInt32](); edgeStart.reserveCapacity(nodeCount + 1)
        var targets = [Int32](); targets.reserveCapacity(graph.edgeCount + roots.reduce(0) { $0 + $1.targets.count } + roots.count)
        let offset = Int32(roots.count + 1)
        edgeStart.append(0)
        for index in roots.indices { targets.append(Int32(index + 1)) }
        edgeStart.append(UInt32(targets.count))
        // Root kinds are tiers, as in the first-path walk: a reference counts only if it comes from
        // the tier that first reached its object or an earlier one. A stale stack word, or a stale
        // word in an untyped block reached from the runtime's data, does not hold an object that a
        // global holds (ARC retains by counts, not by words lying around).
        let rootRank = roots.map { RootTiers.rank(of: $0.kind) }
        let tier = tiers.tier
        for (rootIndex, root) in roots.enumerated() {
            if root.kind == .leaked {
                for group in leaks.groups { for member in group.members { targets.append(member + offset) } }
            } else {
                let rank = rootRank[rootIndex]
                for target in root.targets where tier[Int(target)] >= rank { targets.append(target + offset) }
            }
            edgeStart.append(UInt32(targets.count))
        }
        for object in 0..<objects.count {
            for edge in graph.edges(of: object) where tier[Int(graph.targets[edge])] >= tier[object] {
                targets.append(graph.targets[edge] + offset)
            }
            edgeStart.append(UInt32(targets.count))
        }
        let idom = Dominators.immediateDominators(edgeStart: edgeStart, targets: targets, root: 0)
        targets = []
        edgeStart = []
        // Every node after its immediate dominator, and otherwise in node order: each node not yet
        // placed brings the chain of dominators above it that are not placed either. Node order
        // keeps the passes over the arrays (here and in the attribution) nearly sequential, where
        // the depth-first preorder jumps around a heap whose objects were allocated out of order.
        var order = [Int32](); order.reserveCapacity(nodeCount)
        do {
            var placed = [Bool](repeating: false, count: nodeCount)
            var chain: [Int32] = []
            for v in 0..<nodeCount where idom[v] >= 0 && !placed[v] {
                var u = v
                while !placed[u] {
                    placed[u] = true
                    chain.append(Int32(u))
                    if idom[u] == Int32(u) { break } // the super-root
                    u = Int(idom[u])
                }
                while let w = chain.popLast() { order.append(w) }
            }
        }
        // Sizes flow up the tree: children before parents, the reverse of that order.
        var bytes = [UInt64](repeating: 0, count: nodeCount)
        var counts = [UInt32](repeating: 0, count: nodeCount)
        for object in 0..<objects.count {
            bytes[object + Int(offset)] = objects.sizes[object]
            counts[object + Int(offset)] = 1
        }
        for v in order.reversed() where v != 0 {
            let p = Int(idom[Int(v)])
            bytes[p] += bytes[Int(v)]
            counts[p] += counts[Int(v)]
        }
        self.idom = idom
        topDown = order
        retainedBytes = bytes
        retainedCount = counts
    }

    public func retainedBytes(ofObject object: Int) -> UInt64 { retainedBytes[node(ofObject: object)] }
    public func retainedCount(ofObject object: Int) -> UInt32 { retainedCount[node(ofObject: object)] }
    public func retainedBytes(ofRoot root: Int) -> UInt64 { retainedBytes[node(ofRoot: root)] }
    public func immediateDominator(ofObject object: Int) -> Int? {
        let d = idom[node(ofObject: object)]
        return d < 0 ? nil : Int(d)
    }
}
