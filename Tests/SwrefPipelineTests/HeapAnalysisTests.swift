import Foundation
import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefPipeline
import SwrefRuntimes
import SwrefSupport
import SwrefTestSupport
import XCTest

/// One analysis, layer by layer, on an in-memory target: a glibc heap laid out by hand (libc's
/// data mapped where the builder puts it), a thread whose stack holds the roots. The allocator is
/// chosen by the images mapped: the target maps the first page of this machine's libc (the
/// image list reads its file, after checking the build id in that page). No Swift runtime is
/// mapped, so the analysis is a malloc census with references, leaks and retained sizes.
final class HeapAnalysisTests: XCTestCase {
    struct Fixture {
        let target: InMemoryTarget
        let heap: GlibcHeapBuilder
        var user: [String: UInt64] = [:]
    }

    static let libcPath = "/usr/lib/x86_64-linux-gnu/libc.so.6"

    /// libc's first page, as the loader maps it (its ELF header and build-id note), below the data
    /// the heap builder maps; `otherBuildID` flips a byte of the build id in memory.
    func mapLibcHeader(_ target: InMemoryTarget, otherBuildID: Bool = false) throws {
        guard let data = FileManager.default.contents(atPath: Self.libcPath), data.count > 4096 else {
            throw XCTSkip("no \(Self.libcPath) on this machine")
        }
        var page = [UInt8](data.prefix(4096))
        if otherBuildID {
            let id = try XCTUnwrap(try ElfFile(path: Self.libcPath).buildID)
            let at = try XCTUnwrap((0...page.count - id.count).first { Array(page[$0..<$0 + id.count]) == id })
            page[at] ^= 0xff
        }
        target.map(0x7fff_f7c0_0000, size: 0x1000, "r--p", path: Self.libcPath, fileOffset: 0)
        target.put(bytes: page, at: 0x7fff_f7c0_0000)
    }

    /// A → B → C, A → H ⇄ I reachable from the stack; D ⇄ E and F → G unreachable; a free chunk
    /// pointing at D.
    func makeFixture(libc: Bool = true, otherBuildID: Bool = false) throws -> Fixture {
        let target = InMemoryTarget()
        if libc { try mapLibcHeader(target, otherBuildID: otherBuildID) }
        let heap = GlibcHeapBuilder(target: target)
        var user: [String: UInt64] = [:]
        for name in ["A", "B", "C", "freed", "D", "E", "F", "G", "H", "I"] {
            user[name] = heap.malloc(name == "C" ? 200 : 40, state: name == "freed" ? .free : .inUse)
        }
        heap.finish()
        func link(_ from: String, _ word: UInt64, _ to: String) { target.put(user[to]!, at: user[from]! + word * 8) }
        link("A", 0, "B"); link("A", 2, "H"); link("B", 1, "C"); link("H", 1, "I"); link("I", 3, "H")
        link("D", 0, "E"); link("E", 0, "D"); link("F", 1, "G"); link("freed", 1, "D")
        let stackStart: UInt64 = 0x7ffd_0000_0000
        target.map(stackStart, size: 0x2000, path: "[stack]")
        let rsp = stackStart + 0x1f00
        target.put(words: [0x1234, user["A"]!, 0], at: rsp)
        target.addThread(tid: 1, registers: ["rsp": rsp])
        return Fixture(target: target, heap: heap, user: user)
    }

    func edges(_ analysis: HeapAnalysis, _ paths: ReferencePaths) -> Set<[UInt64]> {
        var result: Set<[UInt64]> = []
        let addresses = analysis.objects.addresses
        for object in 0..<analysis.objects.count {
            for edge in paths.graph.edges(of: object) {
                result.insert([addresses[object], addresses[Int(paths.graph.targets[edge])]])
            }
        }
        return result
    }

