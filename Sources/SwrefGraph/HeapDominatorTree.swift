import CSwrefSystem
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// The dominator tree of the heap by preorder number of its depth-first numbering, on the graph
/// of the references that count (see `RetainedSizes.immediateDominators`).
///
/// It starts from the root tiers' numbering (made here if the tiers have none), walks the
/// `<leaked>` pseudo-root's objects on from it, runs semi-NCA on the numbered nodes, and gives each
/// leaf the nearest common dominator of the nodes that hold it.
public final class HeapDominatorTree {
    public let numbering: DepthFirstNumbering
    /// Per preorder number: the immediate dominator's.
    public let dominator: UnsafeMutableBufferPointer<Int32>
    /// Per object: for a leaf, its immediate dominator's preorder number; -1 otherwise.
    public let leafDominator: UnsafeMutableBufferPointer<Int32>
    public let objectCount: Int
    /// The roots it was made with, `<leaked>` included.
    public let rootCount: Int

    /// - Parameter split: whether two threads share the pass over the references; nil: as
    ///   `Parallel.splits(objects:)` says.
    public init(objectCount n: Int, graph: ObjectGraph, roots: [Root], tiers: RootTiers, leaks: LeakReport, split: Bool? = nil) {
        // A numbering serves one tree: the tree walks the leaked objects into it.
        let numbering = tiers.numbering.flatMap { $0.used ? nil : $0 } ?? RootTiers(objectCount: n, graph: graph,
                                                     roots: roots.last?.kind == .leaked ? Array(roots.dropLast()) : roots,
                                                     numbered: true).numbering!
        numbering.used = true
        self.numbering = numbering
        objectCount = n
        rootCount = roots.count
        let leaked = leaks.groups.flatMap(\.members)
        let rootRank = roots.map { RootTiers.rank(of: $0.kind) }
        tiers.tier.withUnsafeBufferPointer { tier in
            let stack = WalkStack(capacity: n)
            defer { stack.deallocate() }
            // Roots the tiers did not walk: the leaked pseudo-root (its objects keep no tier).
            for index in roots.indices where index >= numbering.rootNumber.count || numbering.rootNumber[index] < 0 {
                let from = numbering.addRoot(index)
                RootTiers.walk(from: roots[index].kind == .leaked ? leaked : roots[index].targets, below: from, rank: nil,
                               graph: graph, tier: UnsafeMutableBufferPointer(mutating: tier), numbering: numbering, stack: stack)
            }
        }
        let count = numbering.count
        let number = numbering.number, rootNumber = numbering.rootNumber
        let leafDominator = UnsafeMutableBufferPointer<Int32>.allocatePooled(capacity: max(n, 1))
        if n == 0 { leafDominator.initialize(repeating: -1) } // else each part sets its own objects'
        self.leafDominator = leafDominator
        // A leaf's holders beyond the first, to meet once the dominators are known.
        let moreHolders = LeafHolders()
        // Two threads each read every reference and take those toward their half of the objects,
        // so that a node's entries are written by one thread; a small heap is not worth a thread.
        let half = split ?? Parallel.splits(objects: n) ? n / 2 : n
        dominator = tiers.tier.withUnsafeBufferPointer { tier in
            graph.edgeStart.withUnsafeBufferPointer { edgeStart in
                graph.targets.withUnsafeBufferPointer { targets in
                    let collecting = Dominators.Predecessors.Collecting(count: count)
                    // Every reference that counts toward part `part`'s objects (root nodes are part
                    // 0's), as preorder numbers; a leaf's first holder into `leafDominator`, the
                    // others into `holders`. Objects in object order: their edges are read in turn.
                    @inline(__always) func collect(toward part: Int, into collector: inout Dominators.Predecessors.Collector,
                                                   holders: inout [(leaf: Int32, holder: Int32)]) {
                        let ours = part == 0 ? 0..<half : half..<n
                        UnsafeMutableBufferPointer(rebasing: leafDominator[ours]).initialize(repeating: -1)
                        @inline(__always) func reach(_ from: Int32, _ w: Int32) {
                            let p = number[Int(w)]
                            if p >= 0 {
                                collector.add(from, p)
                            } else if p == DepthFirstNumbering.leaf {
                                if leafDominator[Int(w)] < 0 { leafDominator[Int(w)] = from } else { holders.append((w, from)) }
                            }
                        }
                        if part == 0 { for root in rootNumber.indices { collector.add(0, rootNumber[root]) } }
                        for root in roots.indices {
                            let from = rootNumber[root]
                            if roots[root].kind == .leaked {
                                for member in leaked where ours.containsObject(member) { reach(from, member) }
                            } else {
                                for target in roots[root].targets where ours.containsObject(target) && tier[Int(target)] >= rootRank[root] {
                                    reach(from, target)
                                }
                            }
                        }
                        let far = 2 * Prefetch.distance, near = Prefetch.distance
                        for v in 0..<n {
                            let from = number[v]
                            guard from >= 0 else { continue }
                            let rank = tier[v]
                            for e in Int(edgeStart[v])..<Int(edgeStart[v + 1]) {
                                // Two steps ahead: a target's tier and number; then, its number
                                // read, the line its edge will write.
                                if e + far < targets.count {
                                    let ahead = targets[e + far]
                                    if ours.containsObject(ahead) {
                                        swref_prefetch(tier.baseAddress! + Int(ahead))
                                        swref_prefetch(number.baseAddress! + Int(ahead))
                                    }
                                    let next = targets[e + near]
                                    if ours.containsObject(next) {
                                        let p = number[Int(next)]
                                        if p >= 0 { collector.prefetch(p) } else { swref_prefetch(leafDominator.baseAddress! + Int(next)) }
                                    }
                                }
                                let w = targets[e]
                                if ours.containsObject(w) && tier[Int(w)] >= rank { reach(from, w) }
                            }
                        }
                    }
                    var first = collecting.collector(), second = collecting.collector()
                    if half < n {
                        Parallel.run({ collect(toward: 0, into: &first, holders: &moreHolders.first) },
                                     { collect(toward: 1, into: &second, holders: &moreHolders.second) })
                    } else {
                        collect(toward: 0, into: &first, holders: &moreHolders.first)
                    }
                    let predecessors = Dominators.Predecessors(collecting, [first, second])
                    defer { predecessors.deallocate() }
                    return Dominators.semiNCA(parent: UnsafeBufferPointer(rebasing: numbering.parent[0..<count]),
                                              predecessors: predecessors)
                }
            }
        }
        // A leaf is on no path to anything else: its dominator is the nearest common one of its holders.
        for (leaf, holder) in moreHolders.first + moreHolders.second {
            leafDominator[Int(leaf)] = Dominators.nearestCommonDominator(leafDominator[Int(leaf)], holder, dominator)
        }
    }

