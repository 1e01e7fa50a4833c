import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefTestSupport
import XCTest

/// Dominators on hand-built graphs, and against a naive computation on random ones.
final class DominatorTests: XCTestCase {
    /// CSR from adjacency lists.
    func csr(_ adjacency: [[Int]]) -> (edgeStart: [UInt32], targets: [Int32]) {
        var edgeStart: [UInt32] = [0]
        var targets: [Int32] = []
        for list in adjacency {
            targets += list.map(Int32.init)
            edgeStart.append(UInt32(targets.count))
        }
        return (edgeStart, targets)
    }

    func idom(_ adjacency: [[Int]], root: Int = 0) -> [Int] {
        let graph = csr(adjacency)
        return Dominators.immediateDominators(edgeStart: graph.edgeStart, targets: graph.targets, root: root).map(Int.init)
    }

    func testDiamond() {
        // 0 → 1, 0 → 2, 1 → 3, 2 → 3: node 3 is dominated by 0 only.
        XCTAssertEqual(idom([[1, 2], [3], [3], []]), [0, 0, 0, 0])
    }

    func testSharedSubtreeUnderTwoRoots() {
        // super 0 → roots 1, 2; root 1 → a(3); root 2 → b(4); a → s(5); b → s; s → t(6).
        XCTAssertEqual(idom([[1, 2], [3], [4], [5], [5], [6], []]), [0, 0, 0, 1, 2, 0, 5])
    }

    func testCycleHangingOffTwoRoots() {
        // super 0 → roots 1, 2; 1 → x(3); 2 → y(4); x ⇄ y; y → z(5); unreachable 6 → 3.
        XCTAssertEqual(idom([[1, 2], [3], [4], [4], [3, 5], [], [3]]), [0, 0, 0, 0, 0, 4, -1])
    }

    func testChainAndLoopBack() {
        // 0 → 1 → 2 → 3 → 1, 2 → 4: a loop does not change the chain's dominators.
        XCTAssertEqual(idom([[1], [2], [3, 4], [1], []]), [0, 0, 1, 2, 2])
    }

    /// v dominates w iff removing v makes w unreachable from the root.
    func naiveDominators(_ adjacency: [[Int]]) -> [Set<Int>] {
        let n = adjacency.count
        func reachable(without removed: Int?) -> Set<Int> {
            guard removed != 0 else { return [] }
            var seen: Set<Int> = [0]
            var stack = [0]
            while let v = stack.popLast() {
                for w in adjacency[v] where w != removed && !seen.contains(w) { seen.insert(w); stack.append(w) }
            }
            return seen
        }
        let all = reachable(without: nil)
        var dominators = [Set<Int>](repeating: [], count: n)
        for v in 0..<n {
            let without = reachable(without: v)
            for w in all where w != v && !without.contains(w) { dominators[w].insert(v) }
        }
        for w in all { dominators[w].insert(w) }
        return dominators
    }

    func testRandomGraphsAgainstNaiveComputation() {
        var rng = SplitMix(seed: 42)
        for round in 0..<200 {
            let n = 2 + Int(rng.next() % 14)
            let edges = Int(rng.next() % UInt64(n * 3))
            var adjacency = [[Int]](repeating: [], count: n)
            for _ in 0..<edges { adjacency[Int(rng.next() % UInt64(n))].append(Int(rng.next() % UInt64(n))) }
            let computed = idom(adjacency)
            let naive = naiveDominators(adjacency)
            for w in 0..<n {
                if naive[w].isEmpty {
                    XCTAssertEqual(computed[w], -1, "round \(round): node \(w) is unreachable")
                    continue
                }
                // The immediate dominator is the strict dominator that every other strict dominator dominates.
                let strict = naive[w].subtracting([w])
                let expected = w == 0 ? 0 : strict.first { candidate in strict.allSatisfy { naive[candidate].contains($0) } }!
                XCTAssertEqual(computed[w], expected, "round \(round): idom of \(w) in \(adjacency)")
            }
            // Retained count of a node = the nodes it dominates: checked through the naive sets.
            var retained = [Int](repeating: 0, count: n)
            for w in 0..<n where computed[w] >= 0 {
                var v = w
                retained[v] += 1
                while v != 0 { v = computed[v]; retained[v] += 1 }
            }
            for v in 0..<n where computed[v] >= 0 {
                XCTAssertEqual(retained[v], (0..<n).filter { naive[$0].contains(v) }.count, "round \(round): retained count of \(v)")
            }
        }
    }

