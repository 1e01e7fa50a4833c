import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefTestSupport
import XCTest

/// The object table and the address index on hand-built blocks.
final class ObjectTableTests: XCTestCase {
    let noImages = ImageList(memoryMap: MemoryMap(regions: []))

    func blocks(_ rows: [(UInt64, UInt64)], overhead: UInt64 = 8) -> HeapBlocks {
        var heap = HeapBlocks(allocator: "test", overhead: overhead)
        for (address, size) in rows {
            heap.addresses.append(address)
            heap.sizes.append(size)
        }
        return heap
    }

    func testTableTypesBlocksAndFindsInteriorPointers() {
        let target = InMemoryTarget()
        let image = SwiftImageBuilder(target: target)
        let base: UInt64 = 0x5555_0000_0000
        target.map(base, size: 0x1000)
        let node = image.makeClass(instanceSize: 32)
        // Blocks: a Swift object with its counts in a side table, the side table, plain bytes, an
        // allocator-internal block, another object.
        image.writeObject(at: base + 0x10, metadata: node.metadata, refCount: SwiftImageBuilder.sideTableRefCount(base + 0x40))
        image.writeObject(at: base + 0x100, metadata: node.metadata)
        var heap = blocks([(base + 0x10, 0x30), (base + 0x40, 0x30), (base + 0x70, 0x20), (base + 0xa0, 0x40), (base + 0x100, 0x30)])
        heap.internalBlocks = [base + 0xa0]
        heap.internalName = "test cache"
        heap.ownedRanges = [base + 0x800..<base + 0x900, base..<base + 0x400, base + 0x400..<base + 0x500]
        let recognizer = SwiftObjectRecognizer(source: target, images: noImages, reflection: nil)
        let table = ObjectTable(heap: heap, recognizer: recognizer)
        XCTAssertEqual(table.count, 5)
        let kinds = (0..<table.count).map { table.types[Int(table.typeIndices[$0])].kind }
        XCTAssertEqual(kinds, [.classInstance, .sideTable, .malloc, .allocatorInternal, .classInstance])
        XCTAssertEqual(table.types[Int(table.typeIndices[3])].name, "test cache")
        XCTAssertEqual(table.objects(ofKind: .classInstance), [0, 4])
        XCTAssertEqual(table.objects(ofKind: .task), [])
        XCTAssertEqual(table.usableSize(0), 0x28)
        XCTAssertEqual(table.allocatorRanges, [base..<base + 0x500, base + 0x800..<base + 0x900], "merged and sorted")
        // Interior pointers: the user bytes only (a block's last 8 bytes of its chunk are the next's header).
        XCTAssertEqual(table.object(containing: base + 0x10), 0)
        XCTAssertEqual(table.object(containing: base + 0x37), 0)
        XCTAssertNil(table.object(containing: base + 0x38))
        XCTAssertNil(table.object(containing: base + 0xf))
        XCTAssertEqual(table.object(containing: base + 0x127), 4)
        XCTAssertNil(table.object(containing: base + 0x128))
        XCTAssertNil(table.object(containing: 0))
        XCTAssertNil(table.object(containing: .max))
        XCTAssertEqual(table.firstObject(atOrAfter: base + 0x41), 2)
        XCTAssertNil(table.firstObject(atOrAfter: base + 0x101))
    }

    /// The bitmap index answers as a plain search over the blocks does, for random
    /// blocks (16-byte and 8-byte grains, several mappings, gaps) and random probes; so does the
    /// sparse index, which the rounds with large blocks get (runs of small blocks among them put
    /// several starts in one bucket).
    func testAddressIndexAgreesWithSearches() {
        var random = SplitMix(seed: 5)
        for round in 0..<100 {
            let sparse = round >= 60
            let offGrain = round % 3 == 0
            let overhead: UInt64 = round % 2 == 0 ? 8 : 0
            var rows: [(UInt64, UInt64)] = []
            var regions: [MemoryRegion] = []
            var address: UInt64 = 0x5555_0000_0000 + (random.next() % 64) * 0x1_0000_0000
            for _ in 0..<Int(1 + random.next() % 4) {
                let start = address
                for _ in 0..<Int(random.next() % 300) {
                    address += (random.next() % 3) * 16 + (offGrain && random.next() % 5 == 0 ? 8 : 0)
                    let small = !sparse || random.next() % 8 == 0
                    let size = 16 + (random.next() % (small ? 40 : 1200)) * 8
                    rows.append((address, size))
                    address += size
                }
                address = (address + 0xfff) & ~0xfff
                if address == start { address += 0x1000 }
                regions.append(MemoryRegion(start: start, end: address, readable: true, writable: true, executable: false))
                address += (random.next() % 4) * 0x1000 + (random.next() % 2 == 0 ? 1 << 40 : 0)
            }
            let heap = blocks(rows, overhead: overhead)
            let index = AddressIndex(addresses: heap.addresses, sizes: heap.sizes, overhead: overhead, memoryMap: MemoryMap(regions: regions))
            // The last block starting at or below the probe, by a plain binary search, then its bounds.
            func linear(_ probe: UInt64) -> Int? {
                var low = 0, high = rows.count
                while low < high {
                    let mid = (low + high) / 2
                    if rows[mid].0 <= probe { low = mid + 1 } else { high = mid }
                }
                guard low > 0, probe < rows[low - 1].0 + rows[low - 1].1 - overhead else { return nil }
                return low - 1
            }
            var probes: [UInt64] = [0, 1, .max, .max - 8, 0x7FFF_FFFF_FFFF]
            for (address, size) in rows { probes += [address, address - 1, address + size - overhead - 1, address + size - overhead, address + 8] }
            for _ in 0..<200 { probes.append(rows.isEmpty ? random.next() : rows[Int(random.next() % UInt64(rows.count))].0 &+ random.next() % 512 &- 256) }
            for probe in probes {
                let expected = linear(probe)
                XCTAssertEqual(index.block(containing: probe), expected, "round \(round): 0x\(String(probe, radix: 16))")
            }
        }
    }

