import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefTestSupport
import XCTest

/// The analysis from memory to leaks and retained sizes, on a glibc heap laid out by hand: the
/// allocator walk, the object table, the reference scan, root tiers, the leak finder and the
/// dominator tree, with the answers known in advance.
final class HeapGraphTests: XCTestCase {
    let noImages = ImageList(memoryMap: MemoryMap(regions: []))

    /// The heap: A → B → C, A → H ⇄ I, S (a Swift object) → C; D ⇄ E and F → G unreachable. The
    /// stack holds A (by an interior pointer) and S. A free and a fastbin chunk hold stale
    /// pointers to D and F: free memory is not scanned.
    struct Fixture {
        let target: InMemoryTarget
        let heap: GlibcHeapBuilder
        var user: [String: UInt64] = [:]
        let stack: Range<UInt64>
    }

    func makeFixture() -> Fixture {
        let target = InMemoryTarget()
        let heap = GlibcHeapBuilder(target: target)
        let image = SwiftImageBuilder(target: target)
        let node = image.makeClass(instanceSize: 40, fields: [("child", 16)])
        var user: [String: UInt64] = [:]
        for name in ["A", "B", "C", "freed", "D", "E", "F", "G", "cached", "H", "I", "S"] {
            user[name] = heap.malloc(40, state: name == "freed" ? .free : name == "cached" ? .fastbin : .inUse)
        }
        heap.finish()
        func link(_ from: String, _ word: UInt64, _ to: String, plus offset: UInt64 = 0) {
            target.put(user[to]! + offset, at: user[from]! + word * 8)
        }
        link("A", 0, "B"); link("A", 2, "H", plus: 8)
        link("B", 4, "C")
        link("H", 1, "I"); link("I", 3, "H")
        link("D", 0, "E"); link("E", 0, "D")
        link("F", 1, "G")
        link("freed", 1, "D"); link("cached", 1, "F")
        image.writeObject(at: user["S"]!, metadata: node.metadata)
        link("S", 2, "C")
        let stackStart: UInt64 = 0x7ffd_0000_0000
        target.map(stackStart, size: 0x2000, path: "[stack]")
        let rsp = stackStart + 0x1f00
        target.put(words: [0x1234, user["A"]! + 16, 0, user["S"]!, 0xffff_0000_0000_0000 | user["B"]!], at: rsp)
        target.addThread(tid: 1, registers: ["rsp": rsp])
        return Fixture(target: target, heap: heap, user: user, stack: rsp..<stackStart + 0x2000)
    }

    struct Analysis {
        let objects: ObjectTable
        let scanner: ReferenceScanner
        let graph: ObjectGraph
        let roots: [Root]
        func index(_ address: UInt64?) -> Int { objects.addresses.index(of: address!)! }
    }

    func analyse(_ fixture: Fixture, threads: Int = 1) -> Analysis {
        let blocks = MallocHeap(source: fixture.target).walk()
        XCTAssertEqual(blocks.coverage, .complete)
        let recognizer = SwiftObjectRecognizer(source: fixture.target, images: noImages, reflection: nil)
        let objects = ObjectTable(heap: blocks, recognizer: recognizer)
        let scanner = ReferenceScanner(source: fixture.target, objects: objects,
                                       layouts: ObjectLayouts(reflection: nil, source: fixture.target),
                                       symbolizer: Symbolizer(images: noImages))
        let graph = scanner.buildGraph(threads: threads)
        var root = Root(name: "thread 1", kind: .stack)
        scanner.scanWords(from: fixture.stack.lowerBound, to: fixture.stack.upperBound, label: 0) { target, label in
            root.targets.append(target)
            root.labels.append(label)
        }
        return Analysis(objects: objects, scanner: scanner, graph: graph, roots: [root])
    }

    func edges(_ analysis: Analysis) -> Set<[Int]> {
        var result: Set<[Int]> = []
        for object in 0..<analysis.objects.count {
            for edge in analysis.graph.edges(of: object) { result.insert([object, Int(analysis.graph.targets[edge])]) }
        }
        return result
    }

