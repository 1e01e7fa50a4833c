import CSwrefSystem
import SwrefImages
import SwrefMemory
import SwrefSupport

/// The blocks glibc malloc has handed out, found by walking its arenas from outside.
///
/// In use means: the next chunk's PREV_INUSE bit is set and the chunk is in no tcache or fastbin
/// list (those keep PREV_INUSE set while free). Sizes are chunk sizes, header included, which is
/// what `mallinfo2()` counts.
public struct MallocHeap: HeapWalker {
    public let source: MemorySource
    /// Screens each block's header as the walk passes it (`HeapBlocks.screened`); nil: no screening.
    public var recognizer: SwiftObjectRecognizer?

    public init(source: MemorySource, recognizer: SwiftObjectRecognizer? = nil) {
        self.source = source
        self.recognizer = recognizer
    }

    /// glibc's malloc is the target's when libc is: another allocator's library, looked for first,
    /// takes its place.
    public static func recognise(source: MemorySource, images: ImageList) -> MallocHeap? {
        images.images.contains { $0.name.hasPrefix("libc.so") } ? MallocHeap(source: source) : nil
    }

    /// Bytes of a chunk's size the program cannot use: its 8-byte size field.
    static let overhead: UInt64 = 8

    public func walk() -> HeapBlocks { walk(threads: nil) }

    /// - Parameter forced: 1 or 2 threads for the main heap's walk instead of the walker's choice
    ///   (the tests compare both); two only where reads are local.
    public func walk(threads forced: Int?) -> HeapBlocks {
        var walker = Walker(source: source, recognizer: recognizer, threads: forced)
        walker.run()
        // Each heap is walked in address order; with one arena (or arenas met in address order) the
        // whole list is sorted already and is kept as it is, without a second copy of the list.
        if !walker.ascending {
            let order = walker.orderByRuns() ?? walker.chunks.indices.sorted { walker.chunks[$0] < walker.chunks[$1] }
            walker.chunks = walker.chunks.permuted(order)
            walker.chunkSizes = walker.chunkSizes.permuted(order)
            if walker.screening { walker.headers = walker.headers.permuted(order) }
        }
        // Drop the chunks that sit in a tcache or fastbin list, in place: a few hundred are looked up
        // one by one; the millions a freeing program keeps in its fastbins, in one pass.
        let cached = walker.freeCached.map { $0 &+ MallocLayout.chunkHeader }.sorted()
        var free: [Int] = []
        if cached.count * 32 < walker.chunks.count {
            free = cached.compactMap { walker.chunks.index(of: $0) }
        } else if let first = cached.first {
            var next = 0
            for index in walker.chunks.lowerBound(first)..<walker.chunks.count {
                guard next < cached.count else { break }
                let address = walker.chunks[index]
                while next < cached.count && cached[next] < address { next += 1 }
                if next < cached.count && cached[next] == address { free.append(index) }
            }
        }
        walker.chunks.removeRows(at: free)
        walker.chunkSizes.removeRows(at: free)
        if walker.screening { walker.headers.removeRows(at: free) }
        // Usable bytes of a chunk: its size less the 8-byte size field.
        var blocks = HeapBlocks(allocator: "glibc malloc", overhead: MallocHeap.overhead)
        blocks.addresses = walker.chunks
        blocks.sizes = walker.chunkSizes
        blocks.screened = walker.screening ? walker.headers : nil
        blocks.counters = ["arenas": walker.arenaCount, "mmapped": walker.mmappedCount,
                           "cached free": walker.freeCached.count, "main heap parts": walker.mainHeapParts]
        blocks.notes = walker.notes
        blocks.ownedRanges = walker.ownedRanges
        if walker.arenaCount == 0 {
            blocks.coverage = .unread("glibc's main arena was not found (no [heap], or not glibc malloc)")
        } else if walker.damaged > 0 {
            blocks.coverage = .partial("\(walker.damaged) damaged chunk headers; the rest of those heaps was not walked")
        }
        return blocks
    }
}

