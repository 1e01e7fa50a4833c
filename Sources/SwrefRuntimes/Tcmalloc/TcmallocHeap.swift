import SwrefImages
import SwrefMemory
import SwrefSupport

/// The blocks gperftools tcmalloc has handed out, found by walking its page heap from outside.
///
/// Every span the pagemap names and marks IN_USE is either one large block (size class 0: the
/// whole span) or a run of objects of its class, of which those on a free list are not in use: the
/// span's own `objects` list (which is also where the central free list keeps them), the batches
/// in the central cache's transfer slots, and every thread cache's per-class list. Sizes are the
/// class sizes (large blocks: whole pages), which is what tcmalloc counts as allocated.
public struct TcmallocHeap: HeapWalker {
    public let source: MemorySource
    public let image: LoadedImage

    public static func recognise(source: MemorySource, images: ImageList) -> TcmallocHeap? {
        guard let image = images.images.first(where: { isTcmalloc($0.name) }) else { return nil }
        return TcmallocHeap(source: source, image: image)
    }

    /// `libtcmalloc.so.4`, `libtcmalloc_minimal.so.4.5.10`, …
    public static func isTcmalloc(_ name: String) -> Bool { name.hasPrefix("libtcmalloc") && name.contains(".so") }

    public func walk() -> HeapBlocks {
        let version = TcmallocRoots.version(image: image, source: source)
        let allocator = "tcmalloc (\(version ?? "gperftools, version unknown"))"
        // The debug build (debugallocation.cc) puts a header before each block and keeps freed
        // blocks in a queue of its own, still IN_USE for the page heap: its walk would count them.
        if image.name.contains("_debug") || image.file.symbol(named: TcmallocLayout.debugMagicSymbol) != nil {
            return HeapBlocks(allocator: allocator, overhead: 0, coverage: .unread(
                "tcmalloc in \(image.name) is the debug allocator, whose blocks have headers and whose freed blocks wait in a queue; not walked"))
        }
        switch TcmallocRoots.find(image: image, source: source) {
        case .failure(let error):
            var blocks = HeapBlocks(allocator: allocator, overhead: 0, coverage: .unread("tcmalloc in \(image.name): \(error.reason)"))
            if let version, version != "gperftools 2.10" { blocks.notes.append("swref knows the layout of gperftools 2.10; this is \(version)") }
            return blocks
        case .success(let roots):
            var walker = TcmallocWalker(source: source, roots: roots)
            var blocks = walker.run(allocator: allocator)
            // Its data (the central cache's slots, the page heap's lists) points at free objects.
            blocks.ownedRanges += image.writableRanges
            return blocks
        }
    }
}

/// One pass over the page heap, then the free lists.
private struct TcmallocWalker {
    let source: MemorySource
    let roots: TcmallocRoots
    var window: MemoryWindow

    /// An IN_USE span: its first byte, its page count, its class (0: one large block) and, for a
    /// class, where its objects' free bits start in `freeBits`.
    struct SpanRecord {
        public var start: UInt64
        public var pages: UInt64
        public var sizeClass: Int
        public var objectSize: UInt64
        public var objectCount: Int
        public var bitBase: Int
        /// The span's own free list (`objects`).
        public var freeHead: UInt64 = 0
        public var end: UInt64 { start &+ (pages << TcmallocLayout.pageShift) }
    }
    /// Ascending by start: the pagemap is walked in page order.
    var spans: [SpanRecord] = []
    var freeBits: [UInt64] = []
    var bitCount = 0

    var notes: [String] = []
    /// The pages of every span, in use or free.
    var owned: [Range<UInt64>] = []
    /// Free-list entries that were not an object of a span of their class, or were seen twice.
    var strayEntries = 0
    /// Lists that ended before their recorded length, or did not end within it.
    var brokenLists = 0
    /// Leaves or spans that could not be read.
    var unreadable = 0
    var leavesLeftOut = 0
    var freeCounts: [String: Int] = ["span free": 0, "transfer cache": 0, "thread cache": 0]
    var threadCaches = 0

    /// At most this many free bits (a 256 MiB bitmap): more objects than any heap swref can hold.
    static let maxBits = 1 << 31
    /// No list is longer than this (thread-cache lists are capped at 8192 by tcmalloc itself).
    static let maxListLength = 1 << 22
    static let maxLeaves = 1024
    static let maxThreadCaches = 1 << 16

