import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// The heap walked depth-first from its roots, in preorder: the numbering that the dominator
/// computation starts from, made by the same walk that finds the root tiers (`RootTiers`), so that
/// a large heap is walked once for both.
///
/// Preorder number 0 is a virtual super-root above every root. Objects without references
/// (leaves) are marked but not numbered: no path passes through them, so their dominators follow
/// from their holders' (`HeapDominatorTree`). On a heap of byte arrays and strings that is often
/// half the objects.
///
/// (Recording each reference's target number and counts during the walk, to spare the tree its pass
/// over the references, was slower: the walk meets references in a random order.)
public final class DepthFirstNumbering {
    public static let unvisited: Int32 = -1
    public static let leaf: Int32 = -2
    public static let superRoot: Int32 = -1

    /// Per object: its preorder number, `unvisited` or `leaf`.
    public let number: UnsafeMutableBufferPointer<Int32>
    /// Per preorder number: the node — an object's index, `superRoot`, or `-2 - r` for root r.
    public let vertex: UnsafeMutableBufferPointer<Int32>
    /// Per preorder number: the depth-first parent's preorder number.
    public let parent: UnsafeMutableBufferPointer<Int32>
    public private(set) var count = 1
    /// A dominator tree was made from it (and changed it).
    public var used = false
    /// Per root index: its preorder number (-1 until walked).
    public private(set) var rootNumber: [Int32] = []

    public init(objectCount: Int, rootCount: Int) {
        number = .allocatePooled(capacity: max(objectCount, 1))
        number.initialize(repeating: DepthFirstNumbering.unvisited)
        // Every root, the `<leaked>` one that may be added later, the super-root, the objects.
        let nodes = objectCount + rootCount + 2
        vertex = .allocatePooled(capacity: nodes)
        parent = .allocatePooled(capacity: nodes)
        vertex[0] = DepthFirstNumbering.superRoot
        parent[0] = 0
    }

    deinit {
        for buffer in [number, vertex, parent] { buffer.deallocatePooled() }
    }

    public static func rootCode(_ root: Int) -> Int32 { -2 - Int32(root) }

    /// Numbers root `index` below the super-root.
    public func addRoot(_ index: Int) -> Int32 {
        while rootNumber.count <= index { rootNumber.append(-1) }
        let pre = Int32(count)
        vertex[count] = DepthFirstNumbering.rootCode(index)
        parent[count] = 0
        count += 1
        rootNumber[index] = pre
        return pre
    }

    /// Numbers object `w`, reached from the node numbered `from`.
    @inline(__always)
    public func add(object w: Int, from: Int32) -> Int32 {
        let pre = Int32(count)
        vertex[count] = Int32(w)
        parent[count] = from
        count += 1
        number[w] = pre
        return pre
    }
}

/// The scratch stack of a depth-first walk over objects, sized for every object.
public struct WalkStack {
    public let nodes: UnsafeMutableBufferPointer<Int32>
    public let edges: UnsafeMutableBufferPointer<UInt32>
    /// The node's preorder number, when the walk numbers.
    public let numbers: UnsafeMutableBufferPointer<Int32>

    public init(capacity: Int) {
        nodes = .allocate(capacity: max(capacity, 1))
        edges = .allocate(capacity: max(capacity, 1))
        numbers = .allocate(capacity: max(capacity, 1))
    }

    public func deallocate() { nodes.deallocate(); edges.deallocate(); numbers.deallocate() }
}
