import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// Every in-use heap block as a row of parallel arrays indexed by object number: the nodes of the
/// object graph. No object per node, so ten million blocks cost tens of bytes each.
public struct ObjectTable {
    /// User addresses, ascending (object number order).
    public let addresses: BlockAddresses
    /// Block sizes as the allocator counts them (glibc: the chunk, header included).
    public let sizes: BlockSizes
    /// Bytes of each size the program cannot use: `usableSize` is the size less this.
    public let overhead: UInt64
    /// Index into `types`; 0 is the untyped `<malloc>` bucket. A name may have several types
    /// (closure contexts, boxes: one per metadata, `SwiftObjectRecognizer`).
    public let typeIndices: TypeIndices
    public let types: [SwiftObjectRecognizer.TypeEntry]
    /// Memory the allocator owns (`HeapBlocks.ownedRanges`): never a root.
    public let allocatorRanges: [Range<UInt64>]

    public var count: Int { addresses.count }

    public init(heap: HeapBlocks, recognizer: SwiftObjectRecognizer, progress: ProgressReporter? = nil) {
        var typeIndices = TypeIndices(count: heap.count)
        let total = UInt64(heap.count)
        // An object with weak references keeps its counts in a side table, a block of its own: the
        // objects whose count word says so are noted on the way (the word shares the header's cache
        // line; a second pass over ten million headers would read them all again).
        var withSideTables: [UInt64] = []
        var window = MemoryWindow(source: recognizer.source)
        let addresses = heap.addresses, sizes = heap.sizes
        if let screened = heap.screened, screened.count == heap.count {
            // The walk screened every header as it passed: only the blocks it kept are looked at,
            // from their first word as it saw it, and no header is read again but a side table's
            // holder's. The recognizer makes each verdict at the same block as the pass below;
            // after that, per first word, its type and the bytes a block needs for it are kept here.
            let unknown = Int32.min
            var knownType = [Int32](repeating: unknown, count: screened.metadata.count + 1)
            var knownSize = [UInt64](repeating: 0, count: screened.metadata.count + 1)
            // Ten million rows: the columns are read and written through their stored rows, with
            // no check per row of the arrays' sharing.
            let mallocType = recognizer.mallocType
            typeIndices.setRows { types in
                var wideTypes: [(row: Int, type: Int32)] = []
                screened.rows.withUnsafeBufferPointer { rows in
                    sizes.withRows { sizes in
                        for index in 0..<heap.count {
                            let row = rows[index]
                            if index & 0xffff == 0 { progress?.update("recognising objects", done: UInt64(index), total: total, unit: .items) }
                            guard row != 0 else { continue }
                            let number = Int(row & ~ScreenedHeaders.sideTableFlag)
                            let usable = sizes[index] &- heap.overhead
                            let type: Int32
                            if knownType[number] != unknown {
                                type = usable >= knownSize[number] ? knownType[number] : mallocType
                            } else {
                                let metadata = screened.metadata[number - 1]
                                type = recognizer.classify(addresses[index], usableSize: usable, metadata: metadata)
                                // Error boxes are typed by what each holds: asked again every time.
                                if let verdict = recognizer.verdict(on: metadata), !verdict.perBlock {
                                    knownType[number] = verdict.type
                                    knownSize[number] = verdict.minimumSize
                                }
                            }
                            guard type != mallocType else { continue }
                            if type >= 0 && type < Int32(UInt16.max) { types[index] = UInt16(type) } else { wideTypes.append((index, type)) }
                            if row & ScreenedHeaders.sideTableFlag != 0,
                               let word = window.word(addresses[index] + 8), RefCountWord(raw: word).usesSideTable {
                                withSideTables.append(RefCountWord(raw: word).sideTable)
                            }
                        }
                    }
                }
                return wideTypes
            }
        } else {
            for index in 0..<heap.count {
                let address = addresses[index]
                let type = recognizer.classify(address, usableSize: sizes[index] &- heap.overhead)
                typeIndices[index] = type
                if type != recognizer.mallocType, let word = window.word(address + 8), RefCountWord(raw: word).usesSideTable {
                    withSideTables.append(RefCountWord(raw: word).sideTable)
                }
                if index & 0xffff == 0 { progress?.update("recognising objects", done: UInt64(index), total: total, unit: .items) }
            }
        }
        self.addresses = heap.addresses
        self.sizes = heap.sizes
        self.overhead = heap.overhead
        // Spans and extents come by the thousand, mostly adjacent: merged, they are a few ranges.
        var merged: [Range<UInt64>] = []
        for range in heap.ownedRanges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = merged.last, range.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        self.allocatorRanges = merged
        var sideTable: Int32? = nil
        for address in withSideTables {
            guard let table = heap.addresses.index(of: address), typeIndices[table] == recognizer.mallocType else { continue }
            if sideTable == nil { sideTable = recognizer.sideTableType() }
            typeIndices[table] = sideTable!
        }
        if !heap.internalBlocks.isEmpty {
            let ownType = recognizer.allocatorType(heap.internalName)
            for address in heap.internalBlocks {
                if let row = heap.addresses.index(of: address) { typeIndices[row] = ownType }
            }
        }
        self.typeIndices = typeIndices
        self.types = recognizer.types
    }

    /// Reports show one row per type name, while closure contexts of the same captures are types
    /// of their own (their layouts may differ): each name's first type, and each type's row.
    public var rowsByName: (firstTypes: [Int], rowOfType: [Int]) {
        var firstTypes: [Int] = []
        var rowOfName: [String: Int] = [:]
        let rowOfType = types.indices.map { type -> Int in
            if let row = rowOfName[types[type].name] { return row }
            rowOfName[types[type].name] = firstTypes.count
            firstTypes.append(type)
            return firstTypes.count - 1
        }
        return (firstTypes, rowOfType)
    }

    /// The objects of the types of one kind, in order (none, without a pass, when no type is of it).
    public func objects(ofKind kind: HeapObjectKind) -> [Int] {
        let wanted = types.map { $0.kind == kind }
        guard wanted.contains(true) else { return [] }
        return (0..<count).filter { wanted[Int(typeIndices[$0])] }
    }

    /// The bytes of block `index` the program can use.
    @inline(__always)
    public func usableSize(_ index: Int) -> UInt64 { sizes[index] &- overhead }

    /// The first object at or after `address`.
    public func firstObject(atOrAfter address: UInt64) -> Int? {
        let index = addresses.lowerBound(address)
        return index < count ? index : nil
    }

    /// The object whose block holds `address` (interior pointers included).
    public func object(containing address: UInt64) -> Int? {
        let after = addresses.upperBound(address)
        guard after > 0 else { return nil }
        let index = after - 1
        // As a distance from the block's start: the block's end may lie past 2^64 in a damaged core.
        return address - addresses[index] < usableSize(index) ? index : nil
    }
}
