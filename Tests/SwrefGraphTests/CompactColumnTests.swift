import SwrefGraph
import SwrefRuntimes
import SwrefTestSupport
import XCTest

/// The object table's compact columns against plain arrays of the same values: addresses in four
/// bytes (group bases, one jump per group, a side table for the rest), sizes and type numbers in two.
final class CompactColumnTests: XCTestCase {
    /// Ascending runs the way malloc lays blocks out, with jumps between heaps and mmapped chunks
    /// (some farther than the 32 GiB a base reaches), off-grain and very large values, and, when
    /// `shuffledRuns`, the runs in the order an arena list might give them.
    func addressesAndSizes(_ seed: UInt64, shuffledRuns: Bool) -> [(UInt64, UInt64)] {
        var random = SplitMix(seed: seed)
        var runs: [[(UInt64, UInt64)]] = []
        var address: UInt64 = 0x5555_0000_0000
        for _ in 0..<Int(random.next() % 8 + 1) {
            var run: [(UInt64, UInt64)] = []
            for _ in 0..<Int(random.next() % 9000) {
                let size: UInt64
                switch random.next() % 100 {
                case 0: size = (random.next() % (1 << 34)) & ~15   // beyond 16 bits of 16-byte units
                case 1: size = random.next() % 100_000                // off the 16-byte grain
                default: size = 32 + (random.next() % 64) * 16
                }
                run.append((address, size))
                address += max(size, 16) & ~15 + (random.next() % 4 == 0 ? 16 : 0)
                if random.next() % 3000 == 0 { address += 8 }          // off the grain from here on
            }
            runs.append(run)
            // The next heap: nearby, or past what one base reaches.
            address += random.next() % 2 == 0 ? random.next() % (1 << 30) * 16 : (64 << 30) + (random.next() % (1 << 40)) * 16
        }
        if shuffledRuns { runs.shuffle(using: &random) }
        return runs.flatMap { $0 }
    }

    func testColumnsKeepEveryValue() {
        for seed in 1...24 as ClosedRange<UInt64> {
            let rows = addressesAndSizes(seed, shuffledRuns: seed % 2 == 0)
            var addresses = BlockAddresses(), sizes = BlockSizes()
            var types = TypeIndices(count: rows.count)
            var random = SplitMix(seed: seed &* 7)
            var expectedTypes: [Int32] = []
            for (index, (address, size)) in rows.enumerated() {
                addresses.append(address)
                sizes.append(size)
                let type = random.next() % 50 == 0 ? Int32(70_000 + random.next() % 1000) : Int32(random.next() % 3000)
                types[index] = type
                expectedTypes.append(type)
            }
            assertSame(addresses, rows.map(\.0), "seed \(seed): addresses")
            assertSame(sizes, rows.map(\.1), "seed \(seed): sizes")
            assertSame(types, expectedTypes, "seed \(seed): type numbers")

            // Overwrite some rows with values from elsewhere (other groups, other windows).
            var expected = rows
            for _ in 0..<min(rows.count, 200) {
                let index = Int(random.next() % UInt64(rows.count)), from = Int(random.next() % UInt64(rows.count))
                addresses[index] = rows[from].0
                sizes[index] = rows[from].1
                expected[index] = rows[from]
            }
            assertSame(addresses, expected.map(\.0), "seed \(seed): overwritten addresses")
            assertSame(sizes, expected.map(\.1), "seed \(seed): overwritten sizes")

            // Remove scattered rows, as the malloc walk drops the chunks in tcache and fastbin lists.
            let removed = Set((0..<Int(random.next() % 300)).map { _ in Int(random.next() % UInt64(max(rows.count, 1))) })
                .filter { $0 < rows.count }.sorted()
            addresses.removeRows(at: removed)
            sizes.removeRows(at: removed)
            let removedSet = Set(removed)
            let kept = expected.indices.filter { !removedSet.contains($0) }.map { expected[$0] }
            assertSame(addresses, kept.map(\.0), "seed \(seed): addresses after removal")
            assertSame(sizes, kept.map(\.1), "seed \(seed): sizes after removal")

            // Sorted, then searched.
            let order = kept.indices.sorted { kept[$0].0 < kept[$1].0 }
            let sorted = addresses.permuted(order)
            let plain = order.map { kept[$0].0 }
            assertSame(sorted, plain, "seed \(seed): sorted")
            for probe in order.prefix(50) {
                let value = kept[probe].0
                XCTAssertEqual(sorted[sorted.lowerBound(value)], value)
                XCTAssertEqual(sorted.upperBound(value), plain.upperBound(value))
            }
        }
    }

