import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefTestSupport
import XCTest

/// The main heap's walk on two threads (`MallocHeap.walk(threads:)`): the second thread starts at
/// a guessed chunk near the middle, and whether the guess holds or not, the blocks, their sizes,
/// their screened headers and the notes are exactly those of the walk on one thread.
final class GlibcSplitWalkTests: XCTestCase {
    let noImages = ImageList(memoryMap: MemoryMap(regions: []))

    /// Walks on one thread and on two, checks they agree in everything, and returns both.
    @discardableResult
    func walkBothWays(_ target: InMemoryTarget, screening: Bool = true,
                      file: StaticString = #filePath, line: UInt = #line) -> (one: HeapBlocks, two: HeapBlocks) {
        let recognizer = screening ? SwiftObjectRecognizer(source: target, images: noImages, reflection: nil) : nil
        let one = MallocHeap(source: target, recognizer: recognizer).walk(threads: 1)
        let two = MallocHeap(source: target, recognizer: recognizer).walk(threads: 2)
        assertSameRows(Array(two.addresses), Array(one.addresses), "addresses", file: file, line: line)
        assertSameRows(Array(two.sizes), Array(one.sizes), "sizes", file: file, line: line)
        assertSameRows(two.screened?.rows ?? [], one.screened?.rows ?? [], "screened headers", file: file, line: line)
        XCTAssertEqual(two.screened == nil, one.screened == nil, file: file, line: line)
        XCTAssertEqual(two.screened?.metadata, one.screened?.metadata, "first words, in the order met", file: file, line: line)
        XCTAssertEqual(two.coverage, one.coverage, file: file, line: line)
        XCTAssertEqual(two.notes, one.notes, file: file, line: line)
        XCTAssertEqual(two.ownedRanges, one.ownedRanges, file: file, line: line)
        XCTAssertEqual(two.counters.filter { $0.key != "main heap parts" }, one.counters.filter { $0.key != "main heap parts" },
                       file: file, line: line)
        XCTAssertEqual(one.counters["main heap parts"], 1, "one thread walks the heap in one part", file: file, line: line)
        return (one, two)
    }

    /// Equal rows, or where the first difference is (ten thousand rows do not make a readable message).
    func assertSameRows<T: Equatable>(_ rows: [T], _ expected: [T], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(rows.count, expected.count, "\(what): rows", file: file, line: line)
        if let index = zip(rows, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            XCTFail("\(what): row \(index) is \(rows[index]), not \(expected[index])", file: file, line: line)
        }
    }

    /// A 2 MiB heap of chunks of every state and many sizes, their headers those of Swift objects
    /// of first words met in the first half only, the second only, or both (numbered in the
    /// order met: the second thread's are numbered again), some with side tables.
    func makeHeap(seed: UInt64) -> (InMemoryTarget, GlibcHeapBuilder) {
        let target = InMemoryTarget()
        let heap = GlibcHeapBuilder(target: target, heapSize: 2 << 20)
        heap.makeTcache()
        var random = SplitMix(seed: seed)
        while heap.chunks.last!.address < heap.heapEnd - 0x6000 {
            let roll = random.next() % 100
            let size: UInt64 = roll < 2 ? 0x2000 : roll < 3 ? 0x290 : 32 + 16 * (random.next() % 40)
            // Never two free chunks side by side: glibc merges them.
            let state: GlibcHeapBuilder.State = roll < 10 && heap.chunks.last?.state != .free ? .free
                : roll < 13 && size <= 0xb0 ? .fastbin : roll < 15 && size <= 0x410 ? .tcache : .inUse
            heap.chunk(size: size, state: state)
        }
        heap.finish()
        let middle = heap.heapStart + (heap.heapEnd - heap.heapStart) / 2
        let sideTable = heap.heapStart + 0x1000
        for chunk in heap.chunks where chunk.state == .inUse && chunk.user != heap.tcache && random.next() % 4 != 0 {
            let pool = random.next() % 3
            let first = 0x7fff_f100_0000 + 8 * (random.next() % 50) + (pool == 0 ? 0 : chunk.address < middle ? 0x1000 : 0x2000)
            let count = random.next() % 8 == 0 ? SwiftImageBuilder.sideTableRefCount(sideTable) : SwiftImageBuilder.refCount()
            target.put(words: [first, count], at: chunk.user)
        }
        heap.mmapChunk(300_000, at: 0x7fff_e000_0000)
        // A thread arena below the main heap: the blocks are sorted by their runs afterwards.
        let thread = GlibcThreadArena(joining: heap, heapStart: 0x5555_4000_0000)
        (0..<20).forEach { thread.malloc(40 + 16 * UInt64($0), state: $0 % 5 == 0 ? .free : .inUse) }
        thread.finish()
        return (target, heap)
    }

