import SwrefImages
import SwrefMemory
import SwrefSupport

/// Where mimalloc 2.0 (x86_64, release build: no MI_DEBUG, no MI_SECURE, so no padding and plain
/// free-list pointers) keeps its state. Offsets were checked against Debian's libmimalloc.so.2.0
/// (2.0.9) by `offsetof` against the 2.0.9 headers and by reading a live segment of that library.
public enum MimallocLayout {
    // Segments: 32 MiB aligned, cut into 64 KiB slices.
    @inlinable public static var segmentSize: UInt64 { 32 << 20 }
    @inlinable public static var sliceSize: UInt64 { 64 << 10 }
    @inlinable public static var slicesPerSegment: UInt64 { 512 }

    // mi_segment_t
    @inlinable public static var segmentAbandoned: Int { 0xc0 }
    @inlinable public static var segmentUsed: Int { 0xd0 }
    @inlinable public static var segmentCookie: Int { 0xd8 }
    @inlinable public static var segmentSlices: Int { 0xe0 }
    @inlinable public static var segmentInfoSlices: Int { 0xe8 }
    @inlinable public static var segmentKind: Int { 0xf0 }
    @inlinable public static var segmentSliceEntries: Int { 0xf8 }
    @inlinable public static var segmentThreadID: Int { 0x100 }
    @inlinable public static var segmentSlicesArray: Int { 0x108 }
    /// The header, with its `slices[MI_SLICES_PER_SEGMENT + 1]`.
    @inlinable public static var segmentHeaderSize: Int { 0x108 + 513 * 0x50 }

    // mi_page_t (= mi_slice_t), 0x50 bytes
    @inlinable public static var pageSize: Int { 0x50 }
    @inlinable public static var pageSliceCount: Int { 0x00 }
    @inlinable public static var pageSliceOffset: Int { 0x04 }
    @inlinable public static var pageCapacity: Int { 0x0a }
    @inlinable public static var pageReserved: Int { 0x0c }
    @inlinable public static var pageFlags: Int { 0x0e }
    @inlinable public static var pageFree: Int { 0x10 }
    @inlinable public static var pageUsed: Int { 0x18 }
    @inlinable public static var pageBlockSize: Int { 0x1c }
    @inlinable public static var pageLocalFree: Int { 0x20 }
    @inlinable public static var pageThreadFree: Int { 0x28 }
    @inlinable public static var pageHeap: Int { 0x30 }
    @inlinable public static var pageNext: Int { 0x38 }

    // mi_heap_t
    @inlinable public static var heapTld: UInt64 { 0x0 }
    /// `pages[MI_BIN_FULL + 1]`: page queues of 0x18 bytes (first, last, block_size).
    @inlinable public static var heapPages: UInt64 { 0x410 }
    @inlinable public static var heapQueueCount: Int { 75 }
    @inlinable public static var pageQueueSize: UInt64 { 0x18 }
    @inlinable public static var heapThreadDelayedFree: UInt64 { 0xb18 }
    @inlinable public static var heapThreadID: UInt64 { 0xb20 }
    @inlinable public static var heapCookie: UInt64 { 0xb30 }
    // mi_tld_t
    @inlinable public static var tldHeapBacking: UInt64 { 0x10 }

    /// `xblock_size` saturates here; the page's own size is then the block size.
    @inlinable public static var hugeBlockSize: UInt64 { 2 << 30 }
    /// Pages of blocks from 8 to 1024 bytes start this far into their first slice (3 × MI_MAX_ALIGN_GUARANTEE).
    @inlinable public static var smallBlockStartOffset: UInt64 { 3 * 128 }
    /// `xthread_free`'s low two bits are the delayed-free state.
    @inlinable public static var threadFreeFlags: UInt64 { 3 }

    /// `_mi_heap_main` (the main thread's heap, whose cookie keys every segment's) by build id, as
    /// an offset from the library's load bias.
    public static let mainHeapByBuildID: [String: UInt64] = [
        "d07f4e7dc9a039fcbe7747f416476bd65cb48e8b": 0x1c4c0, // Debian 12 libmimalloc2.0 2.0.9+ds-2
    ]
}
