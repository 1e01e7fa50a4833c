import SwrefImages
import SwrefMemory

import SwrefSupport

/// glibc 2.36 malloc constants on x86_64 (malloc/malloc.c, malloc/arena.c).
package enum MallocLayout {
    package static let prevInUse: UInt64 = 0x1
    package static let isMmapped: UInt64 = 0x2
    package static let nonMainArena: UInt64 = 0x4
    package static let sizeMask: UInt64 = ~0x7
    package static let minChunkSize: UInt64 = 32
    /// The user pointer of a chunk is this far past the chunk header.
    package static let chunkHeader: UInt64 = 16

    // struct malloc_state
    package static let arenaFastbins: UInt64 = 0x10
    package static let fastbinCount = 10
    package static let arenaTop: UInt64 = 0x60
    package static let arenaNext: UInt64 = 0x870

    // struct heap_info at the start of each 64 MiB-aligned thread-arena heap
    package static let heapMaxSize: UInt64 = 64 << 20
    package static let heapInfoPrev: UInt64 = 0x8
    package static let heapInfoSize: UInt64 = 0x10
    package static let firstHeapChunks: UInt64 = 0x8D0
    package static let laterHeapChunks: UInt64 = 0x30

    // struct tcache_perthread_struct: u16 counts[64], then tcache_entry *entries[64]
    package static let tcacheBins = 64
    package static let tcacheChunkSize: UInt64 = 0x290
    package static let tcacheEntries: UInt64 = 128

    /// Safe-linking (glibc ≥ 2.32): a stored list pointer is XORed with its own address >> 12.
    @inline(__always)
    package static func reveal(_ stored: UInt64, at fieldAddress: UInt64) -> UInt64 { (fieldAddress >> 12) ^ stored }
}
