/// glibc 2.36 malloc constants on x86_64 (malloc/malloc.c, malloc/arena.c).
enum MallocLayout {
    static let prevInUse: UInt64 = 0x1
    static let isMmapped: UInt64 = 0x2
    static let nonMainArena: UInt64 = 0x4
    static let sizeMask: UInt64 = ~0x7
    static let minChunkSize: UInt64 = 32
    /// The user pointer of a chunk is this far past the chunk header.
    static let chunkHeader: UInt64 = 16

    // struct malloc_state
    static let arenaFastbins: UInt64 = 0x10
    static let fastbinCount = 10
    static let arenaTop: UInt64 = 0x60
    static let arenaNext: UInt64 = 0x870

    // struct heap_info at the start of each 64 MiB-aligned thread-arena heap
    static let heapMaxSize: UInt64 = 64 << 20
    static let heapInfoPrev: UInt64 = 0x8
    static let heapInfoSize: UInt64 = 0x10
    static let firstHeapChunks: UInt64 = 0x8D0
    static let laterHeapChunks: UInt64 = 0x30

    // struct tcache_perthread_struct: u16 counts[64], then tcache_entry *entries[64]
    static let tcacheBins = 64
    static let tcacheChunkSize: UInt64 = 0x290
    static let tcacheEntries: UInt64 = 128

    /// Safe-linking (glibc ≥ 2.32): a stored list pointer is XORed with its own address >> 12.
    @inline(__always)
    static func reveal(_ stored: UInt64, at fieldAddress: UInt64) -> UInt64 { (fieldAddress >> 12) ^ stored }
}
