/// The heap of an allocator swref does not know, approximated: Swift objects found by their
/// headers in writable anonymous memory — a first word that is class, closure or box metadata the
/// recognizer validates, and a second that is a live reference count (an object being deinited is
/// left out). Sizes come from the metadata (a class's instance size), so tail-allocated storage is
/// counted by its header only, and blocks that are not Swift objects are not counted at all.
public struct SwiftHeaderScan {
    let source: MemorySource
    let recognizer: SwiftObjectRecognizer

    public init(source: MemorySource, recognizer: SwiftObjectRecognizer) {
        self.source = source
        self.recognizer = recognizer
    }

    public func walk() -> HeapBlocks {
        var blocks = HeapBlocks(allocator: "Swift object headers", overhead: 0,
                                coverage: .approximate("no allocator walk; Swift objects found by their headers, sizes from their metadata, other blocks not counted"))
        var window = MemoryWindow(source: source)
        for region in source.memoryMap.regions where region.isAnonymous && region.readable && region.writable {
            // Objects are 16-byte aligned under every allocator swref has met.
            var address = (region.start &+ 15) & ~15
            while address < region.end && region.end - address >= 16 {
                guard let count = window.word(address &+ 8) else { break }
                let refCount = RefCountWord(raw: count)
                // A cheap look at the count word first: random data rarely passes it.
                if !refCount.isDeiniting, refCount.isImmortal || refCount.usesSideTable || (count >> 63 == 0 && refCount.unownedCount >= 1),
                   let size = recognizer.headerObjectSize(address, limit: region.end - address) {
                    blocks.addresses.append(address)
                    blocks.sizes.append(size)
                    address = address &+ ((size &+ 15) & ~15)
                    continue
                }
                address &+= 16
            }
        }
        return blocks
    }
}
