import SwrefImages
import SwrefMemory
import SwrefSupport

/// The heap of an allocator swref does not know, approximated: Swift objects found by their
/// headers in writable anonymous memory — a first word that is class, closure or box metadata the
/// recognizer validates, and a second that is a live reference count (an object being deinited is
/// left out). A block runs from its header to the next one found (or the mapping's end), at least
/// its instance size and at most 1 MiB beyond it: tail-allocated storage (an array's elements) has
/// no size in its metadata, and scanning too far keeps stale references alive where scanning too
/// little would report false leaks. Blocks that are not Swift objects are not counted at all.
public struct SwiftHeaderScan {
    public let source: MemorySource
    public let recognizer: SwiftObjectRecognizer

    public init(source: MemorySource, recognizer: SwiftObjectRecognizer) {
        self.source = source
        self.recognizer = recognizer
    }

    public func walk() -> HeapBlocks {
        var blocks = HeapBlocks(allocator: "no allocator walk", overhead: 0,
                                coverage: .approximate("Swift objects found by their headers; other blocks not counted"))
        var window = MemoryWindow(source: source)
        var previousSize: UInt64 = 0
        // `[heap]` too: allocators that grow the heap with sbrk (tcmalloc) keep their blocks there.
        for region in source.memoryMap.regions where (region.isAnonymous || region.path == "[heap]") && region.readable && region.writable {
            // Objects are 16-byte aligned under every allocator swref has met.
            var address = (region.start &+ 15) & ~15
            while address < region.end && region.end - address >= 16 {
                guard window.word(address &+ 8) != nil else { break }
                if let size = recognizer.headerObjectSize(address, limit: region.end - address) {
                    if let last = blocks.addresses.last, last >= region.start { extend(&blocks, to: address, minimum: previousSize) }
                    blocks.addresses.append(address)
                    blocks.sizes.append(size)
                    previousSize = size
                    address = address &+ ((size &+ 15) & ~15)
                    continue
                }
                address &+= 16
            }
            if let last = blocks.addresses.last, last >= region.start { extend(&blocks, to: region.end, minimum: previousSize) }
        }
        return blocks
    }

    private func extend(_ blocks: inout HeapBlocks, to end: UInt64, minimum: UInt64) {
        let index = blocks.count - 1
        let span = end &- blocks.addresses[index]
        blocks.sizes[index] = max(minimum, min(span, minimum &+ (1 << 20)))
    }
}