    func testGlibcHeapWithoutTheSwiftRuntime() throws {
        let fixture = try makeFixture()
        let analysis = HeapAnalysis(target: fixture.target)
        XCTAssertEqual(analysis.images.images.map(\.name), ["libc.so.6"])
        XCTAssertEqual(analysis.heap.coverage, .complete)
        XCTAssertFalse(analysis.images.hasSwiftRuntime)
        XCTAssertNil(analysis.reflection)
        XCTAssertTrue(analysis.notes.contains { $0.contains("no Swift runtime") }, "\(analysis.notes)")
        XCTAssertEqual(analysis.objects.count, fixture.heap.liveChunks.count)
        XCTAssertEqual(Set((0..<analysis.objects.count).map { analysis.objects.addresses[$0] }),
                       Set(fixture.heap.liveChunks.map(\.user)))
        XCTAssertNoThrow(try analysis.requireReadableHeap(), "no Swift runtime: a malloc census is a valid answer")
        XCTAssertEqual(analysis.timings.map(\.phase), ["images", "malloc heap", "objects"])

        let paths = analysis.referencePaths()
        let u = fixture.user
        let expected: Set<[UInt64]> = [[u["A"]!, u["B"]!], [u["A"]!, u["H"]!], [u["B"]!, u["C"]!], [u["H"]!, u["I"]!],
                                       [u["I"]!, u["H"]!], [u["D"]!, u["E"]!], [u["E"]!, u["D"]!], [u["F"]!, u["G"]!]]
        XCTAssertEqual(edges(analysis, paths), expected)
        XCTAssertEqual(paths.leaks.groups.count, 2, "D ⇄ E and F → G")
        let leaked = Set(paths.leaks.groups.flatMap { $0.members + $0.retained }.map { analysis.objects.addresses[Int($0)] })
        XCTAssertEqual(leaked, [u["D"]!, u["E"]!, u["F"]!, u["G"]!])
        let retained = try XCTUnwrap(paths.retained, "dominators within the default budget")
        let a = try XCTUnwrap(analysis.objects.addresses.index(of: u["A"]!))
        let b = try XCTUnwrap(analysis.objects.addresses.index(of: u["B"]!))
        XCTAssertEqual(retained.retainedCount[retained.node(ofObject: a)], 5, "A keeps B, C, H, I alive")
        XCTAssertEqual(retained.retainedCount[retained.node(ofObject: b)], 2)
        XCTAssertGreaterThan(retained.retainedBytes[retained.node(ofObject: a)], retained.retainedBytes[retained.node(ofObject: b)])
    }

    /// No image swref knows (the same heap, libc's header not mapped): nothing is walked, and an
    /// unread heap is never clean, Swift runtime or not (a core whose file notes no longer name
    /// libc once read as "no leaks, 0 blocks").
    func testNoKnownAllocator() throws {
        let fixture = try makeFixture(libc: false)
        let analysis = HeapAnalysis(target: fixture.target)
        XCTAssertTrue(analysis.images.images.isEmpty)
        XCTAssertEqual(analysis.heap.coverage, .unread("no allocator swref knows is loaded"))
        XCTAssertEqual(analysis.heap.count, 0)
        XCTAssertEqual(analysis.objects.count, 0)
        XCTAssertTrue(analysis.notes.contains { $0.contains("no Swift runtime") }, "\(analysis.notes)")
        XCTAssertThrowsError(try analysis.requireReadableHeap()) { error in
            XCTAssertTrue("\(error)".contains("no allocator swref knows is loaded"), "\(error)")
        }
        let paths = analysis.referencePaths()
        XCTAssertEqual(paths.graph.edgeCount, 0)
        XCTAssertTrue(paths.leaks.groups.isEmpty)
    }

