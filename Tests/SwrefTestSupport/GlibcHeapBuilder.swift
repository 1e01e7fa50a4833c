import SwrefMemory

/// A glibc 2.36 main-arena heap laid out by hand in an `InMemoryTarget`: a `[heap]` mapping of
/// chunks (size words with their flag bits) ending in the top chunk, and `main_arena` in a
/// writable mapping of a `libc.so.6` whose `top` names that chunk and whose `next` ring closes on
/// itself — what `MallocHeap` looks for. Free chunks can be left free (the next chunk's
/// PREV_INUSE clear), put on a tcache list (in a `tcache_perthread_struct`, safe-linked) or on a
/// fastbin. Large blocks get mmapped chunks of their own mappings.
///
/// The constants are glibc's (malloc/malloc.c), written out here independently of swref's own.
public final class GlibcHeapBuilder {
    public enum State { case inUse, free, tcache, fastbin }

    public struct Chunk {
        /// The chunk header's address (the prev_size word).
        public var address: UInt64
        public var size: UInt64
        public var state: State
        /// The pointer malloc returned: 16 bytes past the header.
        public var user: UInt64 { address + 16 }
    }

    public let target: InMemoryTarget
    public let heapStart: UInt64
    public let heapEnd: UInt64
    /// `struct malloc_state main_arena`, inside libc's data mapping.
    public let mainArena: UInt64
    public private(set) var chunks: [Chunk] = []
    /// The user pointer of the tcache_perthread_struct, when `makeTcache` made one.
    public private(set) var tcache: UInt64?
    private var cursor: UInt64

    static let prevInUse: UInt64 = 1
    static let isMmapped: UInt64 = 2
    static let arenaFastbins: UInt64 = 0x10
    static let arenaTop: UInt64 = 0x60
    static let arenaNext: UInt64 = 0x870

    /// - Parameters:
    ///   - heapStart, heapSize: the `[heap]` mapping.
    ///   - libcData: where libc's writable data is mapped (main_arena at +0x100 in it).
    public init(target: InMemoryTarget, heapStart: UInt64 = 0x5555_5556_0000, heapSize: UInt64 = 0x21000,
                libcData: UInt64 = 0x7fff_f7e1_0000) {
        self.target = target
        self.heapStart = heapStart
        heapEnd = heapStart + heapSize
        target.map(heapStart, size: heapSize, "rw-p", path: "[heap]")
        target.map(libcData, size: 0x2000, "rw-p", path: "/usr/lib/x86_64-linux-gnu/libc.so.6", fileOffset: 0x1f0000)
        mainArena = libcData + 0x100
        target.put(mainArena, at: mainArena + GlibcHeapBuilder.arenaNext)  // a ring of one
        cursor = heapStart
    }

    /// The chunk size malloc gives a request of `bytes`: header included, 16-byte multiple, ≥ 32.
    public static func chunkSize(forRequest bytes: UInt64) -> UInt64 { max(32, (bytes + 8 + 15) & ~15) }

    /// Lays out the next chunk, of exactly `chunkSize` bytes (a multiple of 16, ≥ 32); returns it.
    /// Its flags are written by `finish`.
    @discardableResult
    public func chunk(size chunkSize: UInt64, state: State = .inUse) -> Chunk {
        precondition(chunkSize >= 32 && chunkSize % 16 == 0 && cursor + chunkSize + 32 <= heapEnd, "no room for a chunk of \(chunkSize)")
        precondition(state != .fastbin || chunkSize <= 0xb0, "main_arena has 10 fastbins: chunks up to 0xb0")
        precondition(state != .tcache || chunkSize <= 0x410, "a tcache has 64 bins: chunks up to 0x410")
        let chunk = Chunk(address: cursor, size: chunkSize, state: state)
        chunks.append(chunk)
        cursor += chunkSize
        return chunk
    }

    /// A block as `malloc(bytes)` returns it; the user pointer.
    @discardableResult
    public func malloc(_ bytes: UInt64, state: State = .inUse) -> UInt64 {
        chunk(size: GlibcHeapBuilder.chunkSize(forRequest: bytes), state: state).user
    }

    /// The thread's tcache_perthread_struct: glibc's first chunk (0x290 bytes) in a heap.
    @discardableResult
    public func makeTcache() -> UInt64 {
        let chunk = chunk(size: 0x290)
        tcache = chunk.user
        return chunk.user
    }