    func testScanFindsTheReferencesInLiveBlocks() {
        let fixture = makeFixture()
        let analysis = analyse(fixture)
        let objects = analysis.objects
        XCTAssertEqual(objects.count, 10, "the free and the cached chunk are no objects")
        let i = { analysis.index(fixture.user[$0]) }
        XCTAssertEqual(objects.types[Int(objects.typeIndices[i("S")])].kind, .classInstance)
        XCTAssertEqual(objects.types[Int(objects.typeIndices[i("A")])].kind, .malloc)
        let expected: Set<[Int]> = [[i("A"), i("B")], [i("A"), i("H")], [i("B"), i("C")], [i("H"), i("I")], [i("I"), i("H")],
                                    [i("D"), i("E")], [i("E"), i("D")], [i("F"), i("G")], [i("S"), i("C")]]
        XCTAssertEqual(edges(analysis), expected)
        // The stack's words: A by an interior pointer, S, and B behind tag bits (masked off).
        XCTAssertEqual(analysis.roots[0].targets, [i("A"), i("S"), i("B")].map(Int32.init))
    }

    /// Two scanning threads, and reads that never see local bytes, find the same graph.
    func testScanIsTheSameOnTwoThreadsAndWithoutLocalBytes() {
        let fixture = makeFixture()
        let one = edges(analyse(fixture))
        XCTAssertEqual(edges(analyse(fixture, threads: 2)), one)
        fixture.target.servesLocalBytes = false
        XCTAssertEqual(edges(analyse(fixture)), one)
    }

    func testUnreachableCycleIsALeakAndReachableOneIsNot() {
        let fixture = makeFixture()
        let analysis = analyse(fixture)
        let i = { analysis.index(fixture.user[$0]) }
        let tiers = RootTiers(objectCount: analysis.objects.count, graph: analysis.graph, roots: analysis.roots)
        for name in ["A", "B", "C", "H", "I", "S"] { XCTAssertTrue(tiers.isReachable(i(name)), name) }
        for name in ["D", "E", "F", "G"] { XCTAssertFalse(tiers.isReachable(i(name)), name) }
        XCTAssertEqual(tiers.tier[i("H")], RootTiers.rank(of: .stack))
        let report = LeakFinder.find(objects: analysis.objects, graph: analysis.graph, names: analysis.scanner.names,
                                     reachable: tiers.isReachable)
        XCTAssertEqual(report.groups.count, 2)
        XCTAssertEqual(report.leakedCount, 4)
        XCTAssertEqual(report.groups[0].kind, .cycle)
        XCTAssertEqual(Set(report.groups[0].members), Set([i("D"), i("E")].map(Int32.init)))
        XCTAssertEqual(report.groups[0].retained, [])
        XCTAssertTrue(report.groups[0].shape.contains("→"), report.groups[0].shape)
        XCTAssertEqual(report.groups[1].kind, .leak)
        XCTAssertEqual(report.groups[1].members, [Int32(i("F"))])
        XCTAssertEqual(report.groups[1].retained, [Int32(i("G"))])
        XCTAssertEqual(report.bytes(of: report.groups[1], objects: analysis.objects), 0x60)
        // Without the stack, everything is leaked: A's component retains what it reaches.
        let none = RootTiers(objectCount: analysis.objects.count, graph: analysis.graph, roots: [])
        let all = LeakFinder.find(objects: analysis.objects, graph: analysis.graph, names: analysis.scanner.names,
                                  reachable: none.isReachable)
        XCTAssertEqual(all.leakedCount, 10)
        let aGroup = all.groups.first { $0.members.contains(Int32(i("A"))) }
        XCTAssertEqual(aGroup.map { Set($0.retained) }, Set([i("B"), i("C"), i("H"), i("I")].map(Int32.init)))
        XCTAssertEqual(aGroup?.kind, .leak)
    }

    func testRetainedSizesOfTheHandBuiltHeap() {
        let fixture = makeFixture()
        let analysis = analyse(fixture)
        let i = { analysis.index(fixture.user[$0]) }
        let tiers = RootTiers(objectCount: analysis.objects.count, graph: analysis.graph, roots: analysis.roots, numbered: true)
        let leaks = LeakFinder.find(objects: analysis.objects, graph: analysis.graph, names: analysis.scanner.names,
                                    reachable: tiers.isReachable)
        let roots = Attribution.withLeakedRoot(analysis.roots)
        let sizes = RetainedSizes(objects: analysis.objects, graph: analysis.graph, roots: roots, tiers: tiers, leaks: leaks)
        let chunk: UInt64 = 0x30
        // The stack holds B itself too (behind tag bits): A retains A, H and I.
        let expected: [String: UInt32] = ["A": 3, "B": 1, "C": 1, "H": 2, "I": 1, "S": 1, "D": 1, "E": 1, "F": 2, "G": 1]
        for (name, count) in expected {
            XCTAssertEqual(sizes.retainedCount(ofObject: i(name)), count, name)
            XCTAssertEqual(sizes.retainedBytes(ofObject: i(name)), UInt64(count) * chunk, name)
        }
        XCTAssertEqual(sizes.immediateDominator(ofObject: i("C")), sizes.node(ofRoot: 0), "C is held by B and S: the stack's")
        XCTAssertEqual(sizes.immediateDominator(ofObject: i("I")), sizes.node(ofObject: i("H")))
        XCTAssertEqual(sizes.retainedBytes(ofRoot: 0), 6 * chunk, "the stack")
        XCTAssertEqual(sizes.retainedBytes(ofRoot: 1), 4 * chunk, "<leaked>")
        XCTAssertEqual(sizes.retainedBytes[0], 10 * chunk, "the super-root holds everything")
    }

