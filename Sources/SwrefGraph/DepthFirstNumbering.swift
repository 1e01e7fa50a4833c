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
package final class DepthFirstNumbering {
    package static let unvisited: Int32 = -1
    package static let leaf: Int32 = -2
    package static let superRoot: Int32 = -1

    /// Per object: its preorder number, `unvisited` or `leaf`.
    package let number: UnsafeMutableBufferPointer<Int32>
    /// Per preorder number: the node — an object's index, `superRoot`, or `-2 - r` for root r.
    package let vertex: UnsafeMutableBufferPointer<Int32>
    /// Per preorder number: the depth-first parent's preorder number.
    package let parent: UnsafeMutableBufferPointer<Int32>
    package private(set) var count = 1
    /// A dominator tree was made from it (and changed it).
    package var used = false
    /// Per root index: its preorder number (-1 until walked).
    package private(set) var rootNumber: [Int32] = []

    package init(objectCount: Int, rootCount: Int) {
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

    package static func rootCode(_ root: Int) -> Int32 { -2 - Int32(root) }

    /// Numbers root `index` below the super-root.
    package func addRoot(_ index: Int) -> Int32 {
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
    package func add(object w: Int, from: Int32) -> Int32 {
        let pre = Int32(count)
        vertex[count] = Int32(w)
        parent[count] = from
        count += 1
        number[w] = pre
        return pre
    }
}

/// The scratch stack of a depth-first walk over objects, sized for every object.
package struct WalkStack {
    package let nodes: UnsafeMutableBufferPointer<Int32>
    package let edges: UnsafeMutableBufferPointer<UInt32>
    /// The node's preorder number, when the walk numbers.
    package let numbers: UnsafeMutableBufferPointer<Int32>

    package init(capacity: Int) {
        nodes = .allocate(capacity: max(capacity, 1))
        edges = .allocate(capacity: max(capacity, 1))
        numbers = .allocate(capacity: max(capacity, 1))
    }

    package func deallocate() { nodes.deallocate(); edges.deallocate(); numbers.deallocate() }
}
