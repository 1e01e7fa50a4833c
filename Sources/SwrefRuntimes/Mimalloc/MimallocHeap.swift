import SwrefImages
import SwrefMemory
import SwrefSupport

/// The blocks mimalloc 2.0 has handed out, found by walking its segments from outside.
///
/// Segments are found without registers or hidden symbols, so cores work too and abandoned
/// segments (left by exited threads) are not missed: every 32 MiB-aligned address in writable
/// anonymous memory is read as a candidate `mi_segment_t` and kept when its header is consistent
/// and its cookie (`segment ^ _mi_heap_main.cookie`) agrees with the main heap's, or, when that heap
/// cannot be found, with the other segments'. In each used page, the live blocks are those below
/// `capacity` that are on none of its free lists (`free`, `local_free`, `xthread_free`) nor on its
/// heap's `thread_delayed_free` list. Sizes are block sizes: what `mi_usable_size` returns.
public struct MimallocHeap: HeapWalker {
    public let source: MemorySource
    /// The library, for `_mi_heap_main` when its build is known.
    public let library: LoadedImage?

    public init(source: MemorySource, library: LoadedImage?) {
        self.source = source
        self.library = library
    }

    /// mimalloc is the target's when its library is loaded (LD_PRELOAD or linked), or when an image
    /// defines mimalloc's own functions (mimalloc linked in statically, which overrides malloc).
    public static func recognise(source: MemorySource, images: ImageList) -> MimallocHeap? {
        if let library = images.images.first(where: { $0.name.hasPrefix("libmimalloc.so") || $0.name.hasPrefix("libmimalloc-") }) {
            return MimallocHeap(source: source, library: library)
        }
        let linkedIn = images.images.first { image in
            guard let symbol = image.file.symbol(named: "mi_heap_visit_blocks") else { return false }
            return symbol.isFunction && symbol.value != 0
        }
        return linkedIn.map { MimallocHeap(source: source, library: $0) }
    }

    public static let allocatorName = "mimalloc 2.0"

    public func walk() -> HeapBlocks {
        var walker = MimallocWalker(source: source)
        let main = walker.mainHeapCookie(library: library)
        walker.cookieFromMainHeap = main != nil
        var blocks = HeapBlocks(allocator: MimallocHeap.allocatorName, overhead: 0)
        blocks.notes = walker.notes
        guard let segments = walker.findSegments(mainCookie: main) else {
            blocks.notes = walker.notes
            blocks.coverage = .unread("\(MimallocHeap.allocatorName): \(walker.failure ?? "no segment found")")
            return blocks
        }
        walker.collectPages(segments)
        walker.collectDelayedFrees()
        walker.crossCheckQueues(segments: segments)
        walker.emitBlocks()
        blocks.notes = walker.notes
        blocks.counters = [
            "segments": segments.count, "abandoned segments": walker.abandonedSegments, "huge segments": walker.hugeSegments,
            "pages": walker.pages.count, "heaps": walker.heapCount, "free-list blocks": walker.freeListBlocks,
            "thread-free blocks": walker.threadFreeBlocks, "delayed-free blocks": walker.delayedApplied,
            "damaged pages": walker.damagedPages, "cookie from _mi_heap_main": walker.cookieFromMainHeap ? 1 : 0, "used-count mismatches": walker.usedMismatches,
        ]
        // The layout was not what this walker expects when most pages disagree with themselves.
        let pageCount = walker.pages.count
        if pageCount > 0 && (walker.damagedPages + walker.usedMismatches) * 2 > pageCount {
            var unread = HeapBlocks(allocator: MimallocHeap.allocatorName, overhead: 0,
                                    coverage: .unread("\(MimallocHeap.allocatorName): \(walker.damagedPages) damaged and \(walker.usedMismatches) inconsistent pages of \(pageCount); layout not as expected"))
            unread.notes = walker.notes
            unread.counters = blocks.counters
            return unread
        }
        blocks.addresses = walker.addresses
        blocks.sizes = walker.sizes
        // Segments (free pages and freed blocks keep old pointers) and the library's data are
        // mimalloc's: never roots.
        blocks.ownedRanges = segments.compactMap { segment in
            let (end, overflow) = segment.address.addingReportingOverflow(max(segment.span, MimallocLayout.segmentSize))
            return overflow ? nil : segment.address..<end
        }
        if let library, library.name.hasPrefix("libmimalloc") {
            blocks.ownedRanges += library.writableRanges
        }
        // Segments are met in address order and pages in slice order: sorted already, unless not.
        if !walker.ascending { blocks.sortByAddress() }
        var damage: [String] = []
        if walker.damagedPages > 0 { damage.append("\(walker.damagedPages) pages with damaged headers or free lists were left out") }
        if walker.damagedSegments > 0 { damage.append("\(walker.damagedSegments) segments with damaged headers or slice tables were left out or walked in part") }
        if walker.unreadHeaps > 0 { damage.append("\(walker.unreadHeaps) heaps' delayed-free lists could not be read") }
        if !damage.isEmpty { blocks.coverage = .partial(damage.joined(separator: "; ")) }
        return blocks
    }
}

