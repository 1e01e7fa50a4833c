import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefTestSupport
import XCTest

/// Swift object headers and class metadata laid out by hand: the count word's encodings, which
/// blocks the recognizer takes for objects, the header scan, and the class chain's field offsets.
final class SwiftObjectTests: XCTestCase {
    let noImages = ImageList(memoryMap: MemoryMap(regions: []))

    func testRefCountWordEncodings() {
        let one = RefCountWord(raw: SwiftImageBuilder.refCount())
        XCTAssertEqual(one.strongCount, 1)
        XCTAssertEqual(one.unownedCount, 1)
        XCTAssertFalse(one.isImmortal || one.usesSideTable || one.isDeiniting)
        let many = RefCountWord(raw: SwiftImageBuilder.refCount(strong: 1000, unowned: 3))
        XCTAssertEqual(many.strongCount, 1000)
        XCTAssertEqual(many.unownedCount, 3)
        XCTAssertTrue(RefCountWord(raw: SwiftImageBuilder.immortalRefCount).isImmortal)
        XCTAssertFalse(RefCountWord(raw: SwiftImageBuilder.immortalRefCount).usesSideTable, "immortal is not a side table")
        let table = RefCountWord(raw: SwiftImageBuilder.sideTableRefCount(0x5555_6666_7770))
        XCTAssertTrue(table.usesSideTable)
        XCTAssertEqual(table.sideTable, 0x5555_6666_7770)
        XCTAssertTrue(RefCountWord(raw: SwiftImageBuilder.deinitingRefCount()).isDeiniting)
    }

    func testPlausibleCountWords() {
        let target = InMemoryTarget()
        target.map(0x10000, size: 0x1000)
        XCTAssertTrue(RefCountWord(raw: SwiftImageBuilder.refCount()).isPlausible(in: target))
        XCTAssertTrue(RefCountWord(raw: SwiftImageBuilder.immortalRefCount).isPlausible(in: target))
        XCTAssertTrue(RefCountWord(raw: SwiftImageBuilder.sideTableRefCount(0x10100)).isPlausible(in: target))
        XCTAssertFalse(RefCountWord(raw: SwiftImageBuilder.sideTableRefCount(0x20100)).isPlausible(in: target), "table unmapped")
        XCTAssertFalse(RefCountWord(raw: SwiftImageBuilder.sideTableRefCount(0x10108)).isPlausible(in: target), "table misaligned")
        XCTAssertFalse(RefCountWord(raw: 0).isPlausible(in: target), "no unowned count: freed")
        XCTAssertFalse(RefCountWord(raw: 1 << 63 | 2).isPlausible(in: target), "slow RC without a side table")
    }

    func makeTarget() -> (InMemoryTarget, SwiftImageBuilder, heap: UInt64) {
        let target = InMemoryTarget()
        let image = SwiftImageBuilder(target: target)
        target.map(0x5555_0000_0000, size: 0x10000)      // an anonymous heap
        return (target, image, 0x5555_0000_0000)
    }

