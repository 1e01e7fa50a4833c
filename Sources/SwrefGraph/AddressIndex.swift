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
///
/// The bitmap's size follows the heap's bytes, not its blocks: 181 MiB for a 11.3 GiB heap of
/// 10 million blocks, more than the rest of the object table. A mapping whose blocks lie more than
/// 512 bytes apart on average gets a sparse index instead: per bucket of about the average spacing
/// (a power of two), the number of its blocks that start before the bucket — at most 8 bytes a
/// block — and a binary search among the few blocks that start inside it.
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
        /// A sparse area's index instead (`words` then empty): per bucket of 2^`bucketShift` bytes,
        /// the number of the area's blocks that start before it, and one more entry at the end.
        var starts: UnsafeMutableBufferPointer<UInt32>
        var bucketShift: UInt64
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
            let count = last - first + 1
            // Far apart on average (the bitmap would cost more than 8 bytes a block): sparse.
            if (end - start) / UInt64(count) > 512 && count < Int(UInt32.max) {
                areas.append(AddressIndex.sparseArea(addresses, first: first, last: last, start: start, end: end, storage: storage))
                index = last + 1
                continue
            }
            let granules = Int((end - start) >> shift) + 1
            // The bits go straight into the interleaved words (a bitmap of their own first was a
            // second fill of fresh pages as large, on a dense heap of gigabytes: tens of ms).
            let wordCount = (granules + 63) / 64 + 1
            let words = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: wordCount * 2)
            words.initialize(repeating: 0)
            storage.buffers.append(words)
            while index <= last {
                let granule = Int((addresses[index] - start) >> shift)
                words[2 * (granule >> 6)] |= 1 << UInt64(granule & 63)
                index += 1
            }
            var running: UInt64 = 0
            for word in 0..<wordCount {
                words[2 * word + 1] = running
                running += UInt64(words[2 * word].nonzeroBitCount)
            }
            areas.append(Area(start: start, end: end, firstBlock: first, words: words, starts: .init(start: nil, count: 0), bucketShift: 0))
        }
    }

    /// The sparse index of blocks `first...last` over `start..<end`: buckets of about their
    /// average spacing, so about one block starts in each.
    private static func sparseArea(_ addresses: BlockAddresses, first: Int, last: Int, start: UInt64, end: UInt64,
                                   storage: Storage) -> Area {
        let spacing = (end - start) / UInt64(last - first + 1)
        let bucketShift = UInt64(min(63 - spacing.leadingZeroBitCount, 30))
        let buckets = Int((end - start) >> bucketShift) + 2
        let starts = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: buckets)
        storage.sparse.append(starts)
        var bucket = 0
        for block in first...last {
            let own = Int((addresses[block] - start) >> bucketShift)
            while bucket <= own {
                starts[bucket] = UInt32(block - first)
                bucket += 1
            }
        }
        while bucket < buckets {
            starts[bucket] = UInt32(last - first + 1)
            bucket += 1
        }
        return Area(start: start, end: end, firstBlock: first, words: .init(start: nil, count: 0), starts: starts, bucketShift: bucketShift)
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
            if area.words.isEmpty { return sparseBlock(containing: address, in: area) }
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

    /// The last block of the area starting at or below `address`, among those starting in its
    /// bucket (by binary search) or else the one before the bucket; nil when it ends below.
    @inline(__always)
    private func sparseBlock(containing address: UInt64, in area: Area) -> Int? {
        let bucket = Int((address - area.start) >> area.bucketShift)
        var low = Int(area.starts[bucket]), high = Int(area.starts[bucket + 1])
        while low < high {
            let middle = (low + high) / 2
            if addresses[area.firstBlock + middle] <= address { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return nil }
        let candidate = area.firstBlock + low - 1
        if addresses[candidate] == address { return candidate }
        return address &- addresses[candidate] < sizes[candidate] &- overhead ? candidate : nil
    }

    /// Starts loading the index entry that a lookup of `address` will read.
    @inline(__always)
    public func prefetch(_ address: UInt64) {
        guard address >= lowest && address < highest else { return }
        for area in areas where address >= area.start && address < area.end {
            if area.words.isEmpty {
                swref_prefetch(area.starts.baseAddress! + Int((address - area.start) >> area.bucketShift))
                return
            }
            let word = Int((address - area.start) >> (shift + 6))
            swref_prefetch(area.words.baseAddress! + 2 * word)
            return
        }
    }
}

/// Owns the index's buffers; copies of the index share them.
private final class Storage {
    var buffers: [UnsafeMutableBufferPointer<UInt64>] = []
    var sparse: [UnsafeMutableBufferPointer<UInt32>] = []
    deinit {
        buffers.forEach { $0.deallocate() }
        sparse.forEach { $0.deallocate() }
    }
}