/// One used page as found in its segment's slice table.
public struct MimallocPage {
    public var start: UInt64
    public var blockSize: UInt64
    public var capacity: Int
    public var used: UInt32
    public var free: UInt64
    public var localFree: UInt64
    public var threadFree: UInt64
    public var heap: UInt64
    /// The owning segment's thread: its heaps' thread.
    public var threadID: UInt64
}

private struct MimallocSegment {
    var address: UInt64
    var kind: UInt64
    var infoSlices: UInt64
    var sliceEntries: UInt64
    var segmentSlices: UInt64
    var used: UInt64
    var threadID: UInt64
    var cookie: UInt64

    /// Bytes the segment spans.
    var span: UInt64 { segmentSlices &* MimallocLayout.sliceSize }
}

private extension Array where Element == UInt8 {
    @inline(__always) func u64(_ offset: Int) -> UInt64 {
        withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
    }
    @inline(__always) func u32(_ offset: Int) -> UInt32 {
        withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
    }
    @inline(__always) func u16(_ offset: Int) -> UInt16 {
        withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt16.self) }
    }
}

private struct MimallocWalker {
    typealias L = MimallocLayout
    /// Longest list followed: a page holds at most 65 535 blocks; the delayed lists of all heaps together
    /// are bounded by this many entries.
    static let delayedLimit = 1 << 26

    let source: MemorySource
    var window: MemoryWindow
    var notes: [String] = []
    var failure: String? = nil
    var pages: [MimallocPage] = []
    var addresses = BlockAddresses()
    var sizes = BlockSizes()
    /// Blocks on some heap's `thread_delayed_free` list, ascending.
    var delayed: [UInt64] = []
    var heapCount = 0
    /// Whether pages were met in ascending address order (their blocks then are too).
    var ascending = true
    var cookieFromMainHeap = false
    /// `_mi_heap_main`, when found and checked.
    var mainHeap: UInt64? = nil
    /// Heaps named by pages that belong to those pages' thread.
    var checkedHeaps = Set<UInt64>()
    var unreadHeaps = 0
    var damagedPages = 0
    /// Segments left out or walked in part.
    var damaged = Set<UInt64>()
    var damagedSegments: Int { damaged.count }
    var usedMismatches = 0
    var abandonedSegments = 0
    var hugeSegments = 0
    var freeListBlocks = 0
    var threadFreeBlocks = 0
    var delayedApplied = 0
    /// One bit per block of the page being read: set when the block is free.
    var bitmap = [UInt64](repeating: 0, count: 1024)

    init(source: MemorySource) {
        self.source = source
        window = MemoryWindow(source: source)
    }

    // MARK: The main heap's cookie