/// The walk itself: arenas, their heaps and chunks, tcache and fastbin lists, mmapped chunks.
private struct Walker {
    let source: MemorySource
    var window: MemoryWindow
    /// User pointer and chunk size of every chunk that looks in use, in parallel.
    var chunks = BlockAddresses()
    /// Whether `chunks` ascends (the walk met its heaps in address order).
    var ascending = true
    /// The last address in `chunks` (0 when empty): kept apart, as decoding the packed column's
    /// last row for every chunk cost more than the rest of `add`.
    var lastChunk: UInt64 = 0
    /// Where each heap's chunks, or each mapping's mmapped chunks, begin in `chunks`: ascending
    /// runs over address ranges that do not overlap.
    var runStarts: [Int] = []
    var chunkSizes = BlockSizes()
    /// Each chunk's header screened as it is added, while `screening` (not without a recognizer,
    /// nor once too many distinct first words were met): parallel to `chunks`.
    var headers = ScreenedHeaders()
    var screening: Bool
    let screen: HeaderScreen
    /// The first line the walk has not asked for yet (`prefetch(after:)`).
    var prefetched: UInt64 = 0
    var freeCached: Set<UInt64> = []
    var freeCachedBytes: UInt64 = 0
    var arenaCount = 0
    var mmappedCount = 0
    var mmappedBytes: UInt64 = 0
    var notes: [String] = []
    /// Chunk headers with a bad size in an arena's heap (a walk that stopped early).
    var damaged = 0
    /// Regions the arenas own, so the mmapped-chunk scan skips them.
    var arenaRegions: Set<UInt64> = []
    /// The arenas' heaps as address ranges: a thread arena's heap may span several mappings.
    var ownedRanges: [Range<UInt64>] = []
    var tcacheCandidates: [UInt64] = []
    /// Threads for the main heap's walk as a test forces them (`twoThreads`).
    let threads: Int?
    /// 2 when the main heap's walk took a second thread's part, else 1.
    var mainHeapParts = 1

    init(source: MemorySource, recognizer: SwiftObjectRecognizer?, threads: Int? = nil) {
        self.source = source
        self.threads = threads
        screening = recognizer != nil
        screen = recognizer?.headerScreen ?? HeaderScreen(source: source, slabMetadata: 0, queueVtables: (0, 0))
        window = MemoryWindow(source: source)
        // Room for a block per 64 bytes of writable anonymous memory, up to 32 Mi blocks: growing
        // arrays of millions of entries by doubling costs more in fresh pages than the walk itself.
        // Untouched capacity is only address space.
        let anonymous = source.memoryMap.regions.filter { $0.writable && !$0.isFileBacked }
            .reduce(UInt64(0)) { sum, region in sum.addingReportingOverflow(region.size).overflow ? .max : sum + region.size }
        let estimate = Int(min(anonymous / 64, 32 << 20))
        chunks.reserveCapacity(estimate)
        chunkSizes.reserveCapacity(estimate)
        if screening { headers.reserveCapacity(estimate) }
    }

    /// A walker for the second part of `walker`'s walk of a heap, with room for `rows` chunks.
    init(helping walker: Walker, rows: Int) {
        source = walker.source
        threads = 1
        screening = walker.screening
        screen = walker.screen
        window = MemoryWindow(source: source)
        chunks.reserveCapacity(rows)
        chunkSizes.reserveCapacity(rows)
        if screening { headers.reserveCapacity(rows) }
    }

    /// Runs of contiguous regions, as address ranges.
    static func spans(_ regions: [MemoryRegion]) -> [(start: UInt64, end: UInt64)] {
        var spans: [(start: UInt64, end: UInt64)] = []
        for region in regions {
            if let last = spans.last, last.end == region.start {
                spans[spans.count - 1].end = region.end
            } else {
                spans.append((region.start, region.end))
            }
        }
        return spans
    }