    /// Writes every chunk's size word (PREV_INUSE from the chunk before), the top chunk, the
    /// tcache and fastbin lists, and main_arena's `top`. Call once the chunks are laid out.
    public func finish() {
        var previousInUse = true  // the first chunk's PREV_INUSE is set
        var tcacheLists: [Int: [UInt64]] = [:]
        var fastbinLists: [Int: [UInt64]] = [:]
        for chunk in chunks {
            target.put(chunk.size | (previousInUse ? GlibcHeapBuilder.prevInUse : 0), at: chunk.address + 8)
            // Only a truly free chunk clears its successor's PREV_INUSE; cached ones keep it set.
            previousInUse = chunk.state != .free
            switch chunk.state {
            case .tcache: tcacheLists[Int((chunk.size - 32) / 16), default: []].append(chunk.user)
            case .fastbin: fastbinLists[Int((chunk.size - 32) / 16), default: []].append(chunk.address)
            case .free:
                // A free chunk's size is repeated in the next chunk's prev_size.
                target.put(chunk.size, at: chunk.address + chunk.size)
            case .inUse: break
            }
        }
        let top = cursor
        target.put((heapEnd - top) | (previousInUse ? GlibcHeapBuilder.prevInUse : 0), at: top + 8)
        target.put(top, at: mainArena + GlibcHeapBuilder.arenaTop)
        if !tcacheLists.isEmpty {
            guard let tcache else { preconditionFailure("chunks put on a tcache list need makeTcache() first") }
            for (bin, entries) in tcacheLists {
                target.put16(UInt16(entries.count), at: tcache + UInt64(bin * 2))
                target.put(entries[0], at: tcache + 128 + UInt64(bin * 8))
                // Each entry's next pointer is safe-linked: stored = (its own address >> 12) ^ next.
                for (index, entry) in entries.enumerated() {
                    let next = index + 1 < entries.count ? entries[index + 1] : 0
                    target.put((entry >> 12) ^ next, at: entry)
                }
            }
        }
        for (bin, list) in fastbinLists {
            target.put(list[0], at: mainArena + GlibcHeapBuilder.arenaFastbins + UInt64(bin * 8))
            for (index, chunk) in list.enumerated() {
                let next = index + 1 < list.count ? list[index + 1] : 0
                target.put(((chunk + 16) >> 12) ^ next, at: chunk + 16)
            }
        }
    }

    /// The chunks the walk must report: in use, not cached.
    public var liveChunks: [Chunk] { chunks.filter { $0.state == .inUse } }

    /// A mapping of its own holding one mmapped chunk (IS_MMAPPED, page-sized) for a request of
    /// `bytes`; the user pointer.
    @discardableResult
    public func mmapChunk(_ bytes: UInt64, at address: UInt64) -> UInt64 {
        let size = (bytes + 16 + 4095) & ~4095
        target.map(address, size: size, "rw-p")
        target.put(0, at: address)
        target.put(size | GlibcHeapBuilder.isMmapped, at: address + 8)
        return address + 16
    }
}

/// A thread arena (glibc's `arena.c`): its `malloc_state` sits in its first heap, after the
/// `heap_info`; each heap is 64 MiB-aligned and names the one before it (`prev`); the arena's
/// `top` is in the newest. The arena joins main_arena's ring of `next` pointers. Chunks carry
/// NON_MAIN_ARENA. Lay chunks out, then `finish()` (before or after the main heap's).
public final class GlibcThreadArena {
    public let target: InMemoryTarget
    /// `struct malloc_state` of this arena.
    public let arena: UInt64
    /// Each heap: its start (the heap_info), where its chunks start, and its mapped end.
    public private(set) var heaps: [(start: UInt64, firstChunk: UInt64, end: UInt64)] = []
    public private(set) var chunks: [GlibcHeapBuilder.Chunk] = []
    /// Per heap, the chunks laid out in it (indices into `chunks`).
    private var heapOfChunk: [Int] = []
    private var cursor: UInt64

    static let heapAlignment: UInt64 = 64 << 20
    static let nonMainArena: UInt64 = 4

