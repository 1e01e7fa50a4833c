import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefTestSupport
import XCTest

/// Retained sizes against their definition, on random heaps: an object retains exactly the
/// objects that no root reaches once it is gone (itself included).
final class RetainedSizePropertyTests: XCTestCase {
    func graph(_ adjacency: [[Int32]]) -> ObjectGraph {
        var graph = ObjectGraph(objectCount: adjacency.count)
        for list in adjacency {
            for target in list { graph.add(target: target, label: 0) }
            graph.finishObject()
        }
        return graph
    }

    /// A table of `n` untyped 32-byte blocks (in memory nothing holds).
    func table(_ n: Int) -> ObjectTable {
        var blocks = HeapBlocks(allocator: "test", overhead: 0)
        for index in 0..<n {
            blocks.addresses.append(0x10_0000 + UInt64(index) * 32)
            blocks.sizes.append(32)
        }
        let target = InMemoryTarget()
        return ObjectTable(heap: blocks, recognizer: SwiftObjectRecognizer(source: target, images: ImageList(memoryMap: target.memoryMap),
                                                                           reflection: nil))
    }

    /// The objects reachable from the roots' targets when `removed` is taken out.
    func reachable(_ adjacency: [[Int32]], from starts: [Int32], without removed: Int?) -> Set<Int> {
        var seen: Set<Int> = []
        var stack: [Int] = starts.map { Int($0) }.filter { $0 != removed }
        while let v = stack.popLast() {
            guard seen.insert(v).inserted else { continue }
            stack += adjacency[v].map { Int($0) }.filter { $0 != removed && !seen.contains($0) }
        }
        return seen
    }

    /// Up to 2n references between n objects, drawn from `random`.
    func randomAdjacency(_ n: Int, _ random: inout SplitMix) -> [[Int32]] {
        var adjacency = [[Int32]](repeating: [], count: n)
        for _ in 0..<Int(random.next() % UInt64(2 * n + 1)) {
            adjacency[Int(random.next() % UInt64(n))].append(Int32(random.next() % UInt64(n)))
        }
        return adjacency
    }

    /// `count` objects of `n`, drawn from `random`.
    func randomTargets(_ count: Int, _ n: Int, _ random: inout SplitMix) -> [Int32] {
        (0..<count).map { _ in Int32(random.next() % UInt64(n)) }
    }

    func testRetainedSizesMatchTheRemovalDefinition() {
        var random = SplitMix(seed: 2024)
        for round in 0..<300 {
            let n = 1 + Int(random.next() % 30)
            let adjacency = randomAdjacency(n, &random)
            // Roots of one kind: every reference counts, so retained sizes are the textbook ones.
            var roots: [Root] = []
            for index in 0..<Int(random.next() % 4) {
                var root = Root(name: "global \(index)", kind: .global)
                root.targets = randomTargets(1 + Int(random.next() % 3), n, &random)
                roots.append(root)
            }
            let heap = graph(adjacency)
            let tiers = RootTiers(objectCount: n, graph: heap, roots: roots, numbered: round % 2 == 0)
            let starts = roots.flatMap(\.targets)
            let all = reachable(adjacency, from: starts, without: nil)
            for v in 0..<n { XCTAssertEqual(tiers.isReachable(v), all.contains(v), "round \(round): reachability of \(v)") }
            let size = { (v: Int) in UInt64(v * 3 + 1) }
            // Every other round with the passes after the tree one after the other (an analysis
            // read through a window), and every third with the tree's pass over the references
            // shared by two threads (as on a large heap): the same answers.
            let sizes = RetainedSizes(objectCount: n, size: size, graph: heap, roots: roots, tiers: tiers, leaks: LeakReport(),
                                      lowMemory: round % 4 >= 2, split: round % 3 == 0)
            for v in 0..<n {
                let retained: [Int]
                if all.contains(v) {
                    let without = reachable(adjacency, from: starts, without: v)
                    retained = all.filter { !without.contains($0) }
                } else {
                    retained = [v]   // no root reaches it: it retains itself
                }
                XCTAssertEqual(Int(sizes.retainedCount(ofObject: v)), retained.count, "round \(round): count of \(v) in \(adjacency), roots \(starts)")
                XCTAssertEqual(sizes.retainedBytes(ofObject: v), retained.reduce(0) { $0 + size($1) }, "round \(round): bytes of \(v)")
            }
            // A root retains what no other root reaches.
            for (index, root) in roots.enumerated() {
                let others = reachable(adjacency, from: roots.enumerated().filter { $0.offset != index }.flatMap(\.element.targets), without: nil)
                let own = reachable(adjacency, from: root.targets, without: nil).subtracting(others)
                XCTAssertEqual(sizes.retainedBytes(ofRoot: index), own.reduce(0) { $0 + size($1) }, "round \(round): root \(index)")
            }
        }
    }

