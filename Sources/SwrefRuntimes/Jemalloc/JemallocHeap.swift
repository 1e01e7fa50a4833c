import SwrefImages
import SwrefMemory
import SwrefSupport

/// The blocks jemalloc 5.3 has handed out, found from outside by walking its extent map.
///
/// Every extent jemalloc manages is registered in a radix tree (`je_arena_emap_global`), page by
/// page. An active slab extent holds regions of one size class, allocated where its bitmap bit is
/// clear; an active large extent is one block. Blocks sitting in a thread cache are free to the
/// program but allocated to the extent map, so every pointer in every tcache (found through each
/// arena's list of cache-bin descriptors, which needs no registers and works for cores) is taken
/// out again, and so are the tcaches' own stack arrays. Sizes are usable sizes, as jemalloc's
/// `stats.allocated` counts them.
public struct JemallocHeap: HeapWalker {
    public let source: MemorySource
    public let image: LoadedImage
    public let roots: Result<JemallocRoots, JemallocFailure>

    /// jemalloc is the target's when `libjemalloc.so*` is mapped (linked, or LD_PRELOADed), or
    /// when another image (the executable, for a static link) defines `malloc_usable_size` whose
    /// code addresses jemalloc's size table, or has jemalloc's internal symbols. Code linked into
    /// the executable comes first: its malloc is the one the process calls.
    public static func recognise(source: MemorySource, images: ImageList) -> JemallocHeap? {
        for image in images.images {
            let name = image.name
            if name.hasPrefix("libjemalloc.so") || name.hasPrefix("libc.so") || name.hasPrefix("ld-linux")
                || name.hasPrefix("libswift") { continue }
            let hasSymbols = image.file.symbol(named: "je_arena_emap_global") != nil
            // A stripped executable that exports no allocator function may still carry jemalloc
            // (linked statically, with the Swift runtime too): its version string says so.
            let exportsAllocator = image.file.symbol(named: "malloc_usable_size")?.isFunction == true
            let strippedJemalloc = !hasSymbols && !exportsAllocator && !name.contains(".so")
                && image.file.symbol(named: "malloc") == nil && JemallocRoots.version(in: image, source: source) != nil
            guard hasSymbols || exportsAllocator || strippedJemalloc else { continue }
            let roots = JemallocRoots.find(in: image, source: source)
            if case .failure(let failure) = roots, !failure.isJemalloc && !hasSymbols && !strippedJemalloc { continue }
            return JemallocHeap(source: source, image: image, roots: roots)
        }
        if let library = images.images.first(where: { $0.name.hasPrefix("libjemalloc.so") }) {
            return JemallocHeap(source: source, image: library, roots: JemallocRoots.find(in: library, source: source))
        }
        return nil
    }

    public func walk() -> HeapBlocks {
        switch roots {
        case .failure(let failure):
            var blocks = HeapBlocks(allocator: "jemalloc", overhead: 0, coverage: .unread("jemalloc in \(image.name): \(failure.reason)"))
            blocks.notes = ["jemalloc in \(image.name): \(failure.reason); its heap was not walked "
                            + "(jemalloc leaves freed blocks as they were: a scan for Swift headers counts freed objects too)"]
            return blocks
        case .success(let roots):
            var walk = JemallocWalk(source: source, roots: roots)
            var blocks = walk.run(imageName: image.name)
            // A shared library's data (the map's root, bins' current slabs) points at jemalloc's
            // metadata and free regions; an executable's is the program's own too, and stays a root.
            if image.name.hasPrefix("libjemalloc") {
                blocks.ownedRanges += image.writableRanges
            }
            return blocks
        }
    }
}

/// Reads ranges of the target without a copy when the source holds them locally (a core, a
/// snapshot), into a scratch buffer otherwise.
private struct RangeReader {
    let source: MemorySource
    private var start: UInt64 = 1
    private var end: UInt64 = 0
    private var base: UnsafeRawPointer? = nil
    private var scratch: UnsafeMutableRawPointer
    private let scratchSize: Int

