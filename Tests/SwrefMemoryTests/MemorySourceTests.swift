import SwrefMemory
import SwrefTestSupport
import XCTest

/// The memory seam on an in-memory target: reads across region edges and gaps, the window's fast
/// and slow paths, and addresses at the top of the address space.
final class MemorySourceTests: XCTestCase {
    func bytes(_ range: Range<Int>) -> [UInt8] { range.map { UInt8(truncatingIfNeeded: $0) } }

    func testReadSpanningAdjacentRegionsJoinsThem() {
        let target = InMemoryTarget()
        target.map(0x10000, size: 0x1000)
        target.map(0x11000, size: 0x1000, "r--p", path: "/lib/data.so")
        target.put(bytes: bytes(0..<8), at: 0x10ff8)
        target.put(bytes: bytes(8..<16), at: 0x11000)
        XCTAssertEqual(target.readBytes(0x10ff8, count: 16), bytes(0..<16))
        XCTAssertEqual(target.readWord(0x10ffc), UInt64(littleEndian: Array(bytes(4..<12)).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }))
        XCTAssertEqual(target.memoryMap.regions.map(\.start), [0x10000, 0x11000])
    }

    func testReadsIntoGapsUnbackedOrUnreadableRegionsFail() {
        let target = InMemoryTarget()
        target.map(0x10000, size: 0x1000)
        target.map(0x12000, size: 0x1000)                     // a gap before it
        target.map(0x13000, size: 0x1000, "---p")             // a guard page
        target.map(0x14000, size: 0x1000, backed: false)      // listed, never copied
        target.put(0x1122_3344_5566_7788, at: 0x10ff8)
        XCTAssertEqual(target.readWord(0x10ff8), 0x1122_3344_5566_7788)
        XCTAssertNil(target.readWord(0x10ffc), "runs into the gap")
        XCTAssertNil(target.readWord(0x11000))
        XCTAssertNil(target.readBytes(0x12ff8, count: 16), "runs into the guard page")
        XCTAssertNil(target.readWord(0x13000))
        XCTAssertNil(target.readWord(0x14000))
        XCTAssertNil(target.readWord(0))
        XCTAssertEqual(target.readBytes(0x11000, count: 0), [], "an empty read reads nothing, anywhere")
        XCTAssertNil(target.readBytes(0x10000, count: -1))
    }

    func testCStringStopsAtNulAndAtUnreadableMemory() {
        let target = InMemoryTarget()
        target.map(0x10000, size: 0x1000)
        target.put(cString: "main_arena", at: 0x10100)
        XCTAssertEqual(target.readCString(0x10100), "main_arena")
        // A string running to the region's end without a NUL is no string.
        target.put(bytes: [UInt8](repeating: 0x41, count: 0x40), at: 0x10fc0)
        XCTAssertNil(target.readCString(0x10fc0))
        // One that ends within the last bytes, read though a 64-byte chunk would cross the end.
        target.put(bytes: [0x42, 0x43, 0], at: 0x10ffd)
        XCTAssertEqual(target.readCString(0x10ffd), "BC")
        // The limit bounds the search for the NUL (by 64-byte reads), not the string's length.
        target.put(bytes: [UInt8](repeating: 0x78, count: 300) + [0], at: 0x10200)
        XCTAssertNil(target.readCString(0x10200, limit: 128), "no NUL within the limit")
        XCTAssertEqual(target.readCString(0x10200)?.count, 300)
    }

    func testWindowReadsLocalBytesWithoutCallsAndAgreesWithRead() {
        let target = InMemoryTarget()
        target.map(0x10000, size: 0x2000)
        var random = SplitMix(seed: 3)
        let words = (0..<0x400).map { _ in random.next() }
        target.put(words: words, at: 0x10000)
        var window = MemoryWindow(source: target)
        let before = target.readCalls
        for (index, word) in words.enumerated() { XCTAssertEqual(window.word(0x10000 + UInt64(index * 8)), word) }
        XCTAssertEqual(target.readCalls, before, "words of a local region are loads, not calls")
        // Unaligned words agree with read.
        for offset in stride(from: 1, to: 0x1ff0, by: 37) {
            let address = 0x10000 + UInt64(offset)
            XCTAssertEqual(window.word(address), target.readWord(address), "at +\(offset)")
        }
        // Without local bytes every word goes through read, with the same answers.
        target.servesLocalBytes = false
        var slow = MemoryWindow(source: target)
        for index in stride(from: 0, to: words.count, by: 17) { XCTAssertEqual(slow.word(0x10000 + UInt64(index * 8)), words[index]) }
        XCTAssertGreaterThan(target.readCalls, before)
    }

    func testWindowAtRegionEdges() {
        let target = InMemoryTarget()
        target.map(0x10000, size: 0x1000)
        target.map(0x11000, size: 0x1000)       // adjacent
        target.map(0x20000, size: 0x1000)       // after a gap
        target.put(bytes: bytes(0..<8), at: 0x10ffc)
        target.put(bytes: [UInt8](repeating: 0xee, count: 8), at: 0x20ff8)
        var window = MemoryWindow(source: target)
        XCTAssertEqual(window.word(0x10000), 0)
        // Straddles two regions: not one local buffer, so the window must ask the source.
        XCTAssertEqual(window.word(0x10ffc), target.readWord(0x10ffc))
        XCTAssertNotNil(window.word(0x10ffc))
        // The last word of a region before a gap, then the word that would run into the gap.
        XCTAssertEqual(window.word(0x20ff8), 0xeeee_eeee_eeee_eeee)
        XCTAssertNil(window.word(0x20ffc))
        XCTAssertNil(window.word(0x21000))
        XCTAssertNil(window.word(0x0))
    }

    /// Addresses and regions at the very top of the address space: no read wraps around to
    /// address 0 or past a buffer, and nothing traps.
    func testTopOfTheAddressSpace() {
        let target = InMemoryTarget()
        target.map(0x1000, size: 0x1000)
        target.put(bytes: [UInt8](repeating: 0xab, count: 0x1000), at: 0x1000)
        let top: UInt64 = 0xFFFF_FFFF_FFFF_F000
        let region = target.map(top, size: UInt64.max - top)   // ends at 2^64 - 1
        XCTAssertEqual(region.end, .max)
        target.put(0x0102_0304_0506_0708, at: .max - 15)
        XCTAssertEqual(target.readWord(.max - 15), 0x0102_0304_0506_0708)
        XCTAssertNotNil(target.readWord(.max - 8), "the last whole word")
        for address in [UInt64.max - 7, .max - 3, .max - 1, .max] {
            XCTAssertNil(target.readWord(address), "0x\(String(address, radix: 16)) + 8 is past the end")
            XCTAssertNil(target.readBytes(address, count: 16))
            var window = MemoryWindow(source: target)
            XCTAssertNotNil(window.word(.max - 15))
            XCTAssertNil(window.word(address), "the window at 0x\(String(address, radix: 16))")
        }
        XCTAssertNil(target.memoryMap.region(containing: .max))
        XCTAssertEqual(target.memoryMap.region(containing: .max - 1)?.start, top)
    }

    func testThreadRegistersByName() {
        let target = InMemoryTarget()
        let thread = target.addThread(tid: 7, registers: ["rsp": 0x7ffd_0000_1000, "rip": 0x5555_0000_1234, "rbx": 42])
        XCTAssertEqual(thread.rsp, 0x7ffd_0000_1000)
        XCTAssertEqual(thread.rip, 0x5555_0000_1234)
        XCTAssertEqual(thread.dwarfRegisters[3], 42)
        // user_regs_struct holds rsp at 19, rip at 16, rbx at 5: the round trip keeps them.
        let again = ThreadState(tid: 7, userRegisters: thread.userRegisters)
        XCTAssertEqual(again, thread)
        XCTAssertEqual(thread.userRegisters[19], 0x7ffd_0000_1000)
        XCTAssertEqual(target.threads.map(\.tid), [7])
        XCTAssertEqual(target.identity.pid, 4242)
        XCTAssertEqual(target.files.hostPath("/usr/lib/libc.so.6"), "/usr/lib/libc.so.6")
    }

    func testMemoryMapLookupAgreesWithALinearSearch() {
        var random = SplitMix(seed: 11)
        for _ in 0..<50 {
            var regions: [MemoryRegion] = []
            var address = random.next() % (1 << 40)
            for _ in 0..<Int(random.next() % 12) {
                address += (random.next() % 4) * 0x1000
                let size = (1 + random.next() % 8) * 0x1000
                regions.append(MemoryRegion(start: address, end: address + size, readable: true, writable: true, executable: false))
                address += size
            }
            let map = MemoryMap(regions: regions)
            let probes = regions.flatMap { [$0.start, $0.end - 1, $0.end, $0.start &- 1] } + [0, .max, random.next()]
            for probe in probes {
                XCTAssertEqual(map.region(containing: probe), regions.first { $0.contains(probe) }, "0x\(String(probe, radix: 16))")
            }
        }
    }

    func testMapsLinesParseAndMalformedOnesAreSkipped() {
        // The kernel ends every line's inode with a space, a path or not; a line cut short is no mapping.
        let text = [
            "555555554000-555555556000 r--p 00000000 fd:01 1234567 /usr/bin/server",
            "555555556000-555555559000 rw-p 00002000 fd:01 1234567 /usr/bin/server (deleted)",
            "7ffff7dd0000-7ffff7df0000 rw-s 00000000 00:05 99 /dev/shm/x",
            "nonsense",
            "ffffffffffffffff-0 rw-p 0 0 0 ",
            "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]",
            "7ffff7df0000-7ffff7df1000 rw-p 00000000 00:00 0",
            "12-34 rw 0 0 0 ",
            "1-2 rw-p zz 0 0 ",
            "1-2-3 rw-p 0 0 0 ",
            "10000000000000000-2 rw-p 0 0 0 ",
        ].joined(separator: "\n")
        let map = MemoryMap(parsing: text)
        XCTAssertEqual(map.regions.count, 5)
        XCTAssertEqual(map.regions[0].path, "/usr/bin/server")
        XCTAssertTrue(map.regions[0].isFileBacked)
        XCTAssertEqual(map.regions[1].path, "/usr/bin/server (deleted)")
        XCTAssertEqual(map.regions[1].fileOffset, 0x2000)
        XCTAssertTrue(map.regions[2].shared)
        // A start above its end parses (the kernel never writes one) but holds no address.
        XCTAssertEqual(map.regions[3].start, .max)
        XCTAssertFalse(map.regions[3].contains(.max))
        XCTAssertEqual(map.regions[4].path, "[vsyscall]")
        XCTAssertTrue(map.regions[4].executable && !map.regions[4].readable)
    }

    /// The window's fast path (local bytes) and slow path (a read, across regions) agree with a
    /// plain read at every address near every region edge, whatever the regions are.
    func testWindowAgreesWithReadOnRandomMaps() {
        var random = SplitMix(seed: 17)
        for round in 0..<40 {
            let target = InMemoryTarget()
            target.servesLocalBytes = round % 4 != 0
            var address: UInt64 = round % 5 == 0 ? 0xFFFF_FFFF_FFF0_0000 : 0x10000 + (random.next() % 1000) * 0x1000
            var edges: [UInt64] = []
            for _ in 0..<Int(1 + random.next() % 6) {
                let size = (1 + random.next() % 3) * 0x1000
                guard size <= UInt64.max - address else { break }
                let permissions = ["rw-p", "r--p", "---p", "rw-p"][Int(random.next() % 4)]
                let backed = random.next() % 5 != 0
                target.map(address, size: size, permissions, backed: backed)
                if backed {
                    for index in stride(from: 0, to: Int(size / 8), by: 7) { target.put(random.next(), at: address + UInt64(index * 8)) }
                    target.put(random.next(), at: address + size - 8)
                    target.put(random.next(), at: address + size - 13)
                }
                edges += [address, address + size]
                let gap = random.next() % 3 == 0 ? (random.next() % 3) * 0x1000 : 0
                guard gap <= UInt64.max - (address + size) else { break }
                address += size + gap
            }
            var window = MemoryWindow(source: target)
            for edge in edges {
                for delta in -24...24 {
                    let probe = edge &+ UInt64(bitPattern: Int64(delta))
                    XCTAssertEqual(window.word(probe), target.readWord(probe), "round \(round): 0x\(String(probe, radix: 16))")
                }
            }
        }
    }
}