    mutating func run() {
        let map = source.memoryMap
        var mainArena: UInt64? = nil
        // The main arena's heap is `[heap]` in /proc/PID/maps; a core does not name it, so any
        // anonymous writable mapping whose last chunk is main_arena's top qualifies.
        // Adjacent mappings are one heap: the kernel may split `[heap]` into several (a busy
        // program's was in eleven), and a walk of one piece would not reach the top chunk. An
        // anonymous mapping may also just lie next to the heap, whose top chunk then ends before
        // the run does: each piece of a run is tried alone too.
        let anonymous = map.regions.filter { $0.isAnonymous && $0.readable && $0.writable }
        let anonymousSpans = Walker.spans(anonymous)
        let whole = Set(anonymousSpans.map { [$0.start, $0.end] })
        let candidates = Walker.spans(map.regions.filter { $0.path == "[heap]" }) + anonymousSpans
            + anonymous.filter { !whole.contains([$0.start, $0.end]) }.map { (start: $0.start, end: $0.end) }
        for heap in candidates {
            // A failed trial is undone by truncation (a copy of the walker would copy the arrays).
            let counts = (chunks.count, tcacheCandidates.count, notes.count)
            guard let top = walkMainHeap(from: heap.start, to: heap.end), let arena = findMainArena(top: top) else {
                chunks.removeLast(chunks.count - counts.0)
                lastChunk = chunks.last ?? 0
                chunkSizes.removeLast(chunkSizes.count - counts.0)
                if screening { headers.removeLast(headers.count - counts.0) }
                ascending = true
                mainHeapParts = 1
                runStarts.removeAll { $0 >= counts.0 }
                tcacheCandidates.removeLast(tcacheCandidates.count - counts.1)
                notes.removeLast(notes.count - counts.2)
                continue
            }
            arenaRegions.insert(heap.start)
            ownedRanges.append(heap.start..<heap.end)
            arenaCount = 1
            mainArena = arena
            break
        }
        // A damaged chunk header stops the walk before the top chunk, so no heap above qualified.
        // Then main_arena is found from the other side — a ring of arenas in libc's data whose
        // top chunk lies in one of the candidates — and that heap is walked again, skipping the
        // damage: a damaged heap is never read as an empty one.
        if mainArena == nil, let (arena, top, heap) = findMainArenaByRing(candidates) {
            beginRun()
            walkChunks(resyncing: heap.start, to: heap.end, top: top)
            arenaRegions.insert(heap.start)
            ownedRanges.append(heap.start..<heap.end)
            arenaCount = 1
            mainArena = arena
        }
        if let mainArena {
            walkFastbins(arena: mainArena)
            var arena = source.readWord(mainArena &+ MallocLayout.arenaNext) ?? mainArena
            var hops = 0
            while arena != mainArena && arena != 0 && hops < 1024 {
                walkThreadArena(arena)
                walkFastbins(arena: arena)
                arenaCount += 1
                hops += 1
                arena = source.readWord(arena &+ MallocLayout.arenaNext) ?? mainArena
            }
        }
        walkMmappedChunks()
        for candidate in tcacheCandidates { walkTcache(candidate) }
    }

    /// Walks chunks from `start`; returns the last chunk (the top chunk) when the walk reached `end`.
    mutating func walkChunks(from start: UInt64, to end: UInt64, stopAt top: UInt64? = nil) -> UInt64? {
        beginRun()
        var steps = 0
        guard case .finished(let last) = walkChain(from: start, to: end, top: top, steps: &steps) else { return nil }
        return last
    }

    /// How a walk along a heap's chunks ended.
    enum ChainEnd {
        /// At the heap's end: its last chunk (the top chunk), or nil when the walk failed there.
        case finished(UInt64?)
        /// At the first chunk at or past where it was to stop, not walked.
        case stopped(UInt64)
    }

