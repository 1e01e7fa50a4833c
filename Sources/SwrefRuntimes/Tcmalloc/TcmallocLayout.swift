import SwrefImages
import SwrefMemory
import SwrefSupport

/// gperftools tcmalloc 2.10 on x86_64 (src/common.h, span.h, pagemap.h, page_heap.h,
/// central_freelist.h, thread_cache.h, static_vars.h at tag gperftools-2.10), as built in Debian's
/// `libtcmalloc_minimal.so.4.5.10`. Offsets follow the declaration order; every one of them was
/// checked on a running process, and the walk checks them again against the target before trusting
/// what it reads.
public enum TcmallocLayout {
    // common.h
    @inlinable public static var pageShift: UInt64 { 13 }
    @inlinable public static var maxSize: UInt64 { 256 << 10 }
    @inlinable public static var maxSmallSize: UInt64 { 1024 }
    @inlinable public static var classSizesMax: Int { 128 }
    @inlinable public static var maxPages: UInt64 { 1 << (20 - 13) }
    /// Page numbers are below 2^(48 − 13): the pagemap's key width.
    @inlinable public static var pageNumberBits: UInt64 { 48 - 13 }

    // TCMalloc_PageMap2<35>: root_[2^17] of leaves of 2^18 Span pointers, then allocator_.
    @inlinable public static var leafBits: UInt64 { 18 }
    @inlinable public static var leafLength: Int { 1 << 18 }
    @inlinable public static var rootLength: Int { 1 << 17 }
    /// The PageHeap starts with its PackedCache<35> (2^16 words), then the pagemap.
    @inlinable public static var pagemapInPageHeap: UInt64 { 8 << 16 }
    @inlinable public static var pagemapAllocator: UInt64 { 8 << 17 }

    // struct Span
    @inlinable public static var spanStart: UInt64 { 0x00 }
    @inlinable public static var spanLength: UInt64 { 0x08 }
    @inlinable public static var spanNext: UInt64 { 0x10 }
    @inlinable public static var spanObjects: UInt64 { 0x20 }
    /// refcount:16, sizeclass:8, location:2, sample:1
    @inlinable public static var spanBits: UInt64 { 0x28 }
    @inlinable public static var spanRead: Int { 0x2c }
    @inlinable public static var inUse: UInt32 { 0 }

    // SizeMap: class_array_[2169], num_objects_to_move_[128] int32, class_to_size_[128] int32,
    // class_to_pages_[128] size_t, num_size_classes.
    public static let classArraySize = Int(((maxSize + 127 + (120 << 7)) >> 7) + 1)
    @inlinable public static var sizemapMoves: UInt64 { 0x87c }
    @inlinable public static var sizemapSizes: UInt64 { 0xa7c }
    @inlinable public static var sizemapPages: UInt64 { 0xc80 }
    @inlinable public static var sizemapClassCount: UInt64 { 0x1080 }
    @inlinable public static var sizemapBytes: Int { 0x1088 }

    // CentralFreeList (padded to 64 bytes): lock_, size_class_, empty_, nonempty_, num_spans_,
    // counter_, tc_slots_[64] {head, tail}, used_slots_, cache_size_, max_cache_size_.
    @inlinable public static var centralStride: UInt64 { 0x4c0 }
    @inlinable public static var centralSizeClass: UInt64 { 0x08 }
    public static let centralEmptyNext: UInt64 = 0x10 + spanNext
    public static let centralNonemptyNext: UInt64 = 0x40 + spanNext
    @inlinable public static var centralSlots: UInt64 { 0x80 }
    @inlinable public static var centralUsedSlots: UInt64 { 0x480 }
    @inlinable public static var centralCacheSize: UInt64 { 0x484 }
    @inlinable public static var centralMaxCacheSize: UInt64 { 0x488 }
    @inlinable public static var transferEntries: Int { 64 }

    // ThreadCache: FreeList list_[128] {list_, length_ u32, lowater_, max_length_, overages_, size_},
    // size_, max_size_, sampler_, tid_, in_setspecific_, next_, prev_.
    @inlinable public static var freeListStride: UInt64 { 0x20 }
    @inlinable public static var freeListLength: UInt64 { 0x08 }
    @inlinable public static var threadCacheNext: UInt64 { 0x1030 }
    @inlinable public static var threadCachePrev: UInt64 { 0x1038 }

