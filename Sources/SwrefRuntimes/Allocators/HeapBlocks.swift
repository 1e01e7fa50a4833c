import SwrefImages
import SwrefMemory
import SwrefSupport

/// Every block an allocator has handed out and the program has not freed, as found from outside:
/// the nodes the object table is built from. Whichever allocator produced it, the rest of the
/// analysis (objects, graph, leaks, dominators, reports) sees only this.
public struct HeapBlocks {
    /// How much of the heap the walk saw: a heap swref could not read is never a clean one.
    public enum Coverage: Equatable, Sendable {
        /// Every block the allocator holds for the program.
        case complete
        /// Some of the heap could not be walked (damaged metadata, an arena left out): the reason.
        case partial(String)
        /// No allocator walk: Swift objects found by their headers, sizes from their metadata;
        /// blocks that are not Swift objects are not counted.
        case approximate(String)
        /// Nothing was read: the reason.
        case unread(String)
    }

    /// The allocator, as printed in the summary line and the profile: `glibc malloc`, `jemalloc 5.3.0`.
    public var allocator: String
    /// User pointers of live blocks, ascending.
    public var addresses = BlockAddresses()
    /// Bytes each block counts for, parallel to `addresses`: what the allocator's own in-use figure
    /// counts (glibc: the chunk size, header included; the others: the usable size).
    public var sizes = BlockSizes()
    /// Bytes of each size that the program cannot use (glibc's 8-byte size field): usable = size − overhead.
    public var overhead: UInt64
    /// The blocks' headers as the walk screened them, parallel to `addresses` (glibc's walk, when
    /// given a recognizer): the object table classifies from them instead of reading every header again.
    public var screened: ScreenedHeaders?
    public var coverage: Coverage
    /// What went wrong or is worth knowing on the way; the walk goes on with what it has.
    public var notes: [String] = []
    /// Memory the allocator owns — its heaps, extents or segments, and its metadata — whether a live
    /// block sits there or not: never scanned as a root (free blocks keep stale pointers).
    public var ownedRanges: [Range<UInt64>] = []
    /// Live blocks that are the allocator's own (jemalloc's tcache stacks), by address, and the
    /// name they are counted under: counted, never scanned for references.
    public var internalBlocks: [UInt64] = []
    public var internalName = "allocator metadata"
    /// Allocator-specific counts for the curious and for tests (`arenas`, `mmapped`, `tcache`).
    public var counters: [String: Int] = [:]

    public init(allocator: String, overhead: UInt64, coverage: Coverage = .complete) {
        self.allocator = allocator
        self.overhead = overhead
        self.coverage = coverage
    }

    public var count: Int { addresses.count }
    public var totalBytes: UInt64 { sizes.reduce(0, &+) }

    /// The allocator and how much of its heap was read, for the summary line: `jemalloc 5.3.0`,
    /// `glibc malloc (partial: …)`.
    public var description: String {
        switch coverage {
        case .complete: return allocator
        case .partial(let why): return "\(allocator) (partial: \(why))"
        case .approximate(let why): return "\(allocator) (approximate: \(why))"
        case .unread(let why): return "\(allocator) (not read: \(why))"
        }
    }

    /// Puts the blocks in address order (walks that meet extents or segments out of order).
    public mutating func sortByAddress() {
        guard !zip(addresses, addresses.dropFirst()).allSatisfy({ $0 < $1 }) else { return }
        let order = addresses.indices.sorted { addresses[$0] < addresses[$1] }
        addresses = addresses.permuted(order)
        sizes = sizes.permuted(order)
        screened = screened?.permuted(order)
    }
}

/// One allocator's walk of the heap. `recognise` looks for the allocator in the target (its
/// library, or its code linked into the executable) and checks what it found before trusting it;
/// `walk` enumerates the live blocks.
public protocol HeapWalker {
    /// A walker for this target, or nil when the allocator is not the target's.
    static func recognise(source: MemorySource, images: ImageList) -> Self?
    func walk() -> HeapBlocks
}

extension HeapBlocks {
    /// The `heap` member of the JSON reports (docs/json-report.md).
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("allocator", .string(allocator))]
        switch coverage {
        case .complete: members.append(("coverage", .string("complete")))
        case .partial(let why): members += [("coverage", .string("partial")), ("reason", .string(why))]
        case .approximate(let why): members += [("coverage", .string("approximate")), ("reason", .string(why))]
        case .unread(let why): members += [("coverage", .string("unread")), ("reason", .string(why))]
        }
        members += [("blocks", .int(Int64(count))), ("bytes", .int(Int64(clamping: totalBytes)))]
        return .object(members)
    }
}
