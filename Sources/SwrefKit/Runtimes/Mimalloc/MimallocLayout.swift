/// Where mimalloc 2.0 (x86_64, release build: no MI_DEBUG, no MI_SECURE, so no padding and plain
/// free-list pointers) keeps its state. Offsets were checked against Debian's libmimalloc.so.2.0
/// (2.0.9) by `offsetof` against the 2.0.9 headers and by reading a live segment of that library.
enum MimallocLayout {
    // Segments: 32 MiB aligned, cut into 64 KiB slices.
    static let segmentSize: UInt64 = 32 << 20
    static let sliceSize: UInt64 = 64 << 10
    static let slicesPerSegment: UInt64 = 512

    // mi_segment_t
    static let segmentAbandoned: Int = 0xc0
    static let segmentUsed: Int = 0xd0
    static let segmentCookie: Int = 0xd8
    static let segmentSlices: Int = 0xe0
    static let segmentInfoSlices: Int = 0xe8
    static let segmentKind: Int = 0xf0
    static let segmentSliceEntries: Int = 0xf8
    static let segmentThreadID: Int = 0x100
    static let segmentSlicesArray: Int = 0x108
    /// The header, with its `slices[MI_SLICES_PER_SEGMENT + 1]`.
    static let segmentHeaderSize: Int = 0x108 + 513 * 0x50

    // mi_page_t (= mi_slice_t), 0x50 bytes
    static let pageSize: Int = 0x50
    static let pageSliceCount: Int = 0x00
    static let pageSliceOffset: Int = 0x04
    static let pageCapacity: Int = 0x0a
    static let pageReserved: Int = 0x0c
    static let pageFlags: Int = 0x0e
    static let pageFree: Int = 0x10
    static let pageUsed: Int = 0x18
    static let pageBlockSize: Int = 0x1c
    static let pageLocalFree: Int = 0x20
    static let pageThreadFree: Int = 0x28
    static let pageHeap: Int = 0x30
    static let pageNext: Int = 0x38

    // mi_heap_t
    static let heapTld: UInt64 = 0x0
    /// `pages[MI_BIN_FULL + 1]`: page queues of 0x18 bytes (first, last, block_size).
    static let heapPages: UInt64 = 0x410
    static let heapQueueCount = 75
    static let pageQueueSize: UInt64 = 0x18
    static let heapThreadDelayedFree: UInt64 = 0xb18
    static let heapThreadID: UInt64 = 0xb20
    static let heapCookie: UInt64 = 0xb30
    // mi_tld_t
    static let tldHeapBacking: UInt64 = 0x10

    /// `xblock_size` saturates here; the page's own size is then the block size.
    static let hugeBlockSize: UInt64 = 2 << 30
    /// Pages of blocks from 8 to 1024 bytes start this far into their first slice (3 × MI_MAX_ALIGN_GUARANTEE).
    static let smallBlockStartOffset: UInt64 = 3 * 128
    /// `xthread_free`'s low two bits are the delayed-free state.
    static let threadFreeFlags: UInt64 = 3

    /// `_mi_heap_main` (the main thread's heap, whose cookie keys every segment's) by build id, as
    /// an offset from the library's load bias.
    static let mainHeapByBuildID: [String: UInt64] = [
        "d07f4e7dc9a039fcbe7747f416476bd65cb48e8b": 0x1c4c0, // Debian 12 libmimalloc2.0 2.0.9+ds-2
    ]
}