    deinit {
        dominator.deallocatePooled()
        leafDominator.deallocatePooled()
    }

    /// Node numbering of `RetainedSizes`: 0 the super-root, 1…R the roots, objects from R+1.
    @inline(__always)
    public func node(_ code: Int32, offset: Int32) -> Int32 {
        code >= 0 ? code + offset : (code == DepthFirstNumbering.superRoot ? 0 : -1 - code)
    }

    /// Every node's immediate dominator in that numbering; -1 when unreachable.
    public func immediateDominators() -> PooledArray<Int32> {
        let n = objectCount, offset = Int32(rootCount + 1)
        let vertex = numbering.vertex, number = numbering.number
        var idom = PooledArray<Int32>(repeating: -1, count: n + rootCount + 1)
        idom.withUnsafeMutableBufferPointer { idom in
            idom[0] = 0
            for (root, pre) in numbering.rootNumber.enumerated() where pre >= 0 {
                idom[root + 1] = node(vertex[Int(dominator[Int(pre)])], offset: offset)
            }
            for v in 0..<n {
                let p = number[v]
                if p >= 0 {
                    idom[v + Int(offset)] = node(vertex[Int(dominator[Int(p)])], offset: offset)
                } else if p == DepthFirstNumbering.leaf && leafDominator[v] >= 0 {
                    idom[v + Int(offset)] = node(vertex[Int(leafDominator[v])], offset: offset)
                }
            }
        }
        return idom
    }

    /// Retained bytes and object counts per node, in that numbering. Sizes flow up the tree in
    /// decreasing preorder number: a node's dominator always has a smaller one.
    public func retainedSizes(size: (Int) -> UInt64) -> (bytes: PooledArray<UInt64>, counts: PooledArray<UInt32>) {
        let n = objectCount, count = numbering.count, offset = rootCount + 1
        let number = numbering.number
        let bytes = UnsafeMutableBufferPointer<UInt64>.allocatePooled(capacity: count)
        let counts = UnsafeMutableBufferPointer<UInt32>.allocatePooled(capacity: count)
        bytes.initialize(repeating: 0)
        counts.initialize(repeating: 0)
        defer { bytes.deallocatePooled(); counts.deallocatePooled() }
        for v in 0..<n {
            let p = number[v]
            let holder = p >= 0 ? Int(p) : (p == DepthFirstNumbering.leaf ? Int(leafDominator[v]) : -1)
            guard holder >= 0 else { continue }
            bytes[holder] += size(v)
            counts[holder] += 1
        }
        for i in stride(from: count - 1, through: 1, by: -1) {
            let d = Int(dominator[i])
            bytes[d] += bytes[i]
            counts[d] += counts[i]
        }
        // An object no root reaches retains itself, as does a leaf.
        var nodeBytes = PooledArray<UInt64>(repeating: 0, count: n + offset)
        var nodeCounts = PooledArray<UInt32>(repeating: 0, count: n + offset)
        nodeBytes.withUnsafeMutableBufferPointer { nodeBytes in
            nodeCounts.withUnsafeMutableBufferPointer { nodeCounts in
                nodeBytes[0] = bytes[0]
                nodeCounts[0] = counts[0]
                for (root, pre) in numbering.rootNumber.enumerated() where pre >= 0 {
                    nodeBytes[root + 1] = bytes[Int(pre)]
                    nodeCounts[root + 1] = counts[Int(pre)]
                }
                for v in 0..<n {
                    let p = number[v]
                    nodeBytes[v + offset] = p >= 0 ? bytes[Int(p)] : size(v)
                    nodeCounts[v + offset] = p >= 0 ? counts[Int(p)] : 1
                }
            }
        }
        return (nodeBytes, nodeCounts)
    }
}

/// A leaf's further holders, one list per part of the tree's pass over the references.
private final class LeafHolders {
    var first: [(leaf: Int32, holder: Int32)] = []
    var second: [(leaf: Int32, holder: Int32)] = []
}