    func testTwoThreadsGiveTheBlocksOfOne() {
        for seed in 1...4 as ClosedRange<UInt64> {
            let (target, heap) = makeHeap(seed: seed)
            let (one, two) = walkBothWays(target)
            XCTAssertEqual(two.counters["main heap parts"], 2, "seed \(seed): the second thread's part was taken")
            XCTAssertEqual(one.coverage, .complete, one.notes.joined(separator: "; "))
            assertSameRows(Array(one.addresses.dropFirst(16).dropLast()), heap.liveChunks.map(\.user), "seed \(seed)")
            XCTAssertEqual(one.counters["arenas"], 2)
            XCTAssertGreaterThan(one.screened?.metadata.count ?? 0, 100, "first words from all three pools")
            XCTAssertTrue(one.screened?.rows.contains { $0 & ScreenedHeaders.sideTableFlag != 0 } ?? false)
        }
    }

    /// Left to choose, the walk keeps a heap under 64 MiB on one thread, and so it does any heap
    /// whose reads are not local (a live process's, a core's), even when asked for two.
    func testSmallHeapsAndReadsThatAreNotLocalTakeOneThread() {
        let (target, _) = makeHeap(seed: 5)
        XCTAssertEqual(MallocHeap(source: target).walk().counters["main heap parts"], 1)
        XCTAssertEqual(MallocHeap(source: target).walk(threads: 2).counters["main heap parts"], 2)
        target.localReads = false
        XCTAssertEqual(MallocHeap(source: target).walk(threads: 2).counters["main heap parts"], 1)
    }

    /// Without a recognizer there is nothing screened to join.
    func testTwoThreadsWithoutScreening() {
        let (target, _) = makeHeap(seed: 7)
        let (one, two) = walkBothWays(target, screening: false)
        XCTAssertNil(one.screened)
        XCTAssertEqual(two.counters["main heap parts"], 2)
    }

    /// A heap of 4001 chunks whose middle is inside `block`, 0x31 words in its data wherever
    /// `pattern` puts them: from there, sizes of 0x30 chain on, and the second thread starts
    /// there, in no chunk. The first thread walks over the block, past that guess.
    func makeHeapWithFalseChain(blockSize: UInt64, pattern: (_ block: GlibcHeapBuilder.Chunk, InMemoryTarget) -> Void)
        -> (InMemoryTarget, GlibcHeapBuilder) {
        let target = InMemoryTarget()
        let heap = GlibcHeapBuilder(target: target, heapSize: 1 << 20)
        let halves = (0..<2000).map { 32 + 16 * UInt64($0 % 13) }
        for size in halves { heap.chunk(size: size) }
        let block = heap.chunk(size: blockSize)
        for size in halves.reversed() { heap.chunk(size: size) }
        heap.finish()
        pattern(block, target)
        let middle = (heap.heapStart + (heap.chunks.last!.address + heap.chunks.last!.size - heap.heapStart) / 2) & ~15
        XCTAssertTrue(block.address < middle && middle + 0x1000 < block.address + block.size, "the middle is in the block")
        return (target, heap)
    }

    /// The false chain leaves the block exactly at the next chunk and walks on from there: the
    /// first thread meets it there and takes the second's rows from that chunk on. Its rows in
    /// the block look like Swift objects of a first word met again only later, after another: the
    /// first words are numbered in the order one thread meets them, not the second's.
    func testFalseChainIsJoinedWhereItMeetsTheHeap() {
        let (first, late, early) = (UInt64(0x7fff_f100_0000), UInt64(0x7fff_f100_0100), UInt64(0x7fff_f100_0200))
        let (target, heap) = makeHeapWithFalseChain(blockSize: 0x6000) { block, target in
            // Whole 0x30-byte periods back from the block's end: prev_size, size 0x31, a header.
            var period = block.address + block.size - 0x30
            while period >= block.user {
                target.put(words: [0, 0x31, late, SwiftImageBuilder.refCount()], at: period)
                period -= 0x30
            }
        }
        let block = heap.chunks[2000]
        for (index, chunk) in heap.chunks.enumerated() where index % 2 == 0 && chunk.address != block.address {
            let word = chunk.address < block.address ? first : index < 2010 ? early : index % 4 == 0 ? late : early
            target.put(words: [word, SwiftImageBuilder.refCount()], at: chunk.user)
        }
        let (one, two) = walkBothWays(target)
        XCTAssertEqual(two.counters["main heap parts"], 2, "joined where the chains meet")
        XCTAssertEqual(one.screened?.metadata, [first, early, late])
        XCTAssertEqual(one.coverage, .complete)
        assertSameRows(Array(one.addresses), heap.liveChunks.map(\.user), "addresses")
    }