    init(source: MemorySource, roots: TcmallocRoots) {
        self.source = source
        self.roots = roots
        window = MemoryWindow(source: source)
    }

    mutating func run(allocator: String) -> HeapBlocks {
        walkPagemap()
        for record in spans.indices where spans[record].sizeClass > 0 { walkSpanFreeList(record) }
        walkTransferCaches()
        walkThreadCaches()

        var blocks = HeapBlocks(allocator: allocator, overhead: 0)
        var large = 0
        for record in spans {
            if record.sizeClass == 0 {
                blocks.addresses.append(record.start)
                blocks.sizes.append(record.pages << TcmallocLayout.pageShift)
                large += 1
                continue
            }
            var address = record.start
            for object in 0..<record.objectCount {
                let bit = record.bitBase + object
                if freeBits[bit >> 6] & (1 << UInt64(bit & 63)) == 0 {
                    blocks.addresses.append(address)
                    blocks.sizes.append(record.objectSize)
                }
                address &+= record.objectSize
            }
        }
        // Spans come in page order and objects in address order within them: sorted already,
        // unless the pagemap was damaged.
        if !zip(spans, spans.dropFirst()).allSatisfy({ $0.end <= $1.start }) { blocks.sortByAddress() }
        blocks.counters = freeCounts.merging(["spans": spans.count, "large": large, "thread caches": threadCaches,
                                              "size classes": roots.classCount]) { $1 }
        blocks.notes = notes
        blocks.ownedRanges = owned
        var damage: [String] = []
        if unreadable > 0 { damage.append("\(unreadable) pagemap leaves or spans could not be read") }
        if leavesLeftOut > 0 { damage.append("\(leavesLeftOut) pagemap leaves beyond the first \(TcmallocWalker.maxLeaves) were not walked") }
        if strayEntries > 0 { damage.append("\(strayEntries) free-list entries were not free objects of their class (blocks they name may be counted as live)") }
        if brokenLists > 0 { damage.append("\(brokenLists) free lists did not match their recorded length") }
        if spans.isEmpty && unreadable > 0 {
            // Nothing was read at all: say so, so that the header scan takes over.
            blocks.coverage = .unread("tcmalloc's pagemap could not be read: \(damage[0])")
        } else if !damage.isEmpty {
            blocks.coverage = .partial(damage.joined(separator: "; "))
        }
        return blocks
    }

    // MARK: The pagemap

    /// Root → leaves → Span pointers, in page order. A span is registered at its first and last
    /// page (a small one at every page), and pages of spans since merged or freed may still name
    /// their old Span objects; a span counts only where the page it is met at is its own start,
    /// and the walk then skips past its pages.
    mutating func walkPagemap() {
        let rootCount = TcmallocLayout.rootLength
        var root = [UInt64](repeating: 0, count: rootCount)
        let rootRead = root.withUnsafeMutableBytes { source.read(roots.pagemapRoot, count: $0.count, into: $0.baseAddress!) }
        guard rootRead else {
            unreadable += 1
            notes.append("tcmalloc's pagemap root at 0x\(String(roots.pagemapRoot, radix: 16)) could not be read")
            return
        }
        var leaf = [UInt64](repeating: 0, count: TcmallocLayout.leafLength)
        var skipUntil: UInt64 = 0
        var leaves = 0
        for index in 0..<rootCount where root[index] != 0 {
            if leaves >= TcmallocWalker.maxLeaves { leavesLeftOut += 1; continue }
            leaves += 1
            let leafRead = leaf.withUnsafeMutableBytes { source.read(root[index], count: $0.count, into: $0.baseAddress!) }
            guard root[index] & 7 == 0, leafRead else { unreadable += 1; continue }
            let firstPage = UInt64(index) << TcmallocLayout.leafBits
            for slot in 0..<TcmallocLayout.leafLength where leaf[slot] != 0 {
                let page = firstPage | UInt64(slot)
                if page < skipUntil { continue }
                guard let span = readSpan(leaf[slot]), span.start == page, span.length >= 1,
                      span.length <= (1 << TcmallocLayout.pageNumberBits) - page else { continue }
                skipUntil = page &+ span.length
                // The last page names the span too, when it is in this leaf.
                let last = UInt64(slot) &+ span.length &- 1
                if last < UInt64(TcmallocLayout.leafLength) && leaf[Int(last)] != leaf[slot] { continue }
                // Every span's pages are tcmalloc's, free ones too: never scanned as a root.
                let (end, overflow) = (page &+ span.length).multipliedReportingOverflow(by: 1 << TcmallocLayout.pageShift)
                if !overflow { owned.append((page << TcmallocLayout.pageShift)..<end) }
                guard span.location == TcmallocLayout.inUse else { continue }
                addSpan(span)
            }
        }
    }