    /// The walk of `walkChunks` from `start`, up to the first chunk at or past `stop`. `steps`
    /// counts the chunks passed over the parts of one heap's walk.
    mutating func walkChain(from start: UInt64, to end: UInt64, top: UInt64?, before stop: UInt64 = .max,
                            steps: inout Int) -> ChainEnd {
        var chunk = start
        // Sizes come from target memory and may be anything: compared with what is left, never added.
        while end >= MallocLayout.chunkHeader && chunk <= end - MallocLayout.chunkHeader {
            if chunk >= stop { return .stopped(chunk) }
            guard let sizeField = window.word(chunk + 8) else { return .finished(nil) }
            let size = sizeField & MallocLayout.sizeMask
            if chunk == top { return .finished(chunk) }
            if !MallocLayout.isSane(size: size, room: end - chunk) {
                // The top chunk's size reaches exactly to the arena's end; anything else is a fencepost or damage.
                if size == end - chunk && size >= 16 { return .finished(chunk) }
                if size >= MallocLayout.minChunkSize || size == 0x10 { return .finished(nil) }
                notes.append("malloc chunk at 0x\(String(chunk, radix: 16)) has a bad size; stopped walking that heap")
                return .finished(nil)
            }
            let next = chunk + size
            if end - next < MallocLayout.chunkHeader { return .finished(chunk) }
            prefetch(after: next)
            guard let nextSize = window.word(next + 8) else { return .finished(nil) }
            if nextSize & MallocLayout.prevInUse != 0 {
                add(chunk, size: size)
                if size == MallocLayout.tcacheChunkSize { tcacheCandidates.append(chunk) }
            }
            chunk = next
            steps += 1
            if steps > 1 << 31 { return .finished(nil) }
        }
        return .finished(nil)
    }

    /// `walkChunks` of a main heap candidate, on two threads when `twoThreads` says so: the
    /// second walks from a chunk near the middle (`splitPoint`, a guess) to the end into a walker
    /// of its own, while this one walks up to it. Landing on it, this walk takes the second's rows
    /// after its own: the rows one thread would have made. Passing over it, the guess was no chunk
    /// (a run of sizes in some block's data, or in a free chunk's stale headers), but such a chain
    /// often runs into the true one where the block ends: this walk goes on to the second's next
    /// chunks, and from one both walked, takes the second's rows from there. Failing that, it goes
    /// on alone and the second's rows are dropped.
    mutating func walkMainHeap(from start: UInt64, to end: UInt64) -> UInt64? {
        guard twoThreads(start, end), let split = splitPoint(start, end) else { return walkChunks(from: start, to: end) }
        beginRun()
        // Room for every chunk there can be past the split: address space, touched only as used.
        let part = Part(Walker(helping: self, rows: Int(min((end - split) / MallocLayout.minChunkSize, 32 << 20))))
        var steps = 0
        var ending = ChainEnd.finished(nil)
        Parallel.run({
            ending = walkChain(from: start, to: end, top: nil, before: split, steps: &steps)
        }, {
            var steps = 0
            if case .finished(let top) = part.walker.walkChain(from: split, to: end, top: nil, steps: &steps) { part.top = top }
            part.steps = steps
        })
        var chunk: UInt64
        switch ending {
        case .finished(let top): return top
        case .stopped(let at): chunk = at
        }
        if chunk == split && join(part, from: 0, steps: steps) { return part.top }
        // The second's rows are its chunks in use: the next of them is where the chains may meet.
        // They meet within a few chunks of the block the false one ran in, or never.
        var row = part.walker.chunks.lowerBound(chunk &+ MallocLayout.chunkHeader), tries = 0
        search: while row < part.walker.chunks.count && tries < 64 {
            tries += 1
            let meeting = part.walker.chunks[row] &- MallocLayout.chunkHeader
            switch walkChain(from: chunk, to: end, top: nil, before: meeting, steps: &steps) {
            case .finished(let top):
                return top
            case .stopped(let next):
                chunk = next
                if next == meeting {
                    if join(part, from: row, steps: steps) { return part.top }
                    break search
                }
                row = part.walker.chunks.lowerBound(next &+ MallocLayout.chunkHeader)
            }
        }
        guard case .finished(let top) = walkChain(from: chunk, to: end, top: nil, steps: &steps) else { return nil }
        return top
    }

    /// The second thread's walker, and where its walk ended.
    final class Part {
        var walker: Walker
        var top: UInt64? = nil
        var steps = 0
        init(_ walker: Walker) { self.walker = walker }
    }