    // Exported symbols
    public static let threadHeapsSymbol = "_ZN8tcmalloc11ThreadCache13thread_heaps_E"
    public static let initedSymbol = "_ZN8tcmalloc6Static7inited_E"
    public static let initStaticVarsSymbol = "_ZN8tcmalloc6Static14InitStaticVarsEv"
    public static let metaDataAllocSymbol = "_ZN8tcmalloc13MetaDataAllocEm"
    public static let versionSymbol = "tc_version"
    /// Only in the debug build (`MallocBlock::kMagicMalloc`).
    public static let debugMagicSymbol = "_ZN11MallocBlock12kMagicMallocE"

    /// The class_array_ index of a size (SizeMap::ClassIndex).
    public static func classIndex(_ size: UInt64) -> Int {
        size <= maxSmallSize ? Int((size &+ 7) >> 3) : Int((size &+ 127 &+ (120 << 7)) >> 7)
    }
}

/// The globals a walk starts from, found and checked.
public struct TcmallocRoots {
    public var sizemap: UInt64
    public var centralCache: UInt64
    public var centralStride: UInt64
    public var pageHeap: UInt64
    public var threadHeaps: UInt64
    /// class_to_size_, class_to_pages_ and num_objects_to_move_ for classes 0..<classCount.
    public var sizes: [UInt64]
    public var pages: [UInt64]
    public var moves: [Int]
    public var classCount: Int { sizes.count }
    public var pagemapRoot: UInt64 { pageHeap &+ TcmallocLayout.pagemapInPageHeap }

    /// "gperftools 2.10": the string `tc_version` returns.
    public static func version(image: LoadedImage, source: MemorySource) -> String? {
        guard let operands = RipOperands(function: TcmallocLayout.versionSymbol, in: image, source: source) else { return nil }
        for target in operands.leaTargets.reversed() {
            if let text = source.readCString(target, limit: 64), text.hasPrefix("gperftools ") { return text }
        }
        return nil
    }

    /// The roots, or why they were not found. `Static::sizemap_`, `central_cache_` and `pageheap_`
    /// are hidden; `InitStaticVars` (exported) sets all three up, so its RIP-relative operands
    /// name them. Each candidate must pass its structure's checks.
    public static func find(image: LoadedImage, source: MemorySource) -> Result<TcmallocRoots, TcmallocError> {
        if let inited = image.address(ofSymbol: TcmallocLayout.initedSymbol), let byte = source.readBytes(inited, count: 1), byte[0] == 0 {
            return .failure(TcmallocError("not initialised yet (Static::inited_ is false)"))
        }
        guard let threadHeaps = image.address(ofSymbol: TcmallocLayout.threadHeapsSymbol) else {
            return .failure(TcmallocError("no ThreadCache::thread_heaps_ symbol"))
        }
        guard let operands = RipOperands(function: TcmallocLayout.initStaticVarsSymbol, in: image, source: source) else {
            return .failure(TcmallocError("Static::InitStaticVars could not be read"))
        }
        // Targets inside the library's writable data only.
        let candidates = Array(Set(operands.leaTargets.filter { target in
            source.memoryMap.regions.contains { $0.writable && $0.start <= target && target < $0.end }
        })).sorted()
        guard let sizemap = candidates.lazy.compactMap({ checkSizeMap($0, source: source) }).first else {
            return .failure(TcmallocError("no operand of InitStaticVars is a SizeMap (class sizes 0, 8, 16, … ascending)"))
        }
        let strides = Set(operands.addImmediates + [TcmallocLayout.centralStride]).filter { $0 >= 0x48c && $0 <= 0x1000 }.sorted()
        var central: (UInt64, UInt64)? = nil
        search: for candidate in candidates where candidate != sizemap.address {
            for stride in strides where checkCentralCache(candidate, stride: stride, classCount: sizemap.sizes.count, source: source) {
                central = (candidate, stride)
                break search
            }
        }
        guard let central else {
            return .failure(TcmallocError("no operand of InitStaticVars is the central cache (size_class_ of entry i is i)"))
        }
        let metaDataAlloc = image.address(ofSymbol: TcmallocLayout.metaDataAllocSymbol)
        guard let pageHeap = candidates.first(where: { checkPageHeap($0, metaDataAlloc: metaDataAlloc, image: image, source: source) }) else {
            return .failure(TcmallocError("no operand of InitStaticVars is the PageHeap (its pagemap's allocator_ is MetaDataAlloc)"))
        }
        return .success(TcmallocRoots(sizemap: sizemap.address, centralCache: central.0, centralStride: central.1, pageHeap: pageHeap,
                                      threadHeaps: threadHeaps, sizes: sizemap.sizes, pages: sizemap.pages, moves: sizemap.moves))
    }