    func testRecognizerTakesValidClassInstancesOnly() {
        let (target, image, heap) = makeTarget()
        let point = image.makeClass(instanceSize: 32)
        let node = image.makeClass(instanceSize: 48)
        image.writeObject(at: heap, metadata: point.metadata)
        image.writeObject(at: heap + 0x40, metadata: node.metadata, refCount: SwiftImageBuilder.refCount(strong: 7))
        image.writeObject(at: heap + 0x80, metadata: point.metadata, refCount: 0)      // a dead count word
        image.writeObject(at: heap + 0xc0, metadata: heap + 0x800)                      // "metadata" in the heap: descriptor 0
        image.writeObject(at: heap + 0x100, metadata: point.metadata + 4)               // misaligned
        image.writeObject(at: heap + 0x140, metadata: node.metadata)
        let recognizer = SwiftObjectRecognizer(source: target, images: noImages, reflection: nil)
        let pointType = recognizer.classify(heap, usableSize: 40)
        let nodeType = recognizer.classify(heap + 0x40, usableSize: 56)
        XCTAssertNotEqual(pointType, recognizer.mallocType)
        XCTAssertNotEqual(nodeType, recognizer.mallocType)
        XCTAssertNotEqual(pointType, nodeType)
        XCTAssertEqual(recognizer.types[Int(pointType)].metadata, point.metadata)
        XCTAssertEqual(recognizer.types[Int(pointType)].kind, .classInstance)
        XCTAssertEqual(recognizer.classify(heap + 0x80, usableSize: 40), recognizer.mallocType, "count word says freed")
        XCTAssertEqual(recognizer.classify(heap + 0xc0, usableSize: 40), recognizer.mallocType, "metadata not validated")
        XCTAssertEqual(recognizer.classify(heap + 0x100, usableSize: 40), recognizer.mallocType, "misaligned metadata")
        XCTAssertEqual(recognizer.classify(heap + 0x140, usableSize: 40), recognizer.mallocType, "block smaller than the instance")
        XCTAssertEqual(recognizer.classify(heap, usableSize: 8), recognizer.mallocType, "no room for a header")
        XCTAssertEqual(recognizer.classify(heap + 0x40, usableSize: 56), nodeType, "the verdict is cached")
    }

    /// Metadata that fails one check each is never a class.
    func testRecognizerRejectsBrokenMetadata() {
        let (target, image, heap) = makeTarget()
        let breakages: [(String, (SwiftImageBuilder.ClassType) -> Void)] = [
            ("no Swift refcounting", { target.put32(0, at: $0.metadata + 16) }),
            ("address point", { target.put32(8, at: $0.metadata + 20) }),
            ("instance size 8", { target.put32(8, at: $0.metadata + 24) }),
            ("instance size 2^28", { target.put32(1 << 28, at: $0.metadata + 24) }),
            ("align mask 5", { target.put16(5, at: $0.metadata + 28) }),
            ("descriptor kind", { target.put32(17, at: $0.descriptor) }),
            ("descriptor outside images", { target.put(heap + 0x8000, at: $0.metadata + 40) }),
            ("descriptor at the top", { target.put(.max - 3, at: $0.metadata + 40) }),
            ("kind", { target.put(0x7ff, at: $0.metadata) }),
        ]
        for (index, (name, breakage)) in breakages.enumerated() {
            let type = image.makeClass(instanceSize: 32)
            breakage(type)
            let object = heap + UInt64(index) * 0x40
            image.writeObject(at: object, metadata: type.metadata)
            let recognizer = SwiftObjectRecognizer(source: target, images: noImages, reflection: nil)
            XCTAssertEqual(recognizer.classify(object, usableSize: 40), recognizer.mallocType, name)
        }
    }

    func testClosureContextsNeedMetadataInAnImage() {
        let (target, image, heap) = makeTarget()
        let context = image.makeContextMetadata(captureOffset: 32)
        image.writeObject(at: heap, metadata: context)
        // The same words copied into the heap are not an image's metadata.
        target.put(words: [0x400, 32], at: heap + 0x1000)
        image.writeObject(at: heap + 0x40, metadata: heap + 0x1000)
        let recognizer = SwiftObjectRecognizer(source: target, images: noImages, reflection: nil)
        let type = recognizer.classify(heap, usableSize: 40)
        XCTAssertEqual(recognizer.types[Int(type)].kind, .closureContext)
        XCTAssertEqual(recognizer.classify(heap, usableSize: 24), recognizer.mallocType, "smaller than its captures' offset")
        XCTAssertEqual(recognizer.classify(heap + 0x40, usableSize: 40), recognizer.mallocType)
    }