    /// Whether the main heap's walk of [start, end) takes two threads: where reads are local (a
    /// snapshot's copy; a live process's or a core's would contend), on a second core, and on a
    /// heap of 64 MiB or more (below, the walk takes a few milliseconds); or as a test forces it.
    func twoThreads(_ start: UInt64, _ end: UInt64) -> Bool {
        guard source.readsAreLocal, end > start else { return false }
        if let threads { return threads == 2 }
        return end - start >= 64 << 20 && Parallel.hasSecondCore
    }

    /// Where the second thread starts, or nil to walk on one thread: past the middle of the
    /// chunks (of the heap below main_arena's top, when libc's data names one in it), the first
    /// 16-byte boundary within 64 KiB from which 64 chunk sizes in a row are sane, or sizes reach
    /// the end exactly. Only in a heap whose first chunks hold so too: the other candidates fail
    /// at once on one thread, and would keep a second one walking whatever chain it found.
    mutating func splitPoint(_ start: UInt64, _ end: UInt64) -> UInt64? {
        guard chainHolds(from: start, to: end) else { return nil }
        let top = findArenaRing { $0 > start && $0 < end }?.top ?? end
        var probe = (start + (top - start) / 2) & ~15
        let limit = end - probe > 64 << 10 ? probe + (64 << 10) : end
        while probe > start && probe < limit {
            if chainHolds(from: probe, to: end) { return probe }
            probe &+= 16
        }
        return nil
    }

    /// Whether 64 chunks in a row from `start` look like main_arena's, or their sizes end exactly
    /// at `end`: sane sizes (`MallocLayout.isSane`), neither IS_MMAPPED nor
    /// NON_MAIN_ARENA, and a chunk after a free one (PREV_INUSE clear) repeats its size just before
    /// its own, the free one's predecessor not free (glibc merges free neighbours). A run of small
    /// numbers in some block's data, all alike, seldom passes the last two.
    mutating func chainHolds(from start: UInt64, to end: UInt64) -> Bool {
        var at = start, previous: UInt64 = 0
        for link in 0..<64 {
            guard end >= MallocLayout.chunkHeader, at <= end - MallocLayout.chunkHeader, let field = window.word(at &+ 8) else { return false }
            let size = field & MallocLayout.sizeMask
            guard MallocLayout.isSane(size: size, room: end - at),
                  field & (MallocLayout.isMmapped | MallocLayout.nonMainArena) == 0 else { return false }
            if link > 0 && field & MallocLayout.prevInUse == 0 {
                guard previous & MallocLayout.prevInUse != 0, window.word(at) == previous & MallocLayout.sizeMask else { return false }
            }
            previous = field
            at += size
            if at == end { return true }
        }
        return true
    }

    /// Takes `part`'s rows from `row` on after this walk's own, which stopped at that row's chunk
    /// (or, from row 0, where the part began), and what comes with them: the rows one thread
    /// would have made. False, and nothing taken, when that cannot be told: one thread would have
    /// stopped on its 2^31st chunk, or the part stopped screening in rows it does not give.
    mutating func join(_ part: Part, from row: Int, steps: Int) -> Bool {
        // The part's steps before `row` were not this walk's: one thread would have made fewer.
        guard steps + part.steps <= 1 << 31, !(screening && !part.walker.screening && row > 0) else { return false }
        let from = row == 0 ? 0 : part.walker.chunks[row] &- MallocLayout.chunkHeader
        if row < part.walker.chunks.count {
            if !chunks.isEmpty && part.walker.chunks[row] <= lastChunk { ascending = false }
            lastChunk = part.walker.lastChunk
        }
        ascending = ascending && part.walker.ascending
        // The addresses are appended on this thread while the sizes and headers are on another:
        // each is a copy into fresh pages, whose first touch costs more than the copy. Each of the
        // part's columns goes as soon as it is copied: the peak holds them once, not longer.
        let columns = Columns(), tail = Columns()
        swap(&columns.sizes, &chunkSizes)
        swap(&columns.headers, &headers)
        swap(&tail.sizes, &part.walker.chunkSizes)
        swap(&tail.headers, &part.walker.headers)
        columns.screened = screening && part.walker.screening
        var addresses = BlockAddresses()
        swap(&addresses, &part.walker.chunks)
        Parallel.run({
            chunks.append(contentsOf: addresses, from: row)
            addresses = BlockAddresses()
        }, {
            columns.sizes.append(contentsOf: tail.sizes, from: row)
            tail.sizes = BlockSizes()
            // Screening stops once too many distinct first words were met, in either part or in both.
            columns.screened = columns.screened && columns.headers.append(contentsOf: tail.headers, from: row)
            tail.headers = ScreenedHeaders()
        })
        swap(&columns.sizes, &chunkSizes)
        if columns.screened {
            swap(&columns.headers, &headers)
        } else {
            screening = false
        }
        tcacheCandidates += part.walker.tcacheCandidates.filter { $0 >= from }
        notes += part.walker.notes
        mainHeapParts = 2
        return true
    }

