import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefTestSupport
import XCTest

/// glibc's heap walk on chunks laid out by hand: which chunks are live, their sizes, the lists
/// that hide free chunks, mmapped chunks, damage, and hostile values that must not trap.
final class GlibcHeapTests: XCTestCase {
    /// A heap with every kind of chunk: a tcache, live blocks, a free one, tcache- and
    /// fastbin-cached ones, and an mmapped one.
    func makeHeap() -> (InMemoryTarget, GlibcHeapBuilder, mmapped: UInt64) {
        let target = InMemoryTarget()
        let heap = GlibcHeapBuilder(target: target)
        heap.makeTcache()
        heap.malloc(24)                          // 0x20
        heap.malloc(100)                         // 0x70
        heap.malloc(40, state: .tcache)          // 0x30, cached
        heap.malloc(200, state: .free)           // 0xe0, free: the next chunk's PREV_INUSE is clear
        heap.malloc(1000)
        heap.malloc(40, state: .tcache)          // the same bin: a list of two
        heap.malloc(24, state: .fastbin)
        heap.malloc(24, state: .fastbin)
        heap.malloc(56)
        heap.finish()
        let mmapped = heap.mmapChunk(300_000, at: 0x7fff_e000_0000)
        return (target, heap, mmapped)
    }

    func testWalkReportsLiveChunksWithTheirSizes() {
        let (target, heap, mmapped) = makeHeap()
        let blocks = MallocHeap(source: target).walk()
        XCTAssertEqual(blocks.coverage, .complete, blocks.notes.joined(separator: "; "))
        let expected = heap.liveChunks.map { ($0.user, $0.size) } + [(mmapped, UInt64(0x4a000))]
        XCTAssertEqual(Array(blocks.addresses), expected.map(\.0))
        XCTAssertEqual(Array(blocks.sizes), expected.map(\.1))
        XCTAssertEqual(blocks.overhead, 8)
        XCTAssertEqual(blocks.counters["arenas"], 1)
        XCTAssertEqual(blocks.counters["mmapped"], 1)
        XCTAssertEqual(blocks.counters["cached free"], 4, "two tcache entries and two fastbin chunks")
        XCTAssertTrue(blocks.ownedRanges.contains(heap.heapStart..<heap.heapEnd))
        XCTAssertEqual(blocks.totalBytes, expected.reduce(0) { $0 + $1.1 })
    }

    func testChunkSizesFollowMallocsRounding() {
        XCTAssertEqual(GlibcHeapBuilder.chunkSize(forRequest: 0), 32)
        XCTAssertEqual(GlibcHeapBuilder.chunkSize(forRequest: 24), 32)
        XCTAssertEqual(GlibcHeapBuilder.chunkSize(forRequest: 25), 48)
        XCTAssertEqual(GlibcHeapBuilder.chunkSize(forRequest: 100), 112)
    }

    /// A tcache whose counts disagree with its lists is not taken for one: its entries stay live.
    func testTcacheWithWrongCountIsNotTrusted() {
        let (target, heap, _) = makeHeap()
        target.put16(3, at: heap.tcache! + 2)        // bin 1 (0x30) claims three entries; its list holds two
        let blocks = MallocHeap(source: target).walk()
        let cachedInTcache = heap.chunks.filter { $0.state == .tcache }.map(\.user)
        for user in cachedInTcache { XCTAssertTrue(blocks.addresses.contains(user), "0x\(String(user, radix: 16)) counts as live") }
        XCTAssertEqual(blocks.counters["cached free"], 2, "the fastbins only")
    }

    func testHeapWithoutMainArenaIsUnread() {
        let target = InMemoryTarget()
        target.map(0x5555_5556_0000, size: 0x21000, path: "[heap]")
        target.put(0x21000 | 1, at: 0x5555_5556_0008)   // one top chunk, but no libc to hold main_arena
        let blocks = MallocHeap(source: target).walk()
        guard case .unread = blocks.coverage else { return XCTFail("coverage \(blocks.coverage)") }
        XCTAssertEqual(blocks.count, 0)
        XCTAssertEqual(blocks.counters["arenas"], 0)
    }

    /// A chunk header overwritten with nonsense: the walk finds main_arena from its ring, skips to
    /// the next place where the chain of sizes holds, and says the heap was read in part.
    func testDamagedChunkHeaderIsSkipped() {
        let target = InMemoryTarget()
        let heap = GlibcHeapBuilder(target: target)
        let users = (0..<8).map { _ in heap.malloc(40) }
        heap.finish()
        let damaged = heap.chunks[3]
        target.put(0x3, at: damaged.address + 8)  // size 0
        let blocks = MallocHeap(source: target).walk()
        guard case .partial = blocks.coverage else { return XCTFail("coverage \(blocks.coverage)") }
        XCTAssertEqual(Array(blocks.addresses), users.filter { $0 != damaged.user })
        XCTAssertTrue(blocks.notes.contains { $0.contains(String(damaged.address, radix: 16)) }, "\(blocks.notes)")
    }