    /// A thread arena whose first heap is mapped at `heapStart` (64 MiB-aligned), `size` bytes.
    public init(joining main: GlibcHeapBuilder, heapStart: UInt64, size: UInt64 = 0x21000) {
        precondition(heapStart % GlibcThreadArena.heapAlignment == 0, "thread heaps are 64 MiB-aligned")
        target = main.target
        arena = heapStart + 0x20
        target.map(heapStart, size: size, "rw-p")
        target.put(arena, at: heapStart)                    // heap_info.ar_ptr
        target.put(0, at: heapStart + 8)                    // prev: none
        target.put(size, at: heapStart + 0x10)              // size in use
        // Into the ring after main_arena.
        target.put(target.word(at: main.mainArena + GlibcHeapBuilder.arenaNext), at: arena + GlibcHeapBuilder.arenaNext)
        target.put(arena, at: main.mainArena + GlibcHeapBuilder.arenaNext)
        heaps.append((heapStart, heapStart + 0x8d0, heapStart + size))
        cursor = heapStart + 0x8d0
    }

    @discardableResult
    public func chunk(size chunkSize: UInt64, state: GlibcHeapBuilder.State = .inUse) -> GlibcHeapBuilder.Chunk {
        precondition(state == .inUse || state == .free, "thread arenas here keep no tcache or fastbin lists")
        precondition(chunkSize >= 32 && chunkSize % 16 == 0 && cursor + chunkSize + 32 <= heaps.last!.end, "no room for a chunk of \(chunkSize)")
        let chunk = GlibcHeapBuilder.Chunk(address: cursor, size: chunkSize, state: state)
        chunks.append(chunk)
        heapOfChunk.append(heaps.count - 1)
        cursor += chunkSize
        return chunk
    }

    @discardableResult
    public func malloc(_ bytes: UInt64, state: GlibcHeapBuilder.State = .inUse) -> UInt64 {
        chunk(size: GlibcHeapBuilder.chunkSize(forRequest: bytes), state: state).user
    }

    /// Ends the current heap with a fencepost (its in-use size shrinks to it) and maps a new one
    /// at `heapStart` whose `prev` is the old: later chunks, and the top, go there.
    public func growHeap(at heapStart: UInt64, size: UInt64 = 0x21000) {
        precondition(heapStart % GlibcThreadArena.heapAlignment == 0, "thread heaps are 64 MiB-aligned")
        let old = heaps.removeLast()
        // A 16-byte fencepost whose PREV_INUSE is written by finish(); the heap's used size ends after it.
        heaps.append((old.start, old.firstChunk, cursor + 16))
        target.put(cursor + 16 - old.start, at: old.start + 0x10)
        target.map(heapStart, size: size, "rw-p")
        target.put(arena, at: heapStart)
        target.put(old.start, at: heapStart + 8)
        target.put(size, at: heapStart + 0x10)
        heaps.append((heapStart, heapStart + 0x30, heapStart + size))
        cursor = heapStart + 0x30
    }

    /// Writes every chunk's size word (NON_MAIN_ARENA, PREV_INUSE from the chunk before in the
    /// same heap), each old heap's fencepost, the top chunk, and the arena's `top`.
    public func finish() {
        for (heapIndex, heap) in heaps.enumerated() {
            var previousInUse = true
            var end = heap.firstChunk
            for (index, chunk) in chunks.enumerated() where heapOfChunk[index] == heapIndex {
                target.put(chunk.size | GlibcThreadArena.nonMainArena | (previousInUse ? GlibcHeapBuilder.prevInUse : 0), at: chunk.address + 8)
                if chunk.state == .free { target.put(chunk.size, at: chunk.address + chunk.size) }
                previousInUse = chunk.state != .free
                end = chunk.address + chunk.size
            }
            let flags = GlibcThreadArena.nonMainArena | (previousInUse ? GlibcHeapBuilder.prevInUse : 0)
            if heapIndex < heaps.count - 1 {
                target.put(0x10 | flags, at: end + 8)                       // the fencepost
            } else {
                target.put((heap.end - end) | flags, at: end + 8)           // the top chunk
                target.put(end, at: arena + GlibcHeapBuilder.arenaTop)
            }
        }
    }

    public var liveChunks: [GlibcHeapBuilder.Chunk] { chunks.filter { $0.state == .inUse } }
}