    /// Blocks at the very top of the address space, the last one's size running past 2^64 (a
    /// damaged core): lookups answer as a plain search does and nothing traps.
    func testBlocksAtTheTopOfTheAddressSpace() {
        let target = InMemoryTarget()
        let top: UInt64 = 0xFFFF_FFFF_FFFF_E000
        target.map(top, size: UInt64.max - top)
        let rows: [(UInt64, UInt64)] = [(top, 0x20), (top + 0x20, 0x1000), (0xFFFF_FFFF_FFFF_FF00, 0xf0), (.max - 15, 0x40)]
        for overhead: UInt64 in [0, 8] {
            let heap = blocks(rows, overhead: overhead)
            let table = ObjectTable(heap: heap, recognizer: SwiftObjectRecognizer(source: target, images: noImages, reflection: nil))
            let index = AddressIndex(addresses: heap.addresses, sizes: heap.sizes, overhead: overhead, memoryMap: target.memoryMap)
            func expected(_ probe: UInt64) -> Int? {
                rows.lastIndex { probe >= $0.0 && probe - $0.0 < $0.1 - overhead }
            }
            var probes: [UInt64] = [.max, .max - 1, .max - 8, .max - 15, .max - 16, top - 1, 0, 1 << 63]
            for (address, size) in rows { probes += [address, address &+ size &- overhead &- 1, address &+ size &- overhead, address + 8] }
            for probe in probes {
                XCTAssertEqual(table.object(containing: probe), expected(probe), "table, overhead \(overhead): 0x\(String(probe, radix: 16))")
                // The index covers blocks where their mappings are: 2^64 - 1 is in none.
                XCTAssertEqual(index.block(containing: probe), target.memoryMap.region(containing: probe) == nil ? nil : expected(probe),
                               "index, overhead \(overhead): 0x\(String(probe, radix: 16))")
            }
            XCTAssertEqual(table.firstObject(atOrAfter: .max), nil)
            XCTAssertEqual(table.firstObject(atOrAfter: .max - 15), 3)
        }
    }

    /// The reference scan over the same blocks finishes: each block's words are read without
    /// wrapping past 2^64 (the scan trapped on `address + 8 <= end` for the last block). Words up
    /// there are no user-space pointers on x86-64 (47 bits), so no edge comes of them.
    func testScanOfBlocksAtTheTopOfTheAddressSpaceDoesNotWrap() {
        let target = InMemoryTarget()
        let top: UInt64 = 0xFFFF_FFFF_FFFF_E000
        target.map(top, size: UInt64.max - top)
        let rows: [(UInt64, UInt64)] = [(top, 0x20), (top + 0x20, 0x1000), (0xFFFF_FFFF_FFFF_FF00, 0xf0), (.max - 15, 0x40)]
        target.put(0xFFFF_FFFF_FFFF_FF00, at: top + 0x28)
        for overhead: UInt64 in [0, 8] {
            let heap = blocks(rows, overhead: overhead)
            let objects = ObjectTable(heap: heap, recognizer: SwiftObjectRecognizer(source: target, images: noImages, reflection: nil))
            let scanner = ReferenceScanner(source: target, objects: objects, layouts: ObjectLayouts(reflection: nil, source: target),
                                           symbolizer: Symbolizer(images: noImages))
            let graph = scanner.buildGraph()
            XCTAssertEqual(objects.count, rows.count)
            XCTAssertEqual(graph.edgeCount, 0, "overhead \(overhead)")
        }
    }
}