    /// Columns handed to another thread: swapped out of a walker, not copied (a column left shared
    /// would be copied whole by its next append, and not given back when dropped).
    final class Columns {
        var sizes = BlockSizes()
        var headers = ScreenedHeaders()
        var screened = false
    }

    /// Walks the main heap up to its top chunk, skipping what cannot be a chunk: after a bad size
    /// the next 16-byte boundary where three chunks in a row have sane sizes (or the last of them
    /// is the top) is taken to be a chunk again. Each skip is counted as damage and noted.
    mutating func walkChunks(resyncing start: UInt64, to end: UInt64, top: UInt64) {
        var chunk = start
        var steps = 0
        func sane(_ at: UInt64) -> UInt64? {
            guard at <= end &- MallocLayout.chunkHeader, let field = window.word(at &+ 8) else { return nil }
            let size = field & MallocLayout.sizeMask
            guard MallocLayout.isSane(size: size, room: end &- at) else { return nil }
            return size
        }
        while chunk < top && steps < 1 << 31 {
            steps += 1
            if let size = sane(chunk), chunk &+ size <= top {
                let next = chunk &+ size
                prefetch(after: next)
                if let nextField = window.word(next &+ 8), nextField & MallocLayout.prevInUse != 0 {
                    add(chunk, size: size)
                    if size == MallocLayout.tcacheChunkSize { tcacheCandidates.append(chunk) }
                }
                chunk = next
                continue
            }
            // Damage: look for the next place where the chain of sizes holds.
            // Probes never wrap past the top of the address space back to 0 (a top read from a damaged core may lie there).
            var probe = (chunk &+ 16) & ~15
            var found: UInt64? = nil
            while probe > chunk && probe < top {
                var at = probe, links = 0
                while links < 3, at < top, let size = sane(at) { at &+= size; links += 1 }
                if links == 3 || at == top { found = probe; break }
                let (next, overflow) = probe.addingReportingOverflow(16)
                if overflow { break }
                probe = next
            }
            damaged += 1
            notes.append("malloc chunk at 0x\(String(chunk, radix: 16)) has a bad size; "
                         + (found.map { "skipped \($0 - chunk) bytes to the next chunk whose sizes hold" } ?? "the rest of the main heap was not walked"))
            guard let found else { return }
            chunk = found
        }
    }

    /// main_arena found without its top chunk: its `top` word points into one of the candidates.
    func findMainArenaByRing(_ candidates: [(start: UInt64, end: UInt64)]) -> (UInt64, UInt64, (start: UInt64, end: UInt64))? {
        guard let found = findArenaRing({ word in candidates.contains { word >= $0.start && word < $0.end } }),
              let heap = candidates.first(where: { found.top >= $0.start && found.top < $0.end }) else { return nil }
        return (found.arena, found.top, heap)
    }

    mutating func beginRun() {
        if runStarts.last != chunks.count { runStarts.append(chunks.count) }
    }