    /// libc's file on disk is not the one mapped (the build ids differ): it is not used, and a note says so.
    func testMismatchedLibcIsNotTrusted() throws {
        let fixture = try makeFixture(otherBuildID: true)
        let analysis = HeapAnalysis(target: fixture.target)
        XCTAssertTrue(analysis.images.images.isEmpty)
        XCTAssertEqual(analysis.images.mismatched, [Self.libcPath])
        XCTAssertTrue(analysis.notes.contains { $0.contains("build ids differ") && $0.contains("libc.so.6") }, "\(analysis.notes)")
        XCTAssertEqual(analysis.heap.count, 0)
    }

    func testScanThreadsGiveTheSameGraph() throws {
        let fixture = try makeFixture()
        let one = HeapAnalysis(target: fixture.target, settings: AnalysisSettings(scanThreads: 1))
        let two = HeapAnalysis(target: fixture.target, settings: AnalysisSettings(scanThreads: 2))
        let onePaths = one.referencePaths(), twoPaths = two.referencePaths()
        XCTAssertFalse(edges(one, onePaths).isEmpty)
        XCTAssertEqual(edges(one, onePaths), edges(two, twoPaths))
        XCTAssertEqual(onePaths.leaks.groups.count, twoPaths.leaks.groups.count)
        XCTAssertEqual(onePaths.roots.map(\.targets), twoPaths.roots.map(\.targets))
    }

    func testDominatorBudgetSkipsRetainedSizesWithANote() throws {
        let fixture = try makeFixture()
        let analysis = HeapAnalysis(target: fixture.target, settings: AnalysisSettings(dominatorBudget: 0))
        XCTAssertEqual(analysis.dominatorMemoryBudget(), 0)
        let paths = analysis.referencePaths()
        XCTAssertNil(paths.retained)
        XCTAssertTrue(analysis.notes.contains { $0.contains("retained sizes skipped") }, "\(analysis.notes)")
        XCTAssertEqual(paths.graph.edgeCount, 8, "the graph is built all the same")
        // First-path attribution asks for no dominators: no note either.
        let firstPath = HeapAnalysis(target: fixture.target, settings: AnalysisSettings(dominatorBudget: 0))
        XCTAssertNil(firstPath.referencePaths(attribution: .firstPath).retained)
        XCTAssertFalse(firstPath.notes.contains { $0.contains("retained sizes skipped") })
        // A budget that fits computes them.
        let roomy = HeapAnalysis(target: fixture.target, settings: AnalysisSettings(dominatorBudget: 1 << 30))
        XCTAssertNotNil(roomy.referencePaths().retained)
        XCTAssertEqual(roomy.dominatorMemoryBudget(), 1 << 30)
    }
}

/// A target with the Swift runtime mapped (the first page of the libswiftCore.so this test
/// process runs with): an analysis that finds no heap or no Swift object in it must say so
/// (`requireReadableHeap` throws) instead of reading as a clean heap.
final class SwiftRuntimeHeapTests: XCTestCase {
    /// The libswiftCore.so this process has mapped, from /proc/self/maps.
    func swiftCorePath() throws -> String {
        let maps = ProcFS.readFile("/proc/self/maps") ?? ""
        for line in maps.split(separator: "\n") {
            if let path = line.split(separator: " ", omittingEmptySubsequences: true).last, path.hasSuffix("/libswiftCore.so") {
                return String(path)
            }
        }
        throw XCTSkip("libswiftCore.so is not mapped in this process")
    }

    func mapSwiftCore(_ target: InMemoryTarget) throws {
        let path = try swiftCorePath()
        let page = try XCTUnwrap(FileManager.default.contents(atPath: path)).prefix(4096)
        target.map(0x7fff_e000_0000, size: 0x1000, "r--p", path: path, fileOffset: 0)
        target.put(bytes: [UInt8](page), at: 0x7fff_e000_0000)
    }

