import SwrefImages
import SwrefMemory
import SwrefSupport

/// jemalloc 5.3.0 on x86_64 as Debian bookworm builds it (`libjemalloc2`/`libjemalloc-dev` 5.3.0-1:
/// stats and prof on, debug off, LG_VADDR 48, LG_PAGE 12, a two-level rtree with compact leaves,
/// 232 size classes of which 36 are small, 73 tcache bins at most). The shared library and the
/// static archive come from the same build and share this layout. Offsets were taken with
/// `offsetof` against the 5.3.0 headers and checked against a live walk (field notes, allocators §1).
public enum JemallocLayout {
    /// The version this layout is for; a build that says otherwise is not walked.
    public static let versionPrefix = "5.3."

    // Size classes (sc.h): SC_NSIZES, SC_NBINS.
    @inlinable public static var sizeClassCount: Int { 232 }
    @inlinable public static var smallClassCount: Int { 36 }
    /// index2size[0...4] of every build with LG_QUANTUM 4 and LG_TINY_MIN 3.
    public static let firstSizes: [UInt64] = [8, 16, 32, 48, 64]
    @inlinable public static var pageMask: UInt64 { 0xfff }

    // emap_t = rtree_t { base_t *base; malloc_mutex_t init_lock; rtree_node_elm_t root[1 << 18] }
    @inlinable public static var rtreeRoot: UInt64 { 0x78 }
    @inlinable public static var rootEntries: Int { 1 << 18 }
    @inlinable public static var leafEntries: Int { 1 << 18 }
    /// Address bits above the leaf's: the root index is `address >> 30`, the leaf index `(address >> 12) & 0x3ffff`.
    @inlinable public static var rootShift: UInt64 { 30 }
    @inlinable public static var leafShift: UInt64 { 12 }
    @inlinable public static var pageSize: UInt64 { 1 << 12 }

    // Compact rtree leaf element: szind in bits 63…48, the edata pointer in 47…7, extent state in
    // 4…2, is_head in 1, slab in 0.
    @inlinable public static var leafEdataMask: UInt64 { 0x0000_ffff_ffff_ff80 }
    @inlinable public static var leafSzindShift: UInt64 { 48 }
    @inlinable public static var leafStateShift: UInt64 { 2 }
    @inlinable public static var stateMask: UInt64 { 0x7 }
    @inlinable public static var stateActive: UInt64 { 0 }

    // edata_t (128 bytes, 128-aligned).
    @inlinable public static var edataSize: Int { 0x80 }
    @inlinable public static var edataAddress: Int { 0x08 }
    @inlinable public static var edataSizeField: Int { 0x10 }
    @inlinable public static var edataBitmap: Int { 0x40 }
    @inlinable public static var bitmapWords: Int { 8 }
    /// Regions a slab can have: the flat bitmap's bits.
    @inlinable public static var maxRegions: Int { 512 }
    // e_bits: arena_ind[0:12) slab[12] committed[13] pai[14] zeroed[15] guarded[16] state[17:20)
    // szind[20:28) nfree[28:38) binshard[38:44) is_head[44]
    @inlinable public static var bitsSlabShift: UInt64 { 12 }
    @inlinable public static var bitsStateShift: UInt64 { 17 }
    @inlinable public static var bitsSzindShift: UInt64 { 20 }
    @inlinable public static var bitsSzindMask: UInt64 { 0xff }
    @inlinable public static var bitsNfreeShift: UInt64 { 28 }
    @inlinable public static var bitsNfreeMask: UInt64 { 0x3ff }

    // base_t starts with ehooks_t { unsigned ind; atomic_p_t ptr }.
    @inlinable public static var baseIndex: UInt64 { 0x0 }
    @inlinable public static var baseHooks: UInt64 { 0x8 }

    // arena_t
    @inlinable public static var arenaLimit: Int { 4096 } // MALLOCX_ARENA_LIMIT: the size of je_arenas
    @inlinable public static var arenaDescriptors: UInt64 { 0x28a0 } // cache_bin_array_descriptor_ql (ql head: first*)
    @inlinable public static var arenaIndex: UInt64 { 0x13450 }
    @inlinable public static var arenaBase: UInt64 { 0x13458 }
    // base_t.blocks: a chain of base_block_t { size_t size (the whole mapping); base_block_t *next; … }
    @inlinable public static var baseBlocks: UInt64 { 0xa0 }

    // cache_bin_array_descriptor_t, embedded at tcache_slow_t + 0x10: { link {next, prev}; cache_bin_t *bins }.
    @inlinable public static var descriptorNext: UInt64 { 0x0 }
    @inlinable public static var descriptorBins: UInt64 { 0x10 }
    /// tcache_slow_t.dyn_alloc (the cache-bin stacks, an allocation of jemalloc's own), seen from the descriptor.
    @inlinable public static var descriptorDynAlloc: UInt64 { 0xa0 - 0x10 }
    /// tcache_slow_t.tcache, seen from the descriptor: its bins are at tcache + 8.
    @inlinable public static var descriptorTcache: UInt64 { 0xa8 - 0x10 }
    @inlinable public static var tcacheBins: UInt64 { 0x8 }

    // cache_bin_t { void **stack_head; u64 nrequests; u16 low_water, full, empty }: the cached
    // pointers are stack_head[0 ..< (empty − (u16)stack_head) / 8].
    @inlinable public static var cacheBinSize: Int { 0x18 }
    @inlinable public static var cacheBinEmpty: Int { 0x14 }
    @inlinable public static var tcacheBinCount: Int { 73 } // TCACHE_NBINS_MAX; unused bins are empty
}
