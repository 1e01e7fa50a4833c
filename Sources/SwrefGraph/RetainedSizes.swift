import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// The dominator tree of the heap and what each object and root retains: the bytes and objects
/// that would be freed if it went away.
///
/// Node numbering: 0 is a virtual super-root, 1…R the roots (in `Attribution.roots` order, leaked
/// pseudo-root included, which points at every leak root), then the objects from R+1.
public struct RetainedSizes {
    public let rootCount: Int
    /// Immediate dominator of every node; -1 if unreachable.
    public let idom: PooledArray<Int32>
    public let retainedBytes: PooledArray<UInt64>
    public let retainedCount: PooledArray<UInt32>
    /// Reachable nodes, every node after its immediate dominator.
    public let topDown: PooledArray<Int32>

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
    public init(objects: ObjectTable, graph: ObjectGraph, roots: [Root], tiers: RootTiers, leaks: LeakReport, lowMemory: Bool = false) {
        self.init(objectCount: objects.count, size: { objects.sizes[$0] }, graph: graph, roots: roots, tiers: tiers, leaks: leaks,
                  lowMemory: lowMemory)
    }

    /// - Parameters:
    ///   - size: the bytes of object i.
    ///   - lowMemory: for an analysis whose memory must follow the objects (a copy read back
    ///     through a window): the two passes after the tree run one after the other.
    ///   - split: whether the tree's pass over the references is shared by two threads (nil: by
    ///     the heap's size).
    public init(objectCount: Int, size: (Int) -> UInt64, graph: ObjectGraph, roots: [Root], tiers: RootTiers, leaks: LeakReport,
                lowMemory: Bool = false, split: Bool? = nil) {
        rootCount = roots.count
        let tree = HeapDominatorTree(objectCount: objectCount, graph: graph, roots: roots, tiers: tiers, leaks: leaks, split: split)
        // The sizes and the order are independent passes over the tree: one on each core, unless memory counts more.
        var sizes: (bytes: PooledArray<UInt64>, counts: PooledArray<UInt32>) = (PooledArray(), PooledArray())
        let ordered = TreeOrder()
        func order() {
            ordered.idom = tree.immediateDominators()
            ordered.order = RetainedSizes.topDownOrder(idom: ordered.idom)
        }
        if lowMemory {
            // One after the other, the two passes' arrays never coexist: 6 bytes an object less at
            // the analysis' peak, for about 15 % more time in this phase.
            sizes = tree.retainedSizes(size: size)
            order()
        } else {
            Parallel.run({ sizes = tree.retainedSizes(size: size) }, order)
        }
        (retainedBytes, retainedCount) = sizes
        idom = ordered.idom
        topDown = ordered.order
    }

    /// Every node after its immediate dominator, and otherwise in node order: each node not yet
    /// placed brings the chain of dominators above it that are not placed either. Node order keeps
    /// the passes over the arrays (here and in the attribution) nearly sequential, where the
    /// depth-first preorder jumps around a heap whose objects were allocated out of order.
    public static func topDownOrder(idom: PooledArray<Int32>) -> PooledArray<Int32> {
        let nodeCount = idom.count
        var placed = PooledArray<Bool>(repeating: false, count: nodeCount)
        var chain: [Int32] = []
        return idom.withUnsafeBufferPointer { idom in
            placed.withUnsafeMutableBufferPointer { placed in
                PooledArray(unsafeUninitializedCapacity: nodeCount) { order, count in
                    for v in 0..<nodeCount where idom[v] >= 0 && !placed[v] {
                        // Most nodes come after their dominator (a holder allocated before what it
                        // holds): placed at once, without the chain's array.
                        let d = Int(idom[v])
                        if d == v || placed[d] {
                            placed[v] = true
                            order[count] = Int32(v)
                            count += 1
                            continue
                        }
                        var u = v
                        while !placed[u] {
                            placed[u] = true
                            chain.append(Int32(u))
                            if idom[u] == Int32(u) { break } // the super-root
                            u = Int(idom[u])
                        }
                        while let w = chain.popLast() {
                            order[count] = w
                            count += 1
                        }
                    }
                }
            }
        }
    }

    /// The immediate dominator of every node (numbered as above; -1 when unreachable), on the graph
    /// of the references that count: root kinds are tiers, as in the first-path walk, so a
    /// reference counts only if it comes from the tier that first reached its object or an earlier
    /// one. A stale stack word, or a stale word in an untyped block reached from the runtime's data,
    /// does not hold an object that a global holds (ARC retains by counts, not by words lying around).
    public static func immediateDominators(objectCount: Int, graph: ObjectGraph, roots: [Root], tiers: RootTiers,
                                           leaks: LeakReport) -> [Int32] {
        Array(HeapDominatorTree(objectCount: objectCount, graph: graph, roots: roots, tiers: tiers, leaks: leaks)
            .immediateDominators())
    }

    public func retainedBytes(ofObject object: Int) -> UInt64 { retainedBytes[node(ofObject: object)] }
    public func retainedCount(ofObject object: Int) -> UInt32 { retainedCount[node(ofObject: object)] }
    public func retainedBytes(ofRoot root: Int) -> UInt64 { retainedBytes[node(ofRoot: root)] }
    public func immediateDominator(ofObject object: Int) -> Int? {
        let d = idom[node(ofObject: object)]
        return d < 0 ? nil : Int(d)
    }
}

/// What the second thread hands back: the immediate dominators and the top-down order.
private final class TreeOrder {
    var idom = PooledArray<Int32>()
    var order = PooledArray<Int32>()
}