    /// `_mi_heap_main.cookie`, when the library's build is one whose `_mi_heap_main` is known and the
    /// heap found there checks out (its tld's backing heap is itself).
    mutating func mainHeapCookie(library: LoadedImage?) -> UInt64? {
        guard let library else { return nil }
        var id = ""
        for byte in library.file.buildID ?? [] {
            if byte < 16 { id += "0" }
            id += String(byte, radix: 16)
        }
        // An unstripped image names it; otherwise the table knows it by build.
        let named = library.file.symbol(named: "_mi_heap_main").flatMap { $0.isObject && $0.value != 0 ? $0.value : nil }
        guard let offset = named ?? L.mainHeapByBuildID[id] else {
            notes.append("mimalloc: build \(id.isEmpty ? "without a build id" : id) of \(library.name) is not one swref knows; segments are recognised by their shape and a shared cookie, and the 2.0.9 layout is assumed")
            return nil
        }
        let heap = library.loadBias &+ offset
        guard let tld = source.readWord(heap &+ L.heapTld), tld != 0,
              let backing = source.readWord(tld &+ L.tldHeapBacking), backing == heap,
              let cookie = source.readWord(heap &+ L.heapCookie), cookie != 0 else {
            notes.append("mimalloc: _mi_heap_main at 0x\(String(heap, radix: 16)) does not check out (not initialised, or not that build); segments are recognised by their shape and a shared cookie")
            return nil
        }
        mainHeap = heap
        return cookie
    }

    // MARK: Segments

    /// The segments: structurally sound headers at 32 MiB-aligned addresses whose cookies agree.
    /// Nil (and `failure`) when none qualifies.
    mutating func findSegments(mainCookie: UInt64?) -> [MimallocSegment]? {
        var candidates: [MimallocSegment] = []
        // Aligned addresses whose header is not a segment's: damaged segments when their cookie is right.
        var misshapen: [(address: UInt64, cookie: UInt64)] = []
        var covered: UInt64 = 0 // end of the last huge segment accepted on shape: its inside is user data
        // Anonymous memory, including huge pages (MIMALLOC_LARGE_OS_PAGES) and named anonymous mappings.
        let regions = source.memoryMap.regions.filter {
            $0.readable && $0.writable && ($0.isAnonymous || $0.path.hasPrefix("/anon_hugepage") || $0.path.hasPrefix("[anon:"))
        }
        for region in regions {
            let (rounded, overflow) = region.start.addingReportingOverflow(L.segmentSize - 1)
            if overflow { continue }
            var address = rounded & ~(L.segmentSize - 1)
            while address >= region.start && address < region.end {
                if address >= covered {
                    if let segment = readSegment(address) {
                        candidates.append(segment)
                        if segment.span > L.segmentSize { covered = address &+ segment.span }
                    } else if let cookie = source.readWord(address &+ UInt64(L.segmentCookie)), cookie != 0 {
                        misshapen.append((address, cookie))
                    }
                }
                let (next, overflow) = address.addingReportingOverflow(L.segmentSize)
                if overflow { break }
                address = next
            }
        }
        guard !candidates.isEmpty else {
            failure = "no segment found in writable anonymous memory" + (mainCookie != nil ? " (the main heap is there: has the program allocated?)" : "")
            return nil
        }
        // Every segment's cookie is its address xor the main heap's cookie.
        let key: UInt64
        if let mainCookie {
            key = mainCookie
        } else {
            var votes: [UInt64: Int] = [:]
            for segment in candidates { votes[segment.address ^ segment.cookie, default: 0] += 1 }
            guard let best = votes.max(by: { $0.value < $1.value }) else { return nil }
            key = best.key
            if candidates.count >= 2 && best.value < 2 {
                failure = "\(candidates.count) segment-shaped headers but no two share a cookie"
                return nil
            }
        }
        let segments = candidates.filter { $0.address ^ $0.cookie == key }
        // The cookie is one per process: a segment-shaped header without it was damaged (or is user
        // data that happens to look like a segment), and one with it but out of shape was damaged.
        let foreign = candidates.count - segments.count
        if foreign > 0 {
            for segment in candidates where segment.address ^ segment.cookie != key { damaged.insert(segment.address) }
            notes.append("mimalloc: \(foreign) segment-shaped headers with a foreign cookie were left out")
        }
        for (address, cookie) in misshapen where address ^ cookie == key {
            damaged.insert(address)
            notes.append("mimalloc: the segment at 0x\(String(address, radix: 16)) carries the cookie but its header is out of shape; left out")
        }
        guard !segments.isEmpty else {
            failure = "no segment carries the main heap's cookie (\(candidates.count) segment-shaped headers)"
            return nil
        }
        return segments
    }

