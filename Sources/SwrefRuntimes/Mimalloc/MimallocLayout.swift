import SwrefImages
import SwrefMemory

import SwrefSupport

/// Where mimalloc 2.0 (x86_64, release build: no MI_DEBUG, no MI_SECURE, so no padding and plain
/// free-list pointers) keeps its state. Offsets were checked against Debian's libmimalloc.so.2.0
/// (2.0.9) by `offsetof` against the 2.0.9 headers and by reading a live segment of that library.
package enum MimallocLayout {
    // Segments: 32 MiB aligned, cut into 64 KiB slices.
    package static let segmentSize: UInt64 = 32 << 20
    package static let sliceSize: UInt64 = 64 << 10
    package static let slicesPerSegment: UInt64 = 512

    // mi_segment_t
    package static let segmentAbandoned: Int = 0xc0
    package static let segmentUsed: Int = 0xd0
    package static let segmentCookie: Int = 0xd8
    package static let segmentSlices: Int = 0xe0
    package static let segmentInfoSlices: Int = 0xe8
    package static let segmentKind: Int = 0xf0
    package static let segmentSliceEntries: Int = 0xf8
    package static let segmentThreadID: Int = 0x100
    package static let segmentSlicesArray: Int = 0x108
    /// The header, with its `slices[MI_SLICES_PER_SEGMENT + 1]`.
    package static let segmentHeaderSize: Int = 0x108 + 513 * 0x50

    // mi_page_t (= mi_slice_t), 0x50 bytes
    package static let pageSize: Int = 0x50
    package static let pageSliceCount: Int = 0x00
    package static let pageSliceOffset: Int = 0x04
    package static let pageCapacity: Int = 0x0a
    package static let pageReserved: Int = 0x0c
    package static let pageFlags: Int = 0x0e
    package static let pageFree: Int = 0x10
    package static let pageUsed: Int = 0x18
    package static let pageBlockSize: Int = 0x1c
    package static let pageLocalFree: Int = 0x20
    package static let pageThreadFree: Int = 0x28
    package static let pageHeap: Int = 0x30
    package static let pageNext: Int = 0x38

    // mi_heap_t
    package static let heapTld: UInt64 = 0x0
    /// `pages[MI_BIN_FULL + 1]`: page queues of 0x18 bytes (first, last, block_size).
    package static let heapPages: UInt64 = 0x410
    package static let heapQueueCount = 75
    package static let pageQueueSize: UInt64 = 0x18
    package static let heapThreadDelayedFree: UInt64 = 0xb18
    package static let heapThreadID: UInt64 = 0xb20
    package static let heapCookie: UInt64 = 0xb30
    // mi_tld_t
    package static let tldHeapBacking: UInt64 = 0x10

    /// `xblock_size` saturates here; the page's own size is then the block size.
    package static let hugeBlockSize: UInt64 = 2 << 30
    /// Pages of blocks from 8 to 1024 bytes start this far into their first slice (3 × MI_MAX_ALIGN_GUARANTEE).
    package static let smallBlockStartOffset: UInt64 = 3 * 128
    /// `xthread_free`'s low two bits are the delayed-free state.
    package static let threadFreeFlags: UInt64 = 3

    /// `_mi_heap_main` (the main thread's heap, whose cookie keys every segment's) by build id, as
    /// an offset from the library's load bias.
    package static let mainHeapByBuildID: [String: UInt64] = [
        "d07f4e7dc9a039fcbe7747f416476bd65cb48e8b": 0x1c4c0, // Debian 12 libmimalloc2.0 2.0.9+ds-2
    ]
}