    /// The false chain leaves the block in the next chunk's data (zeros: a bad size, a note) and
    /// never meets the heap: the second's rows and note are dropped, the first walks on alone.
    func testFalseChainThatNeverMeetsTheHeapIsDropped() {
        let (target, heap) = makeHeapWithFalseChain(blockSize: 0x8010) { block, target in
            target.put(words: Array(repeating: 0x31, count: Int(block.size - 16) / 8), at: block.user)
        }
        let (one, two) = walkBothWays(target, screening: false)
        XCTAssertEqual(two.counters["main heap parts"], 1, "the guess was dropped")
        XCTAssertEqual(two.coverage, .complete)
        XCTAssertEqual(two.notes, [], "the false chain's bad size is not reported")
        assertSameRows(Array(one.addresses), heap.liveChunks.map(\.user), "addresses")
    }

    /// A heap of records laid out alike, each a 0x30-byte object and a 0x80-byte array whose
    /// count and capacity words read 0x50 and 0xb0: from each capacity word, sizes of 0xb0 (the
    /// records' own stride) chain on for as long as the heap, but with PREV_INUSE clear and no
    /// free chunk's size before them. The guess skips them for a chunk, wherever the middle falls.
    func testRunsOfSizesThatNoFreeChunkExplainsAreNoGuess() {
        for shift in 0..<11 {
            let target = InMemoryTarget()
            let heap = GlibcHeapBuilder(target: target, heapSize: 1 << 20)
            heap.chunk(size: 0x20 + 0x10 * UInt64(shift))
            for _ in 0..<4000 {
                heap.chunk(size: 0x30)
                heap.chunk(size: 0x80)
            }
            heap.finish()
            for array in heap.chunks where array.size == 0x80 { target.put(words: [0x50, 0xb0], at: array.address + 32) }
            let (one, two) = walkBothWays(target, screening: false)
            XCTAssertEqual(two.counters["main heap parts"], 2, "shift \(shift): a chunk was the guess")
            XCTAssertEqual(one.count, 8001)
        }
    }

    /// A bad size past the middle: the walk on two threads fails where the one on one thread does,
    /// its rows are undone the same way, and the heap is walked again from main_arena's ring.
    func testDamagePastTheSplitFailsAsOneThreadDoes() {
        let (target, heap) = makeHeap(seed: 3)
        let damaged = heap.chunks[heap.chunks.count * 3 / 4]
        target.put(0x3, at: damaged.address + 8)
        let (one, two) = walkBothWays(target)
        guard case .partial = two.coverage else { return XCTFail("coverage \(two.coverage)") }
        XCTAssertTrue(one.notes.contains { $0.contains(String(damaged.address, radix: 16)) }, "\(one.notes)")
        XCTAssertEqual(two.counters["main heap parts"], 1, "the ring's walk is not split")
    }

    /// Hostile sizes anywhere in a heap split in two: the same blocks as one thread, no trap.
    func testHostileSizesGiveTheBlocksOfOneThread() {
        var random = SplitMix(seed: 11)
        let hostile: [UInt64] = [.max, .max - 15, 0xFFFF_FFFF_FFFF_FFF0, 1 << 63, 0x10, 0x11, 0x31, 0x20_0001]
        for round in 0..<30 {
            let (target, heap) = makeHeap(seed: 100 + UInt64(round))
            for _ in 0..<(1 + random.next() % 3) {
                let chunk = heap.chunks[Int(random.next() % UInt64(heap.chunks.count))]
                target.put(hostile[Int(random.next() % UInt64(hostile.count))], at: chunk.address + 8)
            }
            walkBothWays(target)
        }
    }
}
