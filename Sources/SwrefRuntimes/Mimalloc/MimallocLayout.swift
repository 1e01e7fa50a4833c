import SwrefImages
import SwrefMemory

import SwrefSupport

/// Where mimalloc 2.0 (x86_64, release build: no MI_DEBUG, no MI_SECURE, so no padding and plain
/// free-list pointers) keeps its state. Offsets were checked against Debian's libmimalloc.so.2.0
/// (2.0.9) by `offsetof` against the 2.0.9 headers and by reading a live segment of that library.
package enum MimallocLayout {
    // Segments: 32 MiB aligned, cut into 64 KiB slices.
    @inlinable package static var segmentSize: UInt64 { 32 << 20 }
    @inlinable package static var sliceSize: UInt64 { 64 << 10 }
    @inlinable package static var slicesPerSegment: UInt64 { 512 }

    // mi_segment_t
    @inlinable package static var segmentAbandoned: Int { 0xc0 }
    @inlinable package static var segmentUsed: Int { 0xd0 }
    @inlinable package static var segmentCookie: Int { 0xd8 }
    @inlinable package static var segmentSlices: Int { 0xe0 }
    @inlinable package static var segmentInfoSlices: Int { 0xe8 }
    @inlinable package static var segmentKind: Int { 0xf0 }
    @inlinable package static var segmentSliceEntries: Int { 0xf8 }
    @inlinable package static var segmentThreadID: Int { 0x100 }
    @inlinable package static var segmentSlicesArray: Int { 0x108 }
    /// The header, with its `slices[MI_SLICES_PER_SEGMENT + 1]`.
    @inlinable package static var segmentHeaderSize: Int { 0x108 + 513 * 0x50 }

    // mi_page_t (= mi_slice_t), 0x50 bytes
    @inlinable package static var pageSize: Int { 0x50 }
    @inlinable package static var pageSliceCount: Int { 0x00 }
    @inlinable package static var pageSliceOffset: Int { 0x04 }
    @inlinable package static var pageCapacity: Int { 0x0a }
    @inlinable package static var pageReserved: Int { 0x0c }
    @inlinable package static var pageFlags: Int { 0x0e }
    @inlinable package static var pageFree: Int { 0x10 }
    @inlinable package static var pageUsed: Int { 0x18 }
    @inlinable package static var pageBlockSize: Int { 0x1c }
    @inlinable package static var pageLocalFree: Int { 0x20 }
    @inlinable package static var pageThreadFree: Int { 0x28 }
    @inlinable package static var pageHeap: Int { 0x30 }
    @inlinable package static var pageNext: Int { 0x38 }

    // mi_heap_t
    @inlinable package static var heapTld: UInt64 { 0x0 }
    /// `pages[MI_BIN_FULL + 1]`: page queues of 0x18 bytes (first, last, block_size).
    @inlinable package static var heapPages: UInt64 { 0x410 }
    @inlinable package static var heapQueueCount: Int { 75 }
    @inlinable package static var pageQueueSize: UInt64 { 0x18 }
    @inlinable package static var heapThreadDelayedFree: UInt64 { 0xb18 }
    @inlinable package static var heapThreadID: UInt64 { 0xb20 }
    @inlinable package static var heapCookie: UInt64 { 0xb30 }
    // mi_tld_t
    @inlinable package static var tldHeapBacking: UInt64 { 0x10 }

    /// `xblock_size` saturates here; the page's own size is then the block size.
    @inlinable package static var hugeBlockSize: UInt64 { 2 << 30 }
    /// Pages of blocks from 8 to 1024 bytes start this far into their first slice (3 × MI_MAX_ALIGN_GUARANTEE).
    @inlinable package static var smallBlockStartOffset: UInt64 { 3 * 128 }
    /// `xthread_free`'s low two bits are the delayed-free state.
    @inlinable package static var threadFreeFlags: UInt64 { 3 }

    /// `_mi_heap_main` (the main thread's heap, whose cookie keys every segment's) by build id, as
    /// an offset from the library's load bias.
    package static let mainHeapByBuildID: [String: UInt64] = [
        "d07f4e7dc9a039fcbe7747f416476bd65cb48e8b": 0x1c4c0, // Debian 12 libmimalloc2.0 2.0.9+ds-2
    ]
}
