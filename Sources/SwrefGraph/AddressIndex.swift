import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// Finds the block that holds an address without a binary search over millions of addresses:
/// per mapping that holds blocks, a bitmap marks every 16-byte granule where a block starts, and
/// a running count per 64 granules turns a bit into the block's index (rank). The two sit side by
/// side, one 16-byte pair per 64 granules (1/64 of the mapping's size), so that a lookup on a large
/// heap, where they are out of cache, misses once rather than twice. Allocators that hand out 8-byte
/// blocks (jemalloc, mimalloc) put two in one 16-byte granule: those heaps get 8-byte granules.
import CSwrefSystem

public struct AddressIndex {
    private struct Area {
        var start: UInt64
        var end: UInt64
        /// Index of the area's first block.
        var firstBlock: Int
        /// Per 64 granules: the bitmap word, then the number of blocks starting before it. Not an
        /// array: an area is copied on every lookup, and an array would be retained each time.
        var words: UnsafeMutableBufferPointer<UInt64>
    }

    private let addresses: BlockAddresses
    private let sizes: BlockSizes
    private var areas: [Area] = []
    private let storage = Storage()
    private let lowest: UInt64
    private let highest: UInt64
    /// log2 of the granule: 4, or 3 when some block starts off the 16-byte grain.
    private let shift: UInt64

    private let overhead: UInt64

    public init(addresses: BlockAddresses, sizes: BlockSizes, overhead: UInt64, memoryMap: MemoryMap) {
        self.addresses = addresses
        self.sizes = sizes
        self.overhead = overhead
        lowest = addresses.first ?? 0
        highest = addresses.isEmpty ? 0 : AddressIndex.end(addresses[addresses.count - 1], sizes[sizes.count - 1])
        shift = addresses.allOnSixteenByteGrain ? 4 : 3
        let shift = self.shift
        var index = 0
        for region in memoryMap.regions where index < addresses.count {
            index = addresses.lowerBound(region.start)
            guard index < addresses.count, region.contains(addresses[index]) else { continue }
            let first = index
            let last = addresses.lowerBound(region.end) - 1
            // The bitmap spans the blocks, not the mapping: a mapping's size can be anything in a
            // damaged core, the blocks were all read from memory that exists.
            let start = max(region.start, addresses[first] & ~15)
            let end = max(min(region.end, AddressIndex.end(addresses[last], sizes[last])), addresses[last] + 1)
            let granules = Int((end - start) >> shift) + 1
            var bits = [UInt64](repeating: 0, count: (granules + 63) / 64 + 1)
            while index <= last {
                let granule = Int((addresses[index] - start) >> shift)
                bits[granule >> 6] |= 1 << UInt64(granule & 63)
                index += 1
            }
            let words = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: bits.count * 2)
            storage.buffers.append(words)
            var running: UInt64 = 0
            for word in bits.indices {
                words[2 * word] = bits[word]
                words[2 * word + 1] = running
                running += UInt64(bits[word].nonzeroBitCount)
            }
            areas.append(Area(start: start, end: end, firstBlock: first, words: words))
        }
    }

    /// Where a block ends; the top of the address space for a size that runs past 2^64 (a damaged core).
    private static func end(_ address: UInt64, _ size: UInt64) -> UInt64 {
        let (end, overflow) = address.addingReportingOverflow(size)
        return overflow ? .max : end
    }

    /// The index of the block whose user bytes hold `address`.
    @inline(__always)
    public func block(containing address: UInt64) -> Int? {
        guard address >= lowest && address < highest else { return nil }
        for area in areas where address >= area.start && address < area.end {
            let granule = Int((address - area.start) >> shift)
            let word = granule >> 6
            let bit = UInt64(granule & 63)
            let upTo = area.words[2 * word] & (bit == 63 ? ~0 : (UInt64(2) << bit) - 1)
            var rank = Int(area.words[2 * word + 1]) + upTo.nonzeroBitCount
            // Blocks start on the grain: a set bit at an address on the grain is that block's start.
            if upTo >> bit & 1 == 1 && (address & ((1 << shift) - 1)) == 0 { return area.firstBlock + rank - 1 }
            if rank == 0 { return nil }
            rank -= 1
            let candidate = area.firstBlock + rank
            return address &- addresses[candidate] < sizes[candidate] &- overhead ? candidate : nil
        }
        return nil
    }

    /// Starts loading the index entry that a lookup of `address` will read.
    @inline(__always)
    public func prefetch(_ address: UInt64) {
        guard address >= lowest && address < highest else { return }
        for area in areas where address >= area.start && address < area.end {
            let word = Int((address - area.start) >> (shift + 6))
            swref_prefetch(area.words.baseAddress! + 2 * word)
            return
        }
    }
}

/// Owns the index's buffers; copies of the index share them.
private final class Storage {
    var buffers: [UnsafeMutableBufferPointer<UInt64>] = []
    deinit { buffers.forEach { $0.deallocate() } }
}