    /// A SizeMap: 2–128 classes; class 0 is 0 bytes, class 1 is 8; sizes ascend in steps of 8 up
    /// to kMaxSize; each class's pages hold at least one object; class_array_ maps each class's size
    /// back to the class.
    public static func checkSizeMap(_ address: UInt64, source: MemorySource) -> (address: UInt64, sizes: [UInt64], pages: [UInt64], moves: [Int])? {
        guard let bytes = source.readBytes(address, count: TcmallocLayout.sizemapBytes) else { return nil }
        func word(_ offset: UInt64) -> UInt64 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: Int(offset), as: UInt64.self) } }
        func int32(_ offset: UInt64) -> Int32 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: Int(offset), as: Int32.self) } }
        let count = word(TcmallocLayout.sizemapClassCount)
        guard count >= 2 && count <= UInt64(TcmallocLayout.classSizesMax) else { return nil }
        var sizes: [UInt64] = [], pages: [UInt64] = [], moves: [Int] = []
        for cl in 0..<Int(count) {
            let size = int32(TcmallocLayout.sizemapSizes &+ UInt64(cl * 4))
            let pageCount = word(TcmallocLayout.sizemapPages &+ UInt64(cl * 8))
            let move = int32(TcmallocLayout.sizemapMoves &+ UInt64(cl * 4))
            guard size >= 0, UInt64(size) <= TcmallocLayout.maxSize, size % 8 == 0 else { return nil }
            if cl == 0 {
                guard size == 0 else { return nil }
            } else {
                guard UInt64(size) > sizes[cl - 1], pageCount >= 1, pageCount <= TcmallocLayout.maxPages,
                      pageCount << TcmallocLayout.pageShift >= UInt64(size), move >= 1, move <= 1 << 16 else { return nil }
                if cl == 1 && size != 8 { return nil }
                let index = TcmallocLayout.classIndex(UInt64(size))
                guard index < TcmallocLayout.classArraySize, Int(bytes[index]) == cl else { return nil }
            }
            sizes.append(UInt64(size))
            pages.append(pageCount)
            moves.append(Int(move))
        }
        return (address, sizes, pages, moves)
    }

    /// The central cache: entry i's size_class_ is i, its transfer cache holds at most 64 slots,
    /// and its span lists' headers are linked (a list is never NULL, an empty one points to itself).
    public static func checkCentralCache(_ address: UInt64, stride: UInt64, classCount: Int, source: MemorySource) -> Bool {
        guard let bytes = source.readBytes(address, count: Int(stride) * classCount) else { return false }
        return bytes.withUnsafeBytes { raw in
            for cl in 0..<classCount {
                let base = cl * Int(stride)
                let sizeClass = raw.loadUnaligned(fromByteOffset: base + Int(TcmallocLayout.centralSizeClass), as: UInt64.self)
                let used = raw.loadUnaligned(fromByteOffset: base + Int(TcmallocLayout.centralUsedSlots), as: Int32.self)
                let cacheSize = raw.loadUnaligned(fromByteOffset: base + Int(TcmallocLayout.centralCacheSize), as: Int32.self)
                let maxCacheSize = raw.loadUnaligned(fromByteOffset: base + Int(TcmallocLayout.centralMaxCacheSize), as: Int32.self)
                let empty = raw.loadUnaligned(fromByteOffset: base + Int(TcmallocLayout.centralEmptyNext), as: UInt64.self)
                let nonempty = raw.loadUnaligned(fromByteOffset: base + Int(TcmallocLayout.centralNonemptyNext), as: UInt64.self)
                guard sizeClass == UInt64(cl), used >= 0, used <= cacheSize, cacheSize <= maxCacheSize,
                      maxCacheSize <= Int32(TcmallocLayout.transferEntries), empty != 0, nonempty != 0 else { return false }
            }
            return true
        }
    }

    /// The PageHeap: its pagemap's allocator_ is MetaDataAlloc (or, without that symbol, code in
    /// the library), and the first root entry in use points at readable memory.
    public static func checkPageHeap(_ address: UInt64, metaDataAlloc: UInt64?, image: LoadedImage, source: MemorySource) -> Bool {
        let root = address &+ TcmallocLayout.pagemapInPageHeap
        guard let allocator = source.readWord(root &+ TcmallocLayout.pagemapAllocator) else { return false }
        if let metaDataAlloc {
            guard allocator == metaDataAlloc else { return false }
        } else {
            guard allocator >= image.start && allocator < image.end else { return false }
        }
        return true
    }
}

public struct TcmallocError: Error {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}
