import SwrefKit
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
}