    func testNoAllocatorFallsBackToTheHeaderScanAndFindsNothing() throws {
        let target = InMemoryTarget()
        try mapSwiftCore(target)
        target.map(0x5555_0000_0000, size: 0x4000, path: "[heap]")
        let analysis = HeapAnalysis(target: target)
        XCTAssertEqual(analysis.heap.allocator, "no allocator walk")
        XCTAssertEqual(analysis.objects.count, 0)
        XCTAssertTrue(analysis.images.hasSwiftRuntime)
        XCTAssertFalse(analysis.notes.contains { $0.contains("no Swift runtime") })
        XCTAssertTrue(analysis.notes.contains { $0.contains("Swift objects were found by their headers instead") }, "\(analysis.notes)")
        XCTAssertThrowsError(try analysis.requireReadableHeap()) { error in
            XCTAssertTrue("\(error)".contains("no live block found"), "\(error)")
            XCTAssertTrue((error as? SwrefError)?.isHeapUnreadable == true, "\(error)")
        }
    }

    func testGlibcHeapWithoutSwiftObjectsIsUnreadable() throws {
        let target = InMemoryTarget()
        try mapSwiftCore(target)
        let libc = HeapAnalysisTests.libcPath
        guard let data = FileManager.default.contents(atPath: libc) else { throw XCTSkip("no \(libc)") }
        target.map(0x7fff_f7c0_0000, size: 0x1000, "r--p", path: libc, fileOffset: 0)
        target.put(bytes: [UInt8](data.prefix(4096)), at: 0x7fff_f7c0_0000)
        let heap = GlibcHeapBuilder(target: target)
        for _ in 0..<5 { _ = heap.malloc(48) }
        heap.finish()
        let analysis = HeapAnalysis(target: target)
        XCTAssertEqual(analysis.heap.allocator, "glibc malloc")
        XCTAssertEqual(analysis.heap.coverage, .complete)
        XCTAssertEqual(analysis.objects.count, 5)
        XCTAssertThrowsError(try analysis.requireReadableHeap()) { error in
            XCTAssertTrue((error as? SwrefError)?.isHeapUnreadable == true, "\(error)")
            XCTAssertTrue("\(error)".contains("5 blocks, none of them a Swift object"), "\(error)")
        }
    }

    /// No allocator walk, so the Swift objects are found by their headers: a census of them alone.
    func testHeaderScanCensus() throws {
        let target = InMemoryTarget()
        try mapSwiftCore(target)
        let image = SwiftImageBuilder(target: target)
        let node = image.makeClass(instanceSize: 48, fields: [("next", 16)])
        target.map(0x5555_0000_0000, size: 0x4000, path: "[heap]")
        let objects: [UInt64] = [0x5555_0000_0010, 0x5555_0000_0100, 0x5555_0000_1000]
        for address in objects { image.writeObject(at: address, metadata: node.metadata) }
        target.put(objects[1], at: objects[0] + 16)
        let analysis = HeapAnalysis(target: target)
        guard case .approximate = analysis.heap.coverage else { return XCTFail("\(analysis.heap.coverage): a header scan is approximate") }
        XCTAssertTrue(analysis.notes.contains { $0.contains("found by their headers instead") }, "\(analysis.notes)")
        XCTAssertEqual((0..<analysis.objects.count).map { analysis.objects.addresses[$0] }, objects)
        // Each block runs to the next header or the mapping's end.
        XCTAssertEqual((0..<analysis.objects.count).map { analysis.objects.sizes[$0] }, [0xf0, 0xf00, 0x3000])
        let census = analysis.census
        XCTAssertEqual(census.rows.count, 1)
        XCTAssertEqual(census.rows.first?.kind, .classInstance)
        XCTAssertEqual(census.swiftCount, 3)
        XCTAssertEqual(census.totalBytes, 0xf0 + 0xf00 + 0x3000)
        XCTAssertNoThrow(try analysis.requireReadableHeap(), "Swift objects were found")
        let paths = analysis.referencePaths()
        XCTAssertEqual(paths.graph.edgeCount, 1)
        XCTAssertEqual(paths.graph.edges(of: 0).map { paths.graph.targets[$0] }, [1], "next: the first object to the second")
    }
}