    /// Contexts are named by their captures, and two closures can capture the same types at
    /// different offsets: each context metadata is a type of its own, so that each is laid out
    /// from its own sample. Classes of one name stay one type.
    func testEachContextMetadataIsATypeOfItsOwn() {
        let (target, image, heap) = makeTarget()
        let plain = image.makeContextMetadata(captureOffset: 16), generic = image.makeContextMetadata(captureOffset: 24)
        image.writeObject(at: heap, metadata: plain)
        image.writeObject(at: heap + 0x40, metadata: generic)
        image.writeObject(at: heap + 0x80, metadata: plain)
        let recognizer = SwiftObjectRecognizer(source: target, images: noImages, reflection: nil)
        let types = [heap, heap + 0x40, heap + 0x80].map { recognizer.classify($0, usableSize: 40) }
        XCTAssertEqual(types.map { recognizer.types[Int($0)].name }, ["closure context", "closure context", "closure context"])
        XCTAssertNotEqual(types[0], types[1], "another metadata, another layout")
        XCTAssertEqual(types[0], types[2], "the same metadata")
        XCTAssertEqual(recognizer.types[Int(types[1])].metadata, generic)
    }

    /// Without an allocator walk, objects are found by their headers: each block runs to the next
    /// header (at least its instance size), deiniting objects and garbage are left out.
    func testHeaderScanFindsObjectsByTheirHeaders() {
        let (target, image, heap) = makeTarget()
        let small = image.makeClass(instanceSize: 32)
        let large = image.makeClass(instanceSize: 80)
        image.writeObject(at: heap + 0x100, metadata: small.metadata)
        image.writeObject(at: heap + 0x120, metadata: large.metadata)
        image.writeObject(at: heap + 0x200, metadata: small.metadata, refCount: SwiftImageBuilder.deinitingRefCount())
        image.writeObject(at: heap + 0x300, metadata: small.metadata, refCount: SwiftImageBuilder.refCount(strong: 3))
        // An immortal count word has every bit set, the deiniting bit too: static objects, never heap ones.
        image.writeObject(at: heap + 0x380, metadata: small.metadata, refCount: SwiftImageBuilder.immortalRefCount)
        target.put(words: [0xdead_beef_0000, 3], at: heap + 0x400)                   // garbage with a plausible count
        let recognizer = SwiftObjectRecognizer(source: target, images: noImages, reflection: nil)
        XCTAssertEqual(recognizer.headerObjectSize(heap + 0x100, limit: 1000), 32)
        XCTAssertNil(recognizer.headerObjectSize(heap + 0x120, limit: 64), "past the limit")
        let blocks = SwiftHeaderScan(source: target, recognizer: recognizer).walk()
        guard case .approximate = blocks.coverage else { return XCTFail("coverage \(blocks.coverage)") }
        XCTAssertEqual(Array(blocks.addresses), [heap + 0x100, heap + 0x120, heap + 0x300])
        // A block runs to the next header; the last one to the mapping's end, at most 1 MiB past its size.
        XCTAssertEqual(Array(blocks.sizes), [0x20, 0x1e0, 0x10000 - 0x300])
    }

    func testClassChainReadsFieldOffsetsAndNamesRootFirst() {
        let (target, image, _) = makeTarget()
        let base = image.makeClass(instanceSize: 32, fields: [("id", 16), ("owner", 24)])
        let derived = image.makeClass(instanceSize: 56, fields: [("left", 32), ("right", 40), ("tag", 48)],
                                      superclass: base.metadata, vectorWords: 12)
        guard let chain = ClassChain(metadata: derived.metadata, source: target) else { return XCTFail("no chain") }
        XCTAssertEqual(chain.levels.map(\.metadata), [base.metadata, derived.metadata])
        XCTAssertEqual(chain.levels.map(\.fieldOffsets), [[16, 24], [32, 40, 48]])
        XCTAssertEqual(chain.levels.map(\.fieldNames), [["id", "owner"], ["left", "right", "tag"]])
    }