    /// Sizes near 2^64, list pointers at the top of the address space, an arena ring that leads
    /// nowhere, a writable mapping that ends at the last address: the walk ends, without a trap.
    func testHostileValuesNeverTrap() {
        var random = SplitMix(seed: 99)
        let hostile: [UInt64] = [.max, .max - 7, .max - 15, 0xFFFF_FFFF_FFFF_FFF0, 1 << 63, 0x8000_0000_0000_0001, 0x10, 0x11]
        for round in 0..<40 {
            let target = InMemoryTarget()
            let heap = GlibcHeapBuilder(target: target)
            heap.makeTcache()
            for _ in 0..<12 {
                let bytes = random.next() % 300
                heap.malloc(bytes, state: bytes < 120 && random.next() % 3 == 0 ? .fastbin : .inUse)
            }
            heap.finish()
            target.map(0xFFFF_FFFF_FFFF_0000, size: UInt64.max - 0xFFFF_FFFF_FFFF_0000)  // anonymous, at the top
            // Mmapped-looking chunks up to the last page: a walk that adds before it compares would wrap.
            for page in 0..<UInt64(15) { target.put(0x1000 | 2, at: 0xFFFF_FFFF_FFFF_0008 + page * 0x1000) }
            func poison() -> UInt64 { hostile[Int(random.next() % UInt64(hostile.count))] }
            switch round % 5 {
            case 0: target.put(poison(), at: heap.chunks[Int(random.next() % UInt64(heap.chunks.count))].address + 8)
            case 1: target.put(poison(), at: heap.mainArena + 0x10 + (random.next() % 10) * 8)   // a fastbin head
            case 2: target.put(poison(), at: heap.mainArena + 0x870)                              // arena.next
            case 3: target.put(poison(), at: heap.tcache! + 128 + (random.next() % 64) * 8)        // a tcache head
            default: target.put(poison(), at: heap.mainArena + 0x60)                              // top
            }
            let blocks = MallocHeap(source: target).walk()
            XCTAssertTrue(zip(blocks.addresses, blocks.addresses.dropFirst()).allSatisfy { $0 < $1 }, "round \(round): ascending")
            for (address, size) in zip(blocks.addresses, blocks.sizes) {
                XCTAssertNotNil(target.memoryMap.region(containing: address), "round \(round): 0x\(String(address, radix: 16)) is mapped")
                XCTAssertLessThanOrEqual(size, UInt64.max / 2, "round \(round)")
            }
        }
    }

    /// Thread arenas: found through main_arena's ring, each heap through `heap_info.prev` from the
    /// one holding the arena's top, chunks from past the arena (first heap) or the heap_info
    /// (later ones); an old heap ends at its fencepost. Met out of address order, the blocks are
    /// sorted.
    func testThreadArenasAndTheirHeaps() {
        let target = InMemoryTarget()
        let heap = GlibcHeapBuilder(target: target)
        (0..<3).forEach { _ in heap.malloc(64) }
        heap.finish()
        let thread = GlibcThreadArena(joining: heap, heapStart: 0x7fff_e400_0000)
        thread.malloc(100)
        thread.malloc(30, state: .free)
        thread.malloc(500)
        thread.growHeap(at: 0x7fff_ec00_0000)
        thread.malloc(48)
        thread.malloc(2000)
        thread.finish()
        let other = GlibcThreadArena(joining: heap, heapStart: 0x7fff_e800_0000)
        other.malloc(24)
        other.finish()
        let blocks = MallocHeap(source: target).walk()
        XCTAssertEqual(blocks.coverage, .complete, blocks.notes.joined(separator: "; "))
        XCTAssertEqual(blocks.counters["arenas"], 3)
        let expected = (heap.liveChunks + thread.liveChunks + other.liveChunks).sorted { $0.address < $1.address }
        XCTAssertEqual(Array(blocks.addresses), expected.map(\.user))
        XCTAssertEqual(Array(blocks.sizes), expected.map(\.size))
        XCTAssertEqual(thread.liveChunks.count, 4)
        for range in (thread.heaps + other.heaps).map({ $0.start..<$0.end }) {
            XCTAssertTrue(blocks.ownedRanges.contains(range), "\(range) is the allocator's")
        }
        XCTAssertEqual(blocks.counters["mmapped"], 0, "a thread heap is no mmapped chunk")
    }
}