    init(source: MemorySource, scratchSize: Int) {
        self.source = source
        self.scratchSize = scratchSize
        scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchSize, alignment: 16)
    }

    func deallocate() { scratch.deallocate() }

    /// `count` bytes at `address` (at most the scratch size), valid until the next call.
    mutating func bytes(_ address: UInt64, count: Int) -> UnsafeRawPointer? {
        guard count <= scratchSize, address <= UInt64.max - UInt64(count) else { return nil }
        if let pointer = local(address, count) { return pointer }
        if let region = source.localBytes(containing: address), let pointer = region.bytes.baseAddress {
            start = region.start
            end = region.start &+ UInt64(region.bytes.count)
            base = UnsafeRawPointer(pointer)
            if let pointer = local(address, count) { return pointer }
        }
        return source.read(address, count: count, into: scratch) ? UnsafeRawPointer(scratch) : nil
    }

    @inline(__always)
    private func local(_ address: UInt64, _ count: Int) -> UnsafeRawPointer? {
        guard let base, address >= start, address < end, end - address >= UInt64(count) else { return nil }
        return base + Int(address - start)
    }
}

private struct JemallocWalk {
    let source: MemorySource
    let roots: JemallocRoots
    var blocks = BlockAddresses()
    /// Usable sizes are multiples of 8 (the 8-byte class), the rest of 16.
    var sizes = BlockSizes(shift: 3)
    var notes: [String] = []
    var leaves = 0
    var unreadableLeaves = 0
    var extents = 0
    var slabs = 0
    var large = 0
    /// Extents whose edata could not be read or disagreed with the map (skipped).
    var damaged = 0
    var firstDamage: String? = nil
    /// The pages the extent map names, as merged ranges.
    var owned: [Range<UInt64>] = []
    /// Each tcache's stack array: a live block of jemalloc's own.
    var tcacheStacks: [UInt64] = []

    init(source: MemorySource, roots: JemallocRoots) {
        self.source = source
        self.roots = roots
        // Room for a block per 64 bytes of writable anonymous memory, up to 32 Mi blocks, as the
        // glibc walk reserves: doubling arrays of millions of rows costs more than the walk.
        // Untouched capacity is only address space.
        let anonymous = source.memoryMap.regions.filter { $0.writable && !$0.isFileBacked }
            .reduce(UInt64(0)) { sum, region in sum.addingReportingOverflow(region.size).overflow ? .max : sum + region.size }
        let estimate = Int(min(anonymous / 64, 32 << 20))
        blocks.reserveCapacity(estimate)
        sizes.reserveCapacity(estimate)
    }

    mutating func run(imageName: String) -> HeapBlocks {
        let version = roots.version.map { String($0.prefix { $0 != "-" }) } ?? "5.3 layout"
        var result = HeapBlocks(allocator: "jemalloc \(version)", overhead: 0)
        walkExtentMap()
        let (cached, internalBlocks, descriptors, notFound) = subtractTcaches()

        // Already in address order: the map is walked in page order, an extent's blocks lie in
        // [its first page, its end), and a page inside the extent before it is skipped.
        result.addresses = blocks
        result.sizes = sizes
        result.counters = ["arenas": roots.arenas?.count ?? 0, "extents": extents, "slabs": slabs, "large": large,
                           "tcache": cached, "internal": internalBlocks, "tcaches": descriptors]
        if let firstDamage { notes.append(firstDamage) }
        if notFound > 0 { notes.append("jemalloc: \(notFound) tcache pointers are not allocated regions (a heap that changed while read?)") }
        result.notes = notes
        result.ownedRanges = owned + baseBlocks()
        result.internalBlocks = tcacheStacks
        result.internalName = "jemalloc tcache stacks"

        if leaves == 0 && unreadableLeaves > 0 {
            result.coverage = .unread("jemalloc in \(imageName): none of the extent map's \(unreadableLeaves) leaves could be read")
        } else if leaves == 0 || (extents == 0 && damaged == 0) {
            result.coverage = .unread("jemalloc in \(imageName): the extent map holds no active extents")
        } else if damaged >= 4 && damaged > extents {
            result.coverage = .unread("jemalloc in \(imageName): \(damaged) of \(damaged + extents) extents disagree with the extent map (not the 5.3.0 layout?)")
            result.addresses = BlockAddresses()
            result.sizes = BlockSizes(shift: 3)
        } else {
            var problems: [String] = []
            if unreadableLeaves > 0 { problems.append("\(unreadableLeaves) extent-map leaves unreadable") }
            if damaged > 0 { problems.append("\(damaged) extents damaged or unreadable") }
            if roots.arenas == nil { problems.append("the arena array was not found, so blocks in thread caches count as live") }
            if notFound > 16 && notFound * 2 > cached { problems.append("\(notFound) of \(cached) thread-cached pointers match no allocated region") }
            if !problems.isEmpty { result.coverage = .partial(problems.joined(separator: "; ")) }
        }
        return result
    }

