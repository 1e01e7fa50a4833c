import SwrefImages
import SwrefMemory
import SwrefSupport

/// glibc 2.36 malloc constants on x86_64 (malloc/malloc.c, malloc/arena.c).
public enum MallocLayout {
    @inlinable public static var prevInUse: UInt64 { 0x1 }
    @inlinable public static var isMmapped: UInt64 { 0x2 }
    @inlinable public static var nonMainArena: UInt64 { 0x4 }
    public static let sizeMask: UInt64 = ~0x7
    @inlinable public static var minChunkSize: UInt64 { 32 }
    /// The user pointer of a chunk is this far past the chunk header.
    @inlinable public static var chunkHeader: UInt64 { 16 }

    /// Whether `size` (flags masked off) can be a chunk's with `room` bytes left to the heap's end:
    /// at least the smallest chunk, on the 16-byte grain, not past the end. Compared with what is
    /// left, never added: sizes come from target memory.
    @inlinable @inline(__always)
    public static func isSane(size: UInt64, room: UInt64) -> Bool {
        size >= minChunkSize && size & 0xf == 0 && size <= room
    }

    // struct malloc_state
    @inlinable public static var arenaFastbins: UInt64 { 0x10 }
    @inlinable public static var fastbinCount: Int { 10 }
    @inlinable public static var arenaTop: UInt64 { 0x60 }
    @inlinable public static var arenaNext: UInt64 { 0x870 }

    // struct heap_info at the start of each 64 MiB-aligned thread-arena heap
    @inlinable public static var heapMaxSize: UInt64 { 64 << 20 }
    @inlinable public static var heapInfoPrev: UInt64 { 0x8 }
    @inlinable public static var heapInfoSize: UInt64 { 0x10 }
    @inlinable public static var firstHeapChunks: UInt64 { 0x8D0 }
    @inlinable public static var laterHeapChunks: UInt64 { 0x30 }

    // struct tcache_perthread_struct: u16 counts[64], then tcache_entry *entries[64]
    @inlinable public static var tcacheBins: Int { 64 }
    @inlinable public static var tcacheChunkSize: UInt64 { 0x290 }
    @inlinable public static var tcacheEntries: UInt64 { 128 }

    /// Safe-linking (glibc ≥ 2.32): a stored list pointer is XORed with its own address >> 12.
    @inline(__always)
    public static func reveal(_ stored: UInt64, at fieldAddress: UInt64) -> UInt64 { (fieldAddress >> 12) ^ stored }
}