    /// The order that sorts `chunks`, from its runs: sorted by their first address and laid end to
    /// end, when they do not overlap (nil otherwise). Linear, where sorting millions of rows by a
    /// comparison that decodes both is not.
    func orderByRuns() -> [Int]? {
        let bounds = runStarts + [chunks.count]
        var runs: [Range<Int>] = []
        for (start, end) in zip(bounds, bounds.dropFirst()) where start < end { runs.append(start..<end) }
        runs.sort { chunks[$0.lowerBound] < chunks[$1.lowerBound] }
        for (run, next) in zip(runs, runs.dropFirst()) where chunks[run.upperBound - 1] >= chunks[next.lowerBound] { return nil }
        for run in runs where zip(run, run.dropFirst()).contains(where: { chunks[$0] >= chunks[$1] }) { return nil }
        return runs.flatMap { $0 }
    }

    /// How far past the chunk it is at the walk asks for every cache line. On a heap of large
    /// blocks each header is a cache and TLB miss, and the next address is in the header just
    /// read, so nothing overlaps those misses unless asked: a sweep 4 KiB ahead makes the walk
    /// follow the memory's bandwidth instead of its latency (3.9 GiB in 10 M blocks: 850 → 290 ms).
    static let prefetchDistance: UInt64 = 4096

    /// Asks for the lines up to `prefetchDistance` past `next` not asked for yet.
    @inline(__always)
    mutating func prefetch(after next: UInt64) {
        // A hostile size may put `next` anywhere: user addresses stay far below the wrap.
        guard next < 1 << 56 else { return }
        let horizon = next + Walker.prefetchDistance
        // Behind, or far ahead after another heap's walk: start again at `next`.
        if prefetched < next || prefetched > horizon { prefetched = next & ~63 }
        while prefetched < horizon {
            if let line = window.local(prefetched) { swref_prefetch(line) }
            prefetched += 64
        }
    }

    @inline(__always)
    mutating func add(_ chunk: UInt64, size: UInt64) {
        let user = chunk &+ MallocLayout.chunkHeader
        if !chunks.isEmpty && user <= lastChunk { ascending = false }
        lastChunk = user
        chunks.append(user)
        chunkSizes.append(size)
        // The header shares the size field's cache line, just read. Usable bytes as the object
        // table counts them: the size less glibc's overhead.
        if screening && !headers.append(screen.screen(user, usableSize: size &- MallocHeap.overhead, window: &window)) {
            screening = false
            headers = ScreenedHeaders()
        }
    }

    /// main_arena is in libc's data; its `top` field holds the top chunk address we just found.
    func findMainArena(top: UInt64) -> UInt64? {
        findArenaRing { $0 == top }?.arena
    }