    struct SpanFields {
        public var start: UInt64
        public var length: UInt64
        public var objects: UInt64
        public var bits: UInt32
        public var sizeClass: Int { Int((bits >> 16) & 0xff) }
        public var location: UInt32 { (bits >> 24) & 3 }
    }

    func readSpan(_ address: UInt64) -> SpanFields? {
        guard address & 7 == 0 else { return nil }
        var raw: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &raw) { source.read(address, count: TcmallocLayout.spanRead, into: $0.baseAddress!) }
        guard ok else { return nil }
        return SpanFields(start: raw.0, length: raw.1, objects: raw.4, bits: UInt32(truncatingIfNeeded: raw.5))
    }

    mutating func addSpan(_ span: SpanFields) {
        let start = span.start << TcmallocLayout.pageShift
        let sizeClass = span.sizeClass
        guard sizeClass > 0 else {
            spans.append(SpanRecord(start: start, pages: span.length, sizeClass: 0, objectSize: 0, objectCount: 0, bitBase: 0))
            return
        }
        guard sizeClass < roots.classCount, span.length == roots.pages[sizeClass] else {
            notes.append("tcmalloc span at page 0x\(String(span.start, radix: 16)) has class \(sizeClass) and \(span.length) pages, which do not match; left out")
            unreadable += 1
            return
        }
        let size = roots.sizes[sizeClass]
        let count = Int((span.length << TcmallocLayout.pageShift) / size)
        guard bitCount <= TcmallocWalker.maxBits - count else { unreadable += 1; return }
        spans.append(SpanRecord(start: start, pages: span.length, sizeClass: sizeClass, objectSize: size, objectCount: count, bitBase: bitCount, freeHead: span.objects))
        bitCount += count
        let words = (bitCount + 63) >> 6
        if freeBits.count < words { freeBits.append(contentsOf: repeatElement(0, count: words - freeBits.count)) }
        // Its free list is walked once every span is known (`run`).
    }

    // MARK: Free lists

    /// Counts a free list that is not what its owner records, and says which (the first few).
    mutating func broken(_ what: String) {
        brokenLists += 1
        if brokenLists <= 5 { notes.append("tcmalloc free list: \(what)") }
    }

    /// Marks `object` free; false when it is not an object of a span of `sizeClass`, or already free.
    mutating func markFree(_ object: UInt64, sizeClass: Int) -> Bool {
        // The last span starting at or below the object.
        var low = 0, high = spans.count
        while low < high {
            let mid = (low + high) >> 1
            if spans[mid].start <= object { low = mid + 1 } else { high = mid }
        }
        guard low > 0 else { return false }
        let record = spans[low - 1]
        guard record.sizeClass == sizeClass, object < record.end else { return false }
        let offset = object - record.start
        guard offset % record.objectSize == 0 else { return false }
        let index = Int(offset / record.objectSize)
        guard index < record.objectCount else { return false }
        let bit = record.bitBase + index
        let mask: UInt64 = 1 << UInt64(bit & 63)
        if freeBits[bit >> 6] & mask != 0 { return false }
        freeBits[bit >> 6] |= mask
        return true
    }

    /// Follows a free list from `head`: at most `limit` entries, stopping at NULL. Returns how many
    /// entries it marked and the entry after the last one taken (0 when the list ended).
    mutating func walkList(from head: UInt64, sizeClass: Int, limit: Int, counter: String) -> (taken: Int, next: UInt64) {
        var entry = head
        var taken = 0
        while entry != 0 && taken < limit {
            if !markFree(entry, sizeClass: sizeClass) {
                strayEntries += 1
                return (taken, 0)
            }
            taken += 1
            guard let next = window.word(entry) else { unreadable += 1; return (taken, 0) }
            entry = next
        }
        freeCounts[counter, default: 0] += taken
        return (taken, entry)
    }

    /// A span's own list: the free objects the central free list keeps in it, NULL-terminated and
    /// no longer than the span's object count.
    mutating func walkSpanFreeList(_ record: Int) {
        let result = walkList(from: spans[record].freeHead, sizeClass: spans[record].sizeClass, limit: spans[record].objectCount, counter: "span free")
        if result.next != 0 { broken("span at 0x\(String(spans[record].start, radix: 16)): its free list is longer than its \(spans[record].objectCount) objects") }
    }

    /// Each class's transfer cache: `used_slots_` batches of `num_objects_to_move` objects, head to tail.
    mutating func walkTransferCaches() {
        for sizeClass in 1..<roots.classCount {
            let entry = roots.centralCache &+ UInt64(sizeClass) &* roots.centralStride
            guard let used = source.readUInt32(entry &+ TcmallocLayout.centralUsedSlots) else { unreadable += 1; continue }
            let slots = min(Int(Int32(bitPattern: used)), TcmallocLayout.transferEntries)
            guard slots > 0 else { continue }
            for slot in 0..<slots {
                let slotAddress = entry &+ TcmallocLayout.centralSlots &+ UInt64(slot) &* 16
                guard let head = source.readWord(slotAddress) else { unreadable += 1; continue }
                let batch = roots.moves[sizeClass]
                let result = walkList(from: head, sizeClass: sizeClass, limit: batch, counter: "transfer cache")
                if result.taken != batch { broken("class \(sizeClass) transfer slot \(slot): \(result.taken) objects, not \(batch)") }
            }
        }
    }

    /// Every thread's cache, from the exported `thread_heaps_` list: each class's list holds
    /// `length_` objects.
    mutating func walkThreadCaches() {
        guard var cache = source.readWord(roots.threadHeaps) else { unreadable += 1; return }
        var seen: Set<UInt64> = []
        var previous: UInt64 = 0
        let listBytes = Int(TcmallocLayout.freeListStride) * TcmallocLayout.classSizesMax
        while cache != 0 {
            guard seen.count < TcmallocWalker.maxThreadCaches, seen.insert(cache).inserted,
                  let lists = source.readBytes(cache, count: listBytes),
                  let prev = source.readWord(cache &+ TcmallocLayout.threadCachePrev),
                  let next = source.readWord(cache &+ TcmallocLayout.threadCacheNext) else {
                notes.append("tcmalloc's thread cache list is damaged at 0x\(String(cache, radix: 16)); the caches after it were not read")
                brokenLists += 1
                return
            }
            if prev != previous { notes.append("tcmalloc thread cache 0x\(String(cache, radix: 16)) does not point back to the one before it") }
            threadCaches += 1
            for sizeClass in 1..<roots.classCount {
                let (head, length) = lists.withUnsafeBytes { raw in
                    (raw.loadUnaligned(fromByteOffset: sizeClass * Int(TcmallocLayout.freeListStride), as: UInt64.self),
                     raw.loadUnaligned(fromByteOffset: sizeClass * Int(TcmallocLayout.freeListStride) + Int(TcmallocLayout.freeListLength), as: UInt32.self))
                }
                guard head != 0 || length != 0 else { continue }
                // Lists end in NULL. A thread stopped between relinking its list and updating
                // length_ (FreeList::Push/Pop, and PushRange/PopRange, which move a batch of up to
                // num_objects_to_move objects and walk it first) leaves the two apart by as much as
                // a batch: the list is the truth then, every object on it is free.
                let result = walkList(from: head, sizeClass: sizeClass, limit: TcmallocWalker.maxListLength, counter: "thread cache")
                if result.next != 0 || abs(result.taken - Int(length)) > max(1, roots.moves[sizeClass]) {
                    broken("thread cache 0x\(String(cache, radix: 16)) class \(sizeClass): \(result.taken) objects, length_ \(length)")
                } else if result.taken != Int(length) {
                    freeCounts["lists in flight", default: 0] += 1
                }
            }
            previous = cache
            cache = next
        }
    }
}