    func testClassChainRefusesLoopsAndNonsense() {
        let (target, image, _) = makeTarget()
        let a = image.makeClass(instanceSize: 32, fields: [("x", 16)])
        let b = image.makeClass(instanceSize: 32, fields: [("y", 24)], superclass: a.metadata)
        target.put(b.metadata, at: a.metadata + 8)                     // a's superclass is b: a loop
        XCTAssertNil(ClassChain(metadata: b.metadata, source: target))
        let c = image.makeClass(instanceSize: 32, fields: [("z", 16)])
        target.put(1 << 40, at: c.metadata + 80)                        // an offset no instance has
        XCTAssertNil(ClassChain(metadata: c.metadata, source: target))
        let d = image.makeClass(instanceSize: 32, fields: [("w", 16)])
        target.put32(UInt32.max, at: d.descriptor + 40)                 // the vector far past the metadata
        XCTAssertNil(ClassChain(metadata: d.metadata, source: target))
        let e = image.makeClass(instanceSize: 32)
        target.put32(1 << 20, at: e.descriptor + 36)                    // a million fields
        XCTAssertNil(ClassChain(metadata: e.metadata, source: target))
        for hostile: UInt64 in [UInt64.max & ~7, 0xFFFF_FFFF_FFFF_FFF8 - 40, 1 << 63] {
            XCTAssertNil(ClassChain(metadata: hostile, source: target))
            let f = image.makeClass(instanceSize: 32, fields: [("v", 16)])
            target.put(hostile, at: f.metadata + 40)                    // descriptor
            XCTAssertNil(ClassChain(metadata: f.metadata, source: target))
        }
    }

    /// No allocator is recognised (no libc among the images): the choice falls back to the header
    /// scan, says why, and calls the heap approximate; without a Swift runtime it reads nothing.
    func testAllocatorChoiceFallsBackToTheHeaderScan() {
        let (target, image, heap) = makeTarget()
        let type = image.makeClass(instanceSize: 48)
        image.writeObject(at: heap + 0x40, metadata: type.metadata)
        image.writeObject(at: heap + 0x400, metadata: type.metadata)
        let recognizer = SwiftObjectRecognizer(source: target, images: noImages, reflection: nil)
        let blocks = AllocatorChoice.walk(source: target, images: noImages, recognizer: recognizer)
        guard case .approximate = blocks.coverage else { return XCTFail("coverage \(blocks.coverage)") }
        XCTAssertEqual(Array(blocks.addresses), [heap + 0x40, heap + 0x400])
        XCTAssertTrue(blocks.notes.contains { $0.contains("found by their headers") }, "\(blocks.notes)")
        let nothing = AllocatorChoice.walk(source: target, images: noImages, recognizer: nil)
        guard case .unread = nothing.coverage else { return XCTFail("coverage \(nothing.coverage)") }
        XCTAssertEqual(nothing.count, 0)
    }

    /// Object headers in a mapping that ends at the top of the address space, the last one's
    /// instance size running past it: the scan ends without a trap.
    func testHeaderScanAtTheTopOfTheAddressSpace() {
        let target = InMemoryTarget()
        let image = SwiftImageBuilder(target: target)
        let top: UInt64 = 0xFFFF_FFFF_FFFF_F000
        target.map(top, size: UInt64.max - top)
        let small = image.makeClass(instanceSize: 32)
        let huge = image.makeClass(instanceSize: 0x0FFF_FFF0)
        image.writeObject(at: top + 0x100, metadata: small.metadata)
        image.writeObject(at: .max - 31, metadata: small.metadata)   // 32 bytes would end at 2^64 - 1 + 1
        image.writeObject(at: top + 0x800, metadata: huge.metadata)
        let recognizer = SwiftObjectRecognizer(source: target, images: noImages, reflection: nil)
        let blocks = SwiftHeaderScan(source: target, recognizer: recognizer).walk()
        XCTAssertEqual(blocks.addresses.first, top + 0x100)
        XCTAssertFalse(blocks.addresses.contains(top + 0x800), "larger than what is left of the mapping")
        for (address, size) in zip(blocks.addresses, blocks.sizes) {
            XCTAssertLessThanOrEqual(size, UInt64.max - address, "0x\(String(address, radix: 16)) + \(size) stays below 2^64")
        }
    }
}