    /// Random glibc heaps whose live blocks hold random words — pointers to the start or inside of
    /// live and freed blocks, tagged pointers, small numbers: the walk and the scan give exactly
    /// the edges those words make, in word order, and the leak finder's unreached objects are
    /// those a plain search from the roots does not reach.
    func testScanOfRandomHeapsFindsExactlyThePointersWritten() {
        var random = SplitMix(seed: 31)
        for round in 0..<25 {
            let target = InMemoryTarget()
            let heap = GlibcHeapBuilder(target: target)
            for _ in 0..<Int(5 + random.next() % 60) {
                let bytes = random.next() % 200
                let roll = random.next() % 10
                heap.malloc(bytes, state: roll == 0 ? .free : roll == 1 && bytes < 100 ? .fastbin : .inUse)
            }
            heap.finish()
            let live = heap.liveChunks
            func owner(_ word: UInt64) -> Int? {
                let address = word & 0x7FFF_FFFF_FFFF
                return live.firstIndex { address >= $0.user && address < $0.user + $0.size - 8 }
            }
            var expected = [[Int32]](repeating: [], count: live.count)
            for (index, chunk) in live.enumerated() {
                for slot in 0..<(chunk.size - 8) / 8 {
                    let word: UInt64
                    switch random.next() % 6 {
                    case 0: word = 0
                    case 1: word = random.next() % 0x10000
                    default:
                        let to = heap.chunks[Int(random.next() % UInt64(heap.chunks.count))]
                        let interior = random.next() % 3 == 0 ? random.next() % (to.size - 8) : 0
                        word = (to.user + interior) | (random.next() % 8 == 0 ? 0x8000_0000_0000_0000 : 0)
                    }
                    target.put(word, at: chunk.user + slot * 8)
                    if let to = owner(word) { expected[index].append(Int32(to)) }
                }
            }
            let blocks = MallocHeap(source: target).walk()
            XCTAssertEqual(Array(blocks.addresses), live.map(\.user), "round \(round): blocks")
            let objects = ObjectTable(heap: blocks, recognizer: SwiftObjectRecognizer(source: target, images: noImages, reflection: nil))
            let scanner = ReferenceScanner(source: target, objects: objects, layouts: ObjectLayouts(reflection: nil, source: target),
                                           symbolizer: Symbolizer(images: noImages))
            let graph = scanner.buildGraph()
            for object in 0..<objects.count {
                XCTAssertEqual(graph.edges(of: object).map { graph.targets[$0] }, expected[object], "round \(round): object \(object)")
            }
            var root = Root(name: "globals", kind: .global)
            root.targets = (0..<Int(random.next() % 3)).map { _ in Int32(random.next() % UInt64(live.count)) }
            let tiers = RootTiers(objectCount: objects.count, graph: graph, roots: [root])
            var seen = Set(root.targets.map(Int.init)), stack = root.targets.map(Int.init)
            while let v = stack.popLast() {
                for w in expected[v].map(Int.init) where seen.insert(w).inserted { stack.append(w) }
            }
            let report = LeakFinder.find(objects: objects, graph: graph, names: scanner.names, reachable: tiers.isReachable)
            XCTAssertEqual(Set(report.groups.flatMap { $0.members + $0.retained }.map(Int.init)),
                           Set(0..<objects.count).subtracting(seen), "round \(round): leaked")
        }
    }

