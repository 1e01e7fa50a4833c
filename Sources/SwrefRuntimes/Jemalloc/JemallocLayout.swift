import SwrefImages
import SwrefMemory

import SwrefSupport

/// jemalloc 5.3.0 on x86_64 as Debian bookworm builds it (`libjemalloc2`/`libjemalloc-dev` 5.3.0-1:
/// stats and prof on, debug off, LG_VADDR 48, LG_PAGE 12, a two-level rtree with compact leaves,
/// 232 size classes of which 36 are small, 73 tcache bins at most). The shared library and the
/// static archive come from the same build and share this layout. Offsets were taken with
/// `offsetof` against the 5.3.0 headers and checked against a live walk (field notes, allocators §1).
package enum JemallocLayout {
    /// The version this layout is for; a build that says otherwise is not walked.
    package static let versionPrefix = "5.3."

    // Size classes (sc.h): SC_NSIZES, SC_NBINS.
    package static let sizeClassCount = 232
    package static let smallClassCount = 36
    /// index2size[0...4] of every build with LG_QUANTUM 4 and LG_TINY_MIN 3.
    package static let firstSizes: [UInt64] = [8, 16, 32, 48, 64]
    package static let pageMask: UInt64 = 0xfff

    // emap_t = rtree_t { base_t *base; malloc_mutex_t init_lock; rtree_node_elm_t root[1 << 18] }
    package static let rtreeRoot: UInt64 = 0x78
    package static let rootEntries = 1 << 18
    package static let leafEntries = 1 << 18
    /// Address bits above the leaf's: the root index is `address >> 30`, the leaf index `(address >> 12) & 0x3ffff`.
    package static let rootShift: UInt64 = 30
    package static let leafShift: UInt64 = 12
    package static let pageSize: UInt64 = 1 << 12

    // Compact rtree leaf element: szind in bits 63…48, the edata pointer in 47…7, extent state in
    // 4…2, is_head in 1, slab in 0.
    package static let leafEdataMask: UInt64 = 0x0000_ffff_ffff_ff80
    package static let leafSzindShift: UInt64 = 48
    package static let leafStateShift: UInt64 = 2
    package static let stateMask: UInt64 = 0x7
    package static let stateActive: UInt64 = 0

    // edata_t (128 bytes, 128-aligned).
    package static let edataSize = 0x80
    package static let edataAddress = 0x08
    package static let edataSizeField = 0x10
    package static let edataBitmap = 0x40
    package static let bitmapWords = 8
    /// Regions a slab can have: the flat bitmap's bits.
    package static let maxRegions = 512
    // e_bits: arena_ind[0:12) slab[12] committed[13] pai[14] zeroed[15] guarded[16] state[17:20)
    // szind[20:28) nfree[28:38) binshard[38:44) is_head[44]
    package static let bitsSlabShift: UInt64 = 12
    package static let bitsStateShift: UInt64 = 17
    package static let bitsSzindShift: UInt64 = 20
    package static let bitsSzindMask: UInt64 = 0xff
    package static let bitsNfreeShift: UInt64 = 28
    package static let bitsNfreeMask: UInt64 = 0x3ff

    // base_t starts with ehooks_t { unsigned ind; atomic_p_t ptr }.
    package static let baseIndex: UInt64 = 0x0
    package static let baseHooks: UInt64 = 0x8

    // arena_t
    package static let arenaLimit = 4096 // MALLOCX_ARENA_LIMIT: the size of je_arenas
    package static let arenaDescriptors: UInt64 = 0x28a0 // cache_bin_array_descriptor_ql (ql head: first*)
    package static let arenaIndex: UInt64 = 0x13450
    package static let arenaBase: UInt64 = 0x13458
    // base_t.blocks: a chain of base_block_t { size_t size (the whole mapping); base_block_t *next; … }
    package static let baseBlocks: UInt64 = 0xa0

    // cache_bin_array_descriptor_t, embedded at tcache_slow_t + 0x10: { link {next, prev}; cache_bin_t *bins }.
    package static let descriptorNext: UInt64 = 0x0
    package static let descriptorBins: UInt64 = 0x10
    /// tcache_slow_t.dyn_alloc (the cache-bin stacks, an allocation of jemalloc's own), seen from the descriptor.
    package static let descriptorDynAlloc: UInt64 = 0xa0 - 0x10
    /// tcache_slow_t.tcache, seen from the descriptor: its bins are at tcache + 8.
    package static let descriptorTcache: UInt64 = 0xa8 - 0x10
    package static let tcacheBins: UInt64 = 0x8

    // cache_bin_t { void **stack_head; u64 nrequests; u16 low_water, full, empty }: the cached
    // pointers are stack_head[0 ..< (empty − (u16)stack_head) / 8].
    package static let cacheBinSize = 0x18
    package static let cacheBinEmpty = 0x14
    package static let tcacheBinCount = 73 // TCACHE_NBINS_MAX; unused bins are empty
}