    /// The tree's pass over the references shared by two threads (each taking the references
    /// toward its half of the objects) gives the one thread's tree, on random heaps with root
    /// kinds that rank references and with leaks under the `<leaked>` root.
    func testTwoThreadsGiveTheOneThreadTree() {
        var random = SplitMix(seed: 505)
        for round in 0..<200 {
            let n = 2 + Int(random.next() % 40)
            let adjacency = randomAdjacency(n, &random)
            var roots: [Root] = []
            for (index, kind) in [RootKind.global, .stack, .conservative].enumerated() where random.next() % 3 != 0 {
                var root = Root(name: "root \(index)", kind: kind)
                root.targets = randomTargets(1 + Int(random.next() % 3), n, &random)
                roots.append(root)
            }
            let heap = graph(adjacency)
            let objects = table(n)
            let tiers = RootTiers(objectCount: n, graph: heap, roots: roots, numbered: true)
            let leaks = LeakFinder.find(objects: objects, graph: heap, names: FrameNames(objects: objects), tiers: tiers)
            let withLeaked = leaks.groups.isEmpty ? roots : Attribution.withLeakedRoot(roots)
            let size = { (v: Int) in UInt64(v * 5 + 2) }
            let one = RetainedSizes(objectCount: n, size: size, graph: heap, roots: withLeaked, tiers: tiers, leaks: leaks, split: false)
            let two = RetainedSizes(objectCount: n, size: size, graph: heap, roots: withLeaked, tiers: tiers, leaks: leaks, split: true)
            XCTAssertEqual(Array(two.idom), Array(one.idom), "round \(round): \(adjacency), roots \(roots.map(\.targets))")
            XCTAssertEqual(Array(two.retainedBytes), Array(one.retainedBytes), "round \(round)")
            XCTAssertEqual(Array(two.retainedCount), Array(one.retainedCount), "round \(round)")
        }
    }

    /// Leak groups on random heaps: every unreached object is in exactly one group, and a group's
    /// retained objects are reached from its members.
    func testLeakGroupsPartitionTheUnreachedObjects() {
        var random = SplitMix(seed: 77)
        for round in 0..<200 {
            let n = 1 + Int(random.next() % 25)
            let adjacency = randomAdjacency(n, &random)
            var root = Root(name: "stack", kind: .stack)
            root.targets = randomTargets(Int(random.next() % 3), n, &random)
            let heap = graph(adjacency)
            let tiers = RootTiers(objectCount: n, graph: heap, roots: [root])
            let unreached = Set((0..<n).filter { !tiers.isReachable($0) })
            XCTAssertEqual(tiers.unreachedObjects(), unreached.sorted(), "round \(round): the unreached, as memchr finds them")
            let objects = table(n)
            let report = LeakFinder.find(objects: objects, graph: heap, names: FrameNames(objects: objects), reachable: tiers.isReachable)
            let listed = report.groups.flatMap { $0.members + $0.retained }.map(Int.init)
            XCTAssertEqual(listed.count, unreached.count, "round \(round): each once")
            XCTAssertEqual(Set(listed), unreached, "round \(round)")
            for group in report.groups {
                let below = reachable(adjacency, from: group.members, without: nil)
                XCTAssertTrue(Set(group.retained.map(Int.init)).isSubset(of: below), "round \(round)")
                let selfLoop = group.members.count == 1 && adjacency[Int(group.members[0])].contains(group.members[0])
                XCTAssertEqual(group.kind == .cycle, group.members.count > 1 || selfLoop, "round \(round)")
            }
        }
    }
}