    /// Columns without side entries (the usual glibc heap) lose their rows by whole stretches: rows
    /// that cross into an earlier group, a group's second base, long runs of removed rows (more
    /// than a group), removals at both ends.
    func testRemovalWithoutSideTables() {
        for seed in 1...12 as ClosedRange<UInt64> {
            var random = SplitMix(seed: seed)
            var rows: [(UInt64, UInt64)] = []
            var address: UInt64 = 0x5555_0000_0000
            for index in 0..<30_000 {
                let size = 32 + (random.next() % 64) * 16
                rows.append((address, size))
                address += size
                // The jump to the mmap area, once, in the middle of a group: its rows take the second base.
                if index == 13_000 { address = 0x7f00_0000_0000 }
            }
            var removed: Set<Int> = [0, rows.count - 1]
            switch seed % 3 {
            case 0: for _ in 0..<Int(random.next() % 300) { removed.insert(Int(random.next() % UInt64(rows.count))) }
            case 1: for row in stride(from: 1, to: rows.count, by: 3) { removed.insert(row) }
            default: for row in 5_000..<14_000 { removed.insert(row) }
            }
            var addresses = BlockAddresses(), sizes = BlockSizes()
            for (address, size) in rows {
                addresses.append(address)
                sizes.append(size)
            }
            let indices = removed.sorted()
            addresses.removeRows(at: indices)
            sizes.removeRows(at: indices)
            let kept = rows.indices.filter { !removed.contains($0) }.map { rows[$0] }
            assertSame(addresses, kept.map(\.0), "seed \(seed): addresses after removal")
            assertSame(sizes, kept.map(\.1), "seed \(seed): sizes after removal")
            // Rows appended after a removal decode too (the groups' bases are still right).
            addresses.append(0x7f10_0000_0000)
            XCTAssertEqual(addresses[addresses.count - 1], 0x7f10_0000_0000)
        }
    }

    /// A column appended to another (the malloc walk's second thread's part, from its first row or
    /// a later one) holds what appending each value would: rows moved to other groups against
    /// other bases, second bases, side tables, off-grain values, at every split point phase
    /// within a group.
    func testAppendingAColumnKeepsEveryValue() {
        for seed in 1...12 as ClosedRange<UInt64> {
            let rows = addressesAndSizes(seed, shuffledRuns: seed % 2 == 0)
            var random = SplitMix(seed: seed &* 13)
            for split in [Int(random.next() % UInt64(rows.count + 1)), 0, 4096, rows.count] where split <= rows.count {
                // Rows the appended column has before those taken from it: some other column's.
                let skipped = addressesAndSizes(seed &+ 100, shuffledRuns: false).prefix(Int(random.next() % 6000))
                var addresses = BlockAddresses(rows[..<split].map(\.0)), sizes = BlockSizes()
                var tail = BlockAddresses((skipped + rows[split...]).map(\.0)), tailSizes = BlockSizes()
                rows[..<split].forEach { sizes.append($0.1) }
                (skipped + rows[split...]).forEach { tailSizes.append($0.1) }
                addresses.append(contentsOf: tail, from: skipped.count)
                sizes.append(contentsOf: tailSizes, from: skipped.count)
                assertSame(addresses, rows.map(\.0), "seed \(seed), split at \(split): addresses")
                assertSame(sizes, rows.map(\.1), "seed \(seed), split at \(split): sizes")
                XCTAssertEqual(addresses.allOnSixteenByteGrain, BlockAddresses(rows.map(\.0)).allOnSixteenByteGrain)
                // Rows appended afterwards land in the right groups.
                addresses.append(0x7f10_0000_0000)
                XCTAssertEqual(addresses[addresses.count - 1], 0x7f10_0000_0000)
                tail = BlockAddresses()
                addresses.append(contentsOf: tail)
                XCTAssertEqual(addresses.count, rows.count + 1)
            }
        }
    }

    /// Names the first row that differs, rather than printing millions of values.
    func assertSame<C: Collection>(_ column: C, _ expected: [C.Element], _ what: String, line: UInt = #line)
    where C.Element: Equatable {
        XCTAssertEqual(column.count, expected.count, "\(what): row count", line: line)
        if let row = zip(column, expected).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
            XCTFail("\(what): row \(row.offset) is \(row.element.0), expected \(row.element.1)", line: line)
        }
    }
}