    /// The segment at `address` when its header is consistent.
    func readSegment(_ address: UInt64) -> MimallocSegment? {
        guard let header = source.readBytes(address, count: L.segmentHeaderSize) else { return nil }
        let segment = MimallocSegment(
            address: address,
            kind: header.u64(L.segmentKind) & 0xffff_ffff,
            infoSlices: header.u64(L.segmentInfoSlices),
            sliceEntries: header.u64(L.segmentSliceEntries),
            segmentSlices: header.u64(L.segmentSlices),
            used: header.u64(L.segmentUsed),
            threadID: header.u64(L.segmentThreadID),
            cookie: header.u64(L.segmentCookie))
        guard segment.cookie != 0, segment.kind <= 1,
              segment.infoSlices >= 1, segment.infoSlices <= 8,
              segment.sliceEntries > segment.infoSlices, segment.sliceEntries <= L.slicesPerSegment,
              segment.segmentSlices >= segment.sliceEntries, segment.segmentSlices < 1 << 32,
              segment.used <= segment.sliceEntries,
              header.u64(L.segmentAbandoned) <= segment.used else { return nil }
        if segment.kind == 0 {
            // A normal segment is exactly 32 MiB (511 usable entries in secure builds).
            guard segment.segmentSlices == L.slicesPerSegment, segment.sliceEntries >= L.slicesPerSegment - 1 else { return nil }
        } else {
            guard segment.segmentSlices > segment.infoSlices else { return nil }
        }
        // The first span is the segment's own header.
        let first = L.segmentSlicesArray
        guard UInt64(header.u32(first + L.pageSliceCount)) == segment.infoSlices,
              header.u32(first + L.pageSliceOffset) == 0 else { return nil }
        return segment
    }

    // MARK: Pages

    mutating func collectPages(_ segments: [MimallocSegment]) {
        for segment in segments {
            if segment.threadID == 0 { abandonedSegments += 1 }
            if segment.kind == 1 { hugeSegments += 1 }
            // Headers are read again one at a time rather than kept: 41 KiB a segment.
            guard let header = source.readBytes(segment.address, count: L.segmentHeaderSize) else {
                damaged.insert(segment.address)
                continue
            }
            var index = UInt64(0)
            var inUse: UInt64 = 0
            var steps = 0
            var broken = false
            while index < segment.sliceEntries && steps <= Int(L.slicesPerSegment) {
                steps += 1
                let slice = L.segmentSlicesArray + Int(index) * L.pageSize
                let count = UInt64(header.u32(slice + L.pageSliceCount))
                let offset = header.u32(slice + L.pageSliceOffset)
                let blockField = UInt64(header.u32(slice + L.pageBlockSize))
                // A span starts with its count; only a huge segment's one page may run past the table.
                guard offset == 0, count >= 1,
                      index + count <= segment.sliceEntries || (segment.kind == 1 && index + count <= segment.segmentSlices) else {
                    broken = true
                    break
                }
                if index >= segment.infoSlices && blockField != 0 {
                    inUse += 1
                    if blockField > 1 { addPage(segment: segment, header: header, index: index, count: count, slice: slice) }
                }
                index += count
            }
            if broken {
                damaged.insert(segment.address)
                notes.append("mimalloc: segment 0x\(String(segment.address, radix: 16)) has a broken slice table at slice \(index); the rest of it was not walked")
            } else if inUse != segment.used {
                notes.append("mimalloc: segment 0x\(String(segment.address, radix: 16)) counts \(segment.used) pages in use, its slice table \(inUse)")
            }
        }
    }