    /// The heap's own path (root tiers' depth-first numbering, leaves left out of semi-NCA, the
    /// leaked pseudo-root walked last) against the generic algorithm on the graph of references
    /// that count, built here the plain way from tiers computed here breadth-first.
    func testHeapDominatorsMatchTheGenericAlgorithm() {
        var rng = SplitMix(seed: 7)
        let kinds: [RootKind] = [.global, .stack, .register, .conservative]
        for round in 0..<400 {
            let n = 1 + Int(rng.next() % 24)
            var adjacency = [[Int32]](repeating: [], count: n)
            // Few edges: many leaves, as on a heap of byte arrays; self-loops and repeats included.
            for _ in 0..<Int(rng.next() % UInt64(n * 2 + 1)) {
                adjacency[Int(rng.next() % UInt64(n))].append(Int32(rng.next() % UInt64(n)))
            }
            var graph = ObjectGraph(objectCount: n)
            for list in adjacency {
                for target in list { graph.add(target: target, label: 0) }
                graph.finishObject()
            }
            var roots: [Root] = []
            for index in 0..<Int(rng.next() % 4) {
                var root = Root(name: "r\(index)", kind: kinds[Int(rng.next() % UInt64(kinds.count))])
                root.targets = (0..<Int(rng.next() % 3)).map { _ in Int32(rng.next() % UInt64(n)) }
                roots.append(root)
            }
            // Tiers, breadth-first, kind by kind.
            var expectedTier = [UInt8](repeating: RootTiers.unreached, count: n)
            for kind in RootKind.allCases {
                var queue = roots.filter { $0.kind == kind }.flatMap(\.targets).map(Int.init)
                while let v = queue.popLast() {
                    guard expectedTier[v] == RootTiers.unreached else { continue }
                    expectedTier[v] = RootTiers.rank(of: kind)
                    queue += adjacency[v].map(Int.init)
                }
            }
            let numbered = rng.next() % 2 == 0
            let tiers = RootTiers(objectCount: n, graph: graph, roots: roots, numbered: numbered)
            XCTAssertEqual(Array(tiers.tier), expectedTier, "round \(round): tiers")
            // Some unreached objects as leak members, under the <leaked> pseudo-root.
            let unreached = (0..<n).filter { expectedTier[$0] == RootTiers.unreached }.map(Int32.init)
            let members = unreached.filter { _ in rng.next() % 2 == 0 }
            let leaks = LeakReport(groups: members.map { .init(kind: .leak, members: [$0], retained: [], shape: "") })
            let allRoots = members.isEmpty ? roots : Attribution.withLeakedRoot(roots)
            let computed = RetainedSizes.immediateDominators(objectCount: n, graph: graph, roots: allRoots, tiers: tiers, leaks: leaks)

            let offset = allRoots.count + 1
            var plain = [[Int]](repeating: [], count: n + offset)
            plain[0] = Array(1...max(allRoots.count, 1)).filter { $0 <= allRoots.count }
            for (index, root) in allRoots.enumerated() {
                plain[index + 1] = root.kind == .leaked ? members.map { Int($0) + offset }
                    : root.targets.filter { expectedTier[Int($0)] >= RootTiers.rank(of: root.kind) }.map { Int($0) + offset }
            }
            for v in 0..<n {
                plain[v + offset] = adjacency[v].filter { expectedTier[Int($0)] >= expectedTier[v] }.map { Int($0) + offset }
            }
            let expected = idom(plain)
            XCTAssertEqual(computed.map(Int.init), expected, "round \(round) (numbered by the tiers: \(numbered)): \(adjacency), roots \(roots.map { ($0.kind, $0.targets) }), leaked \(members)")
            // Retained sizes: object v weighs v + 1 bytes and counts for every node on its idom chain;
            // an unreachable object retains itself.
            let sizes = RetainedSizes(objectCount: n, size: { UInt64($0 + 1) }, graph: graph, roots: allRoots,
                                      tiers: RootTiers(objectCount: n, graph: graph, roots: roots, numbered: numbered), leaks: leaks)
            var bytes = [UInt64](repeating: 0, count: n + offset), counts = [UInt32](repeating: 0, count: n + offset)
            for v in 0..<n {
                var u = v + offset
                guard expected[u] >= 0 else { bytes[u] = UInt64(v + 1); counts[u] = 1; continue }
                while true {
                    bytes[u] += UInt64(v + 1)
                    counts[u] += 1
                    if u == 0 { break }
                    u = expected[u]
                }
            }
            XCTAssertEqual(Array(sizes.retainedBytes), bytes, "round \(round): retained bytes")
            XCTAssertEqual(Array(sizes.retainedCount), counts, "round \(round): retained counts")
            var seen = Set<Int32>()
            for node in sizes.topDown {
                XCTAssert(node == 0 || seen.contains(sizes.idom[Int(node)]), "round \(round): \(node) before its dominator")
                seen.insert(node)
            }
            XCTAssertEqual(seen.count, expected.filter { $0 >= 0 }.count, "round \(round): topDown holds every reachable node")
        }
    }
}