    /// A malloc_state in libc's data (or its .bss) whose `top` word passes `matches` and whose
    /// ring of arenas through `next` comes back to it: main_arena.
    func findArenaRing(_ matches: (UInt64) -> Bool) -> (arena: UInt64, top: UInt64)? {
        let map = source.memoryMap.regions
        for (index, region) in map.enumerated() where region.writable && region.path.contains("/libc.so") {
            var areas = [region]
            if index + 1 < map.count, map[index + 1].isAnonymous, map[index + 1].start == region.end {
                areas.append(map[index + 1]) // libc's .bss
            }
            for area in areas where area.size < 1 << 24 {
                guard let bytes = source.readBytes(area.start, count: Int(area.size)) else { continue }
                let words = bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) }
                for (slot, word) in words.enumerated() where slot * 8 >= Int(MallocLayout.arenaTop) && matches(word) {
                    let arena = area.start + UInt64(slot * 8) - MallocLayout.arenaTop
                    var next = source.readWord(arena &+ MallocLayout.arenaNext) ?? 0
                    var hops = 0
                    while next != arena && next != 0 && hops < 1024 {
                        next = source.readWord(next &+ MallocLayout.arenaNext) ?? 0
                        hops += 1
                    }
                    if next == arena { return (arena, word) }
                }
            }
        }
        return nil
    }

    mutating func walkThreadArena(_ arena: UInt64) {
        guard let top = source.readWord(arena &+ MallocLayout.arenaTop) else { return }
        var heap = top & ~(MallocLayout.heapMaxSize - 1)
        var hops = 0
        while heap != 0 && hops < 4096 {
            guard let used = source.readWord(heap &+ MallocLayout.heapInfoSize),
                  let prev = source.readWord(heap &+ MallocLayout.heapInfoPrev) else { return }
            arenaRegions.insert(heap)
            let first = prev == 0 ? heap &+ MallocLayout.firstHeapChunks : heap &+ MallocLayout.laterHeapChunks
            let (end, overflow) = heap.addingReportingOverflow(used)
            if overflow { return }
            ownedRanges.append(heap..<max(end, heap &+ 1))
            let notesBefore = notes.count
            if walkChunks(from: first, to: end, stopAt: top) == nil && notes.count > notesBefore { damaged += 1 }
            heap = prev
            hops += 1
        }
    }

    mutating func walkFastbins(arena: UInt64) {
        for bin in 0..<MallocLayout.fastbinCount {
            guard var chunk = source.readWord(arena &+ MallocLayout.arenaFastbins &+ UInt64(bin * 8)) else { continue }
            var hops = 0
            while chunk != 0 && chunk & 0xf == 0 && hops < 1 << 20 {
                markFree(chunk)
                guard let stored = source.readWord(chunk &+ MallocLayout.chunkHeader) else { break }
                chunk = MallocLayout.reveal(stored, at: chunk &+ MallocLayout.chunkHeader)
                hops += 1
            }
        }
    }

    /// A tcache_perthread_struct is recognised by its shape: every list is exactly as long as its count,
    /// and holds chunks of its own size class.
    mutating func walkTcache(_ chunk: UInt64) {
        let base = chunk &+ MallocLayout.chunkHeader
        guard let bytes = source.readBytes(base, count: Int(MallocLayout.tcacheChunkSize - 16)) else { return }
        let counts = bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self).prefix(MallocLayout.tcacheBins)) }
        let heads = bytes.withUnsafeBytes {
            Array(UnsafeRawBufferPointer(rebasing: $0[Int(MallocLayout.tcacheEntries)...]).bindMemory(to: UInt64.self))
        }
        var lists: [UInt64] = []
        for bin in 0..<MallocLayout.tcacheBins {
            let expectedSize = UInt64(32 + 16 * bin)
            var entry = heads[bin]
            var length = 0
            while entry != 0 {
                guard entry & 0xf == 0, length < Int(counts[bin]),
                      let sizeField = source.readWord(entry - 8), sizeField & MallocLayout.sizeMask == expectedSize,
                      let stored = source.readWord(entry) else { return }
                lists.append(entry - MallocLayout.chunkHeader)
                entry = MallocLayout.reveal(stored, at: entry)
                length += 1
            }
            if length != Int(counts[bin]) { return }
        }
        for free in lists { markFree(free) }
    }

    mutating func markFree(_ chunk: UInt64) {
        if freeCached.insert(chunk).inserted {
            freeCachedBytes &+= (source.readWord(chunk &+ 8) ?? 0) & MallocLayout.sizeMask
        }
    }

    /// Large blocks get their own mapping, whose first chunk carries IS_MMAPPED. Adjacent mappings
    /// merge in /proc/PID/maps, so one region may hold several.
    mutating func walkMmappedChunks() {
        for region in source.memoryMap.regions where region.isAnonymous && region.readable && region.writable {
            if arenaRegions.contains(region.start) { continue }
            beginRun()
            var chunk = region.start
            while region.end - chunk >= 4096 {
                guard let prevSize = source.readWord(chunk), let sizeField = source.readWord(chunk + 8),
                      sizeField & 0x7 == MallocLayout.isMmapped else { break }
                let size = sizeField & MallocLayout.sizeMask
                // A memalign'd mmapped chunk starts after its padding (prev_size ≠ 0): not recognised here.
                guard size >= 4096, size & 0xfff == 0, prevSize == 0, size <= region.end - chunk else { break }
                add(chunk, size: size)
                mmappedCount += 1
                mmappedBytes &+= size
                chunk += size
            }
        }
    }
}