    mutating func addPage(segment: MimallocSegment, header: [UInt8], index: UInt64, count: UInt64, slice: Int) {
        let blockField = UInt64(header.u32(slice + L.pageBlockSize))
        let startOffset = blockField >= 8 && blockField <= 1024 ? L.smallBlockStartOffset : 0
        let spanBytes = count &* L.sliceSize
        guard spanBytes > startOffset else { damagedPages += 1; return }
        let pageBytes = spanBytes - startOffset
        let blockSize = blockField < L.hugeBlockSize ? blockField : pageBytes
        let capacity = UInt64(header.u16(slice + L.pageCapacity))
        let reserved = UInt64(header.u16(slice + L.pageReserved))
        let used = header.u32(slice + L.pageUsed)
        let extent = capacity.multipliedReportingOverflow(by: blockSize)
        guard capacity <= reserved, !extent.overflow, extent.partialValue <= pageBytes, UInt64(used) <= capacity else {
            damagedPages += 1
            notes.append("mimalloc: page at slice \(index) of segment 0x\(String(segment.address, radix: 16)) has an impossible header (capacity \(capacity), reserved \(reserved), used \(used), block \(blockSize))")
            return
        }
        pages.append(MimallocPage(
            start: segment.address &+ index &* L.sliceSize &+ startOffset, blockSize: blockSize, capacity: Int(capacity), used: used,
            free: header.u64(slice + L.pageFree), localFree: header.u64(slice + L.pageLocalFree),
            threadFree: header.u64(slice + L.pageThreadFree) & ~L.threadFreeFlags, heap: header.u64(slice + L.pageHeap), threadID: segment.threadID))
    }

    // MARK: Delayed frees

    /// Blocks other threads freed onto the owning heap's `thread_delayed_free` list: still counted in
    /// their page's `used`, but free.
    mutating func collectDelayedFrees() {
        // Each heap with the thread that owns its pages' segments.
        var heaps: [UInt64: UInt64] = [:]
        for page in pages where page.heap != 0 { heaps[page.heap] = page.threadID }
        heapCount = heaps.count
        // A delayed-free block is a block of some page: more entries than blocks means a cycle.
        let limit = min(MimallocWalker.delayedLimit, pages.reduce(0) { $0 + $1.capacity } + 1)
        for (heap, thread) in heaps.sorted(by: { $0.key < $1.key }) {
            // A heap belongs to the thread whose segments hold its pages.
            guard heap & 7 == 0, source.readWord(heap &+ L.heapThreadID) == thread,
                  var block = source.readWord(heap &+ L.heapThreadDelayedFree) else {
                unreadHeaps += 1
                notes.append("mimalloc: heap 0x\(String(heap, radix: 16)) named by pages is unreadable or not their thread's; its delayed frees were not read")
                continue
            }
            checkedHeaps.insert(heap)
            while block != 0 {
                guard delayed.count < limit else {
                    unreadHeaps += 1
                    notes.append("mimalloc: heap 0x\(String(heap, radix: 16))'s delayed-free list is longer than the heap has blocks (a cycle?); cut short")
                    break
                }
                delayed.append(block)
                guard block & 7 == 0, let next = window.word(block) else {
                    unreadHeaps += 1
                    notes.append("mimalloc: heap 0x\(String(heap, radix: 16))'s delayed-free list breaks at 0x\(String(block, radix: 16))")
                    break
                }
                block = next
            }
        }
        delayed.sort()
    }

    /// Every page on a known heap's queues must lie in a segment that was found: one that was not
    /// is a segment whose header was too damaged to recognise.
    mutating func crossCheckQueues(segments: [MimallocSegment]) {
        var heaps = checkedHeaps
        if let mainHeap { heaps.insert(mainHeap) }
        let found = Set(segments.map(\.address))
        var missing = Set<UInt64>()
        var budget = pages.count + 1024
        for heap in heaps.sorted() {
            for queue in 0..<L.heapQueueCount {
                guard var page = source.readWord(heap &+ L.heapPages &+ UInt64(queue) &* L.pageQueueSize) else { break }
                while page != 0 && budget > 0 {
                    budget -= 1
                    let segment = page & ~(L.segmentSize - 1)
                    if !found.contains(segment) { missing.insert(segment) }
                    guard let next = window.word(page &+ UInt64(L.pageNext)) else { break }
                    page = next
                }
            }
        }
        if !missing.isEmpty {
            damaged.formUnion(missing)
            notes.append("mimalloc: heaps' page queues lead to \(missing.count) segments that were not recognised (damaged headers?): " + missing.sorted().prefix(4).map { "0x" + String($0, radix: 16) }.joined(separator: ", "))
        }
    }