    /// Notes a page the extent map names (any state): jemalloc's, whether a block is live there or not.
    @inline(__always)
    mutating func own(page: UInt64) {
        if let last = owned.last, last.upperBound == page {
            owned[owned.count - 1] = last.lowerBound..<(page &+ JemallocLayout.pageSize)
        } else if page <= UInt64.max - JemallocLayout.pageSize {
            owned.append(page..<(page &+ JemallocLayout.pageSize))
        }
    }

    /// Each arena's base blocks: jemalloc's metadata (edata records, the map's leaves), mapped
    /// apart from the extents and named by no map entry — their edata point at the first region
    /// of every slab, so scanned as a root they would keep any object there alive.
    func baseBlocks() -> [Range<UInt64>] {
        var ranges: [Range<UInt64>] = []
        for arena in roots.arenas ?? [] {
            guard let base = source.readWord(arena.address &+ JemallocLayout.arenaBase), base != 0 else { continue }
            var block = source.readWord(base &+ JemallocLayout.baseBlocks) ?? 0
            var hops = 0
            while block != 0 && hops < 1 << 16, let size = source.readWord(block) {
                let (end, overflow) = block.addingReportingOverflow(size)
                if overflow || size == 0 || size > 1 << 40 { break }
                ranges.append(block..<end)
                block = source.readWord(block &+ 8) ?? 0
                hops += 1
            }
        }
        return ranges
    }

    mutating func damage(_ why: @autoclosure () -> String) {
        damaged += 1
        if firstDamage == nil { firstDamage = "jemalloc: " + why() }
    }