    /// An object whose counts moved to a side table owns it: the scan gives it an edge there.
    func testSideTableIsHeldByItsObject() {
        let target = InMemoryTarget()
        let heap = GlibcHeapBuilder(target: target)
        let image = SwiftImageBuilder(target: target)
        let type = image.makeClass(instanceSize: 32)
        let object = heap.malloc(32)
        let table = heap.malloc(32)
        heap.finish()
        image.writeObject(at: object, metadata: type.metadata, refCount: SwiftImageBuilder.sideTableRefCount(table))
        target.put(object, at: table)        // the side table points back to its object
        let objects = ObjectTable(heap: MallocHeap(source: target).walk(),
                                  recognizer: SwiftObjectRecognizer(source: target, images: noImages, reflection: nil))
        XCTAssertEqual(objects.types[Int(objects.typeIndices[1])].kind, .sideTable)
        let scanner = ReferenceScanner(source: target, objects: objects, layouts: ObjectLayouts(reflection: nil, source: target),
                                       symbolizer: Symbolizer(images: noImages))
        let graph = scanner.buildGraph()
        XCTAssertEqual(graph.edges(of: 0).map { graph.targets[$0] }, [1])
        XCTAssertEqual(graph.edges(of: 0).map { scanner.names.text(graph.labels[$0], target: 1) }, ["$side_table"])
        XCTAssertEqual(graph.edges(of: 1).count, 0, "a side table holds no references, with or without reflection")
    }

    /// The allocator's own blocks (jemalloc's tcache stacks) keep stale pointers: counted, never
    /// scanned — in a program without a Swift runtime (no reflection) too.
    func testAllocatorInternalBlocksAreNotScanned() {
        let target = InMemoryTarget()
        let heap = GlibcHeapBuilder(target: target)
        let stack = heap.malloc(64)
        let given = heap.malloc(32)
        let holder = heap.malloc(32)
        heap.finish()
        target.put(given, at: stack + 8)
        target.put(given, at: holder)
        var blocks = MallocHeap(source: target).walk()
        blocks.internalBlocks = [stack]
        let objects = ObjectTable(heap: blocks, recognizer: SwiftObjectRecognizer(source: target, images: noImages, reflection: nil))
        XCTAssertEqual(objects.types[Int(objects.typeIndices[0])].kind, .allocatorInternal)
        let scanner = ReferenceScanner(source: target, objects: objects, layouts: ObjectLayouts(reflection: nil, source: target),
                                       symbolizer: Symbolizer(images: noImages))
        let graph = scanner.buildGraph()
        XCTAssertEqual(graph.edges(of: 0).count, 0, "the stack's stale pointer")
        XCTAssertEqual(graph.edges(of: 2).map { graph.targets[$0] }, [1], "the holder's reference")
    }

    /// Closure contexts of two metadata are two types of one name: one census row.
    func testCensusHasOneRowPerName() {
        let target = InMemoryTarget()
        let heap = GlibcHeapBuilder(target: target)
        let image = SwiftImageBuilder(target: target)
        let contexts = [image.makeContextMetadata(captureOffset: 16), image.makeContextMetadata(captureOffset: 24)]
        let blocks = (0..<4).map { _ in heap.malloc(40) }
        heap.finish()
        for (index, block) in blocks.enumerated() { image.writeObject(at: block, metadata: contexts[index % 2]) }
        let objects = ObjectTable(heap: MallocHeap(source: target).walk(),
                                  recognizer: SwiftObjectRecognizer(source: target, images: noImages, reflection: nil))
        XCTAssertEqual(Set(blocks.map { objects.typeIndices[objects.addresses.index(of: $0)!] }).count, 2)
        let census = HeapCensus(objects: objects)
        XCTAssertEqual(census.rows.filter { $0.type == "closure context" }.count, 1)
        XCTAssertEqual(census.row(named: "closure context")?.count, 4)
    }

    func testCensusCountsTheHandBuiltHeap() {
        let fixture = makeFixture()
        let census = HeapCensus(objects: analyse(fixture).objects)
        XCTAssertEqual(census.rows.map(\.type).first, "<malloc>", "largest first")
        XCTAssertEqual(census.row(named: "<malloc>")?.count, 9)
        XCTAssertEqual(census.row(named: "<malloc>")?.bytes, 9 * 0x30)
        XCTAssertEqual(census.swiftCount, 1, "S")
        XCTAssertEqual(census.rows.last?.kind, .classInstance)
        XCTAssertEqual(census.totalCount, 10)
        XCTAssertEqual(census.totalBytes, 10 * 0x30)
    }
}