    // MARK: Blocks

    mutating func emitBlocks() {
        // Room for every committed block, up to 32 Mi rows: beyond that, growing costs less than
        // reserving for blocks that may be free.
        let estimate = min(pages.reduce(0) { $0 + $1.capacity }, 32 << 20)
        addresses.reserveCapacity(estimate)
        sizes.reserveCapacity(estimate)
        var unmatchedDelayed = delayed.count
        var lastStart: UInt64 = 0
        for page in pages {
            let words = (page.capacity + 63) >> 6
            for word in 0..<words { bitmap[word] = 0 }
            // Every list must stay inside the page on block boundaries and meet no block twice.
            guard let free = mark(page.free, in: page), let local = mark(page.localFree, in: page),
                  let thread = mark(page.threadFree, in: page) else {
                damagedPages += 1
                notes.append("mimalloc: a free list of the page at 0x\(String(page.start, radix: 16)) leaves the page or loops; the page was left out")
                continue
            }
            // Delayed frees that fall in this page.
            var delayedHere = 0
            let end = page.start &+ UInt64(page.capacity) &* page.blockSize
            var cursor = lowerBound(delayed, page.start)
            var damaged = false
            while cursor < delayed.count && delayed[cursor] < end {
                let offset = delayed[cursor] - page.start
                let index = Int(offset / page.blockSize)
                if offset % page.blockSize != 0 || bitmap[index >> 6] & (1 << UInt64(index & 63)) != 0 { damaged = true; break }
                bitmap[index >> 6] |= 1 << UInt64(index & 63)
                delayedHere += 1
                cursor += 1
            }
            if damaged {
                damagedPages += 1
                notes.append("mimalloc: a delayed-free entry in the page at 0x\(String(page.start, radix: 16)) is off a block boundary or already free; the page was left out")
                continue
            }
            unmatchedDelayed -= delayedHere
            // `used` counts what the thread handed out: blocks other threads freed are still in it.
            if page.capacity - free - local != Int(page.used) { usedMismatches += 1 }
            freeListBlocks += free + local
            threadFreeBlocks += thread
            delayedApplied += delayedHere
            if page.start <= lastStart { ascending = false }
            lastStart = page.start
            var block = page.start
            let size = page.blockSize
            bitmap.withUnsafeBufferPointer { bits in
                for index in 0..<page.capacity {
                    if bits[index &>> 6] & (1 &<< UInt64(index & 63)) == 0 {
                        addresses.append(block)
                        sizes.append(size)
                    }
                    block &+= size
                }
            }
        }
        if usedMismatches > 0 {
            notes.append("mimalloc: \(usedMismatches) pages' used counts disagree with their free lists (a thread stopped inside malloc or free?); the lists were believed")
        }
        if unmatchedDelayed > 0 {
            notes.append("mimalloc: \(unmatchedDelayed) delayed-free entries lie in no page that was read")
        }
    }

    /// Marks the blocks on the list at `head` free; their number, or nil when the list leaves the
    /// page, is off a block boundary, meets a block already marked or cannot be read.
    mutating func mark(_ head: UInt64, in page: MimallocPage) -> Int? {
        var block = head
        var count = 0
        let limit = UInt64(page.capacity) &* page.blockSize
        while block != 0 {
            guard block >= page.start else { return nil }
            let offset = block - page.start
            guard offset < limit, offset % page.blockSize == 0, count < page.capacity else { return nil }
            let index = Int(offset / page.blockSize)
            let bit: UInt64 = 1 << UInt64(index & 63)
            guard bitmap[index >> 6] & bit == 0 else { return nil }
            bitmap[index >> 6] |= bit
            count += 1
            guard let next = window.word(block) else { return nil }
            block = next
        }
        return count
    }

    func lowerBound(_ values: [UInt64], _ value: UInt64) -> Int {
        var low = 0, high = values.count
        while low < high {
            let middle = (low + high) >> 1
            if values[middle] < value { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