    /// Every leaf of the two-level map, in address order; each extent once, at its first page.
    mutating func walkExtentMap() {
        let leafBytes = JemallocLayout.leafEntries * 8
        var rootReader = RangeReader(source: source, scratchSize: JemallocLayout.rootEntries * 8)
        var leafReader = RangeReader(source: source, scratchSize: leafBytes)
        var edataReader = RangeReader(source: source, scratchSize: JemallocLayout.edataSize)
        defer { rootReader.deallocate(); leafReader.deallocate(); edataReader.deallocate() }
        guard let root = rootReader.bytes(roots.emap &+ JemallocLayout.rtreeRoot, count: JemallocLayout.rootEntries * 8) else {
            notes.append("jemalloc: the extent map's root could not be read")
            return
        }
        // A leaf covers 1 GiB of address space; one over space nothing is mapped in holds no
        // active extent (their memory is mapped), so it is not read. This also bounds the work a
        // damaged root can cause by the target's mappings.
        var mapped = [Bool](repeating: false, count: JemallocLayout.rootEntries)
        for region in source.memoryMap.regions where region.end > region.start {
            let first = region.start >> JemallocLayout.rootShift, last = (region.end - 1) >> JemallocLayout.rootShift
            guard first < UInt64(JemallocLayout.rootEntries) else { continue }
            for index in Int(first)...Int(min(last, UInt64(JemallocLayout.rootEntries - 1))) { mapped[index] = true }
        }
        // Leaf pointers, copied: the leaf reader may replace the buffer they sit in.
        var leafPointers: [(index: Int, address: UInt64)] = []
        for index in 0..<JemallocLayout.rootEntries where mapped[index] {
            let leaf = root.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)
            if leaf != 0 { leafPointers.append((index, leaf)) }
        }
        var coveredUntil: UInt64 = 0
        var lastEdata: UInt64 = 0
        for (rootIndex, leafAddress) in leafPointers {
            guard let leaf = leafReader.bytes(leafAddress, count: leafBytes) else {
                unreadableLeaves += 1
                continue
            }
            leaves += 1
            let leafBase = UInt64(rootIndex) << JemallocLayout.rootShift
            for leafIndex in 0..<JemallocLayout.leafEntries {
                let bits = leaf.loadUnaligned(fromByteOffset: leafIndex * 8, as: UInt64.self)
                if bits != 0 { own(page: leafBase | UInt64(leafIndex) << JemallocLayout.leafShift) }
                if bits == 0 || (bits >> JemallocLayout.leafStateShift) & JemallocLayout.stateMask != JemallocLayout.stateActive { continue }
                let edata = bits & JemallocLayout.leafEdataMask
                if edata == lastEdata || edata == 0 { continue }
                let page = leafBase | UInt64(leafIndex) << JemallocLayout.leafShift
                if page < coveredUntil {
                    damage("extent map entry at page 0x\(String(page, radix: 16)) lies inside the extent before it")
                    continue
                }
                lastEdata = edata
                guard let record = edataReader.bytes(edata, count: JemallocLayout.edataSize) else {
                    damage("edata at 0x\(String(edata, radix: 16)) unreadable")
                    continue
                }
                if let end = addExtent(record, bits: bits, page: page, edata: edata, leaf: leaf, leafIndex: leafIndex) { coveredUntil = end }
            }
        }
    }

    /// The blocks of one active extent; returns where the extent ends. The map registers an
    /// extent's last page too (every page of a slab): that entry must name the same edata, which
    /// checks the size the edata gives before anything is taken from it.
    mutating func addExtent(_ record: UnsafeRawPointer, bits leafBits: UInt64, page: UInt64, edata: UInt64,
                            leaf: UnsafeRawPointer, leafIndex: Int) -> UInt64? {
        let eBits = record.loadUnaligned(as: UInt64.self)
        let address = record.loadUnaligned(fromByteOffset: JemallocLayout.edataAddress, as: UInt64.self)
        let size = record.loadUnaligned(fromByteOffset: JemallocLayout.edataSizeField, as: UInt64.self) & ~JemallocLayout.pageMask
        let szind = Int(truncatingIfNeeded: leafBits >> JemallocLayout.leafSzindShift)
        let slab = leafBits & 1 == 1
        guard (eBits >> JemallocLayout.bitsStateShift) & JemallocLayout.stateMask == JemallocLayout.stateActive,
              Int((eBits >> JemallocLayout.bitsSzindShift) & JemallocLayout.bitsSzindMask) == szind,
              (eBits >> JemallocLayout.bitsSlabShift) & 1 == leafBits & 1,
              address & ~JemallocLayout.pageMask == page, size > 0 else {
            damage("edata at 0x\(String(edata, radix: 16)) disagrees with the extent map (bits 0x\(String(eBits, radix: 16)))")
            return nil
        }
        let (end, overflow) = page.addingReportingOverflow(size)
        guard !overflow else { damage("edata at 0x\(String(edata, radix: 16)) has a bad size"); return nil }
        let pages = size >> JemallocLayout.leafShift
        if pages <= UInt64(JemallocLayout.leafEntries - leafIndex) {
            let last = leaf.loadUnaligned(fromByteOffset: (leafIndex + Int(pages) - 1) * 8, as: UInt64.self)
            guard last & JemallocLayout.leafEdataMask == edata else {
                damage("edata at 0x\(String(edata, radix: 16)): the map does not name it at its last page (size 0x\(String(size, radix: 16)))")
                return nil
            }
        }
        if slab {
            guard szind < JemallocLayout.smallClassCount, address == page else {
                damage("slab edata at 0x\(String(edata, radix: 16)) has a bad size class or address")
                return nil
            }
            let regionSize = roots.sizes[szind]
            let regions = size / regionSize
            guard regions >= 1, regions <= UInt64(JemallocLayout.maxRegions) else {
                damage("slab at 0x\(String(address, radix: 16)) has \(regions) regions")
                return nil
            }
            let count = Int(regions)
            let groups = (count + 63) >> 6
            var free = 0
            for group in 0..<groups {
                let word = record.loadUnaligned(fromByteOffset: JemallocLayout.edataBitmap + group * 8, as: UInt64.self)
                let used = count - group * 64
                let mask: UInt64 = used >= 64 ? .max : (UInt64(1) << UInt64(used)) &- 1
                free += (word & mask).nonzeroBitCount
            }
            let nfree = Int((eBits >> JemallocLayout.bitsNfreeShift) & JemallocLayout.bitsNfreeMask)
            guard free == nfree else {
                damage("slab at 0x\(String(address, radix: 16)): \(free) free bits but nfree \(nfree)")
                return nil
            }
            // Clear bits are allocated regions.
            for group in 0..<groups {
                let word = record.loadUnaligned(fromByteOffset: JemallocLayout.edataBitmap + group * 8, as: UInt64.self)
                let used = count - group * 64
                let mask: UInt64 = used >= 64 ? .max : (UInt64(1) << UInt64(used)) &- 1
                var allocated = ~word & mask
                let groupStart = address &+ UInt64(group * 64) &* regionSize
                while allocated != 0 {
                    let bit = UInt64(allocated.trailingZeroBitCount)
                    blocks.append(groupStart &+ bit &* regionSize)
                    sizes.append(regionSize)
                    allocated &= allocated &- 1
                }
            }
            slabs += 1
        } else {
            // A large extent is its usable size plus, in cache-oblivious builds, one page of slack.
            guard szind >= JemallocLayout.smallClassCount, szind < JemallocLayout.sizeClassCount,
                  roots.sizes[szind] <= size, size - roots.sizes[szind] <= JemallocLayout.pageMask + 1,
                  address &- page < size - roots.sizes[szind] || address == page else {
                damage("large edata at 0x\(String(edata, radix: 16)) has a bad size class")
                return nil
            }
            blocks.append(address)
            sizes.append(roots.sizes[szind])
            large += 1
        }
        extents += 1
        return end
    }

    /// Takes out every block held in a thread cache. Each tcache's stack array stays: an allocation
    /// of jemalloc's own, as glibc's tcache is a chunk of its heap, and counted by `stats.allocated`.
    /// Returns the counts of cached pointers, stack arrays found, tcaches, and cached pointers that
    /// matched no block.
    mutating func subtractTcaches() -> (Int, Int, Int, Int) {
        guard let arenas = roots.arenas else { return (0, 0, 0, 0) }
        var cached: [UInt64] = []
        var ownBlocks: [UInt64] = []
        var visited: Set<UInt64> = []
        var reader = RangeReader(source: source, scratchSize: max(JemallocLayout.tcacheBinCount * JemallocLayout.cacheBinSize, 8 << 16))
        defer { reader.deallocate() }
        var badDescriptors = 0
        // Every cached pointer is an allocated region: more of them than regions is damage, and
        // bounds what a damaged list can make this read.
        let limit = blocks.count
        arenaLoop: for (_, arena) in arenas {
            guard let first = source.readWord(arena &+ JemallocLayout.arenaDescriptors), first != 0 else { continue }
            var descriptor = first
            var hops = 0
            repeat {
                guard descriptor & 7 == 0, visited.insert(descriptor).inserted, hops < 1 << 16 else { break }
                hops += 1
                let next = source.readWord(descriptor &+ JemallocLayout.descriptorNext) ?? 0
                if let bins = source.readWord(descriptor &+ JemallocLayout.descriptorBins),
                   let tcache = source.readWord(descriptor &+ JemallocLayout.descriptorTcache),
                   bins == tcache &+ JemallocLayout.tcacheBins {
                    if let dyn = source.readWord(descriptor &+ JemallocLayout.descriptorDynAlloc), dyn != 0 { ownBlocks.append(dyn) }
                    readBins(bins, reader: &reader, into: &cached)
                    if cached.count > limit {
                        notes.append("jemalloc: the thread caches hold more pointers than there are allocated regions; stopped reading them")
                        break arenaLoop
                    }
                } else {
                    badDescriptors += 1
                }
                descriptor = next
            } while descriptor != first && descriptor != 0
        }
        if badDescriptors > 0 { notes.append("jemalloc: \(badDescriptors) cache-bin descriptors did not point at their tcache; skipped") }
        // Blocks are in address order here (the map was walked in order); look each one up.
        let cachedSet = cached.sorted()
        var rows: [Int] = []
        var notFound = 0
        var previous: UInt64? = nil
        var distinct = 0
        for pointer in cachedSet where pointer != previous {
            previous = pointer
            distinct += 1
            if let row = blocks.index(of: pointer) { rows.append(row) } else { notFound += 1 }
        }
        tcacheStacks = Set(ownBlocks).filter { blocks.index(of: $0) != nil }.sorted()
        let internalCount = tcacheStacks.count
        rows = Array(Set(rows)).sorted()
        blocks.removeRows(at: rows)
        sizes.removeRows(at: rows)
        return (distinct, internalCount, visited.count - badDescriptors, notFound)
    }

    /// The pointers cached in one tcache's bins: `stack_head[0 ..< ncached]` of each.
    func readBins(_ bins: UInt64, reader: inout RangeReader, into cached: inout [UInt64]) {
        let binBytes = JemallocLayout.tcacheBinCount * JemallocLayout.cacheBinSize
        guard let table = reader.bytes(bins, count: binBytes) else { return }
        var stacks: [(head: UInt64, count: Int)] = []
        for bin in 0..<JemallocLayout.tcacheBinCount {
            let offset = bin * JemallocLayout.cacheBinSize
            let head = table.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let empty = table.loadUnaligned(fromByteOffset: offset + JemallocLayout.cacheBinEmpty, as: UInt16.self)
            let count = Int((empty &- UInt16(truncatingIfNeeded: head)) / 8)
            if count > 0 && head != 0 && head & 7 == 0 { stacks.append((head, count)) }
        }
        for (head, count) in stacks {
            guard let items = reader.bytes(head, count: count * 8) else { continue }
            for index in 0..<count { cached.append(items.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)) }
        }
    }
}
