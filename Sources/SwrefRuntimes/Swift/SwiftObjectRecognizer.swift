import CSwrefSystem
import SwrefImages
import SwrefMemory
import SwrefSupport

/// Decides whether a malloc block holds a Swift heap object, and of which type.
///
/// A block is a Swift object when its first word is metadata that passes validation and its
/// second word is a plausible reference count. Verdicts on metadata are cached: a heap holds
/// millions of objects but few thousand types.
public final class SwiftObjectRecognizer {
    public struct TypeEntry: Sendable {
        public var name: String
        public var kind: HeapObjectKind
        public var metadata: UInt64
    }

    private struct Verdict {
        var typeIndex: Int32   // -1: not Swift metadata
        var minimumSize: UInt64
        /// Runtime blocks recognised by their first word (slabs, queues) have no reference count.
        var hasRefCount = true
        /// Error boxes share one metadata: the type is the boxed value's (`errorBoxType`).
        var isErrorBox = false
    }

    public let source: MemorySource
    public let images: ImageList
    public let reflection: ReflectionContext?
    public private(set) var types: [TypeEntry] = []
    private var verdicts: [UInt64: Verdict] = [:]
    private var window: MemoryWindow
    /// The last few verdicts: neighbouring blocks are often of the same few types.
    private var recent: [(metadata: UInt64, verdict: Verdict)] = []
    private var typeByName: [String: Int32] = [:]

    /// The type index used for blocks that are not Swift objects.
    public let mallocType: Int32 = 0

    /// What the first word of every task allocator slab points to (from libswift_Concurrency's
    /// debug variable), 0 when the process has no concurrency runtime.
    private let slabMetadata: UInt64
    private var slabType: Int32 = -1
    /// libdispatch's queue vtables (serial, concurrent): the first word of every queue.
    private let queueVtables: [UInt64]
    private var queueType: Int32 = -1
    /// The first half of `classify`, for a heap walk to run on each block while its header is in cache.
    public let headerScreen: HeaderScreen

    public init(source: MemorySource, images: ImageList, reflection: ReflectionContext?) {
        self.source = source
        self.images = images
        self.reflection = reflection
        window = MemoryWindow(source: source)
        slabMetadata = images.address(ofSymbol: "_swift_concurrency_debug_asyncTaskSlabMetadata").flatMap { source.readWord($0) } ?? 0
        queueVtables = DispatchQueueLayout.vtableSymbols.compactMap { images.address(ofSymbol: $0) }
        headerScreen = HeaderScreen(source: source, slabMetadata: slabMetadata,
                                    queueVtables: (queueVtables.first ?? 0, queueVtables.dropFirst().first ?? 0))
        types.append(TypeEntry(name: "<malloc>", kind: .malloc, metadata: 0))
    }

    /// The type of the object at `address` in a block of `usableSize` bytes, or `mallocType`.
    public func classify(_ address: UInt64, usableSize: UInt64) -> Int32 {
        guard let screened = headerScreen.screen(address, usableSize: usableSize, window: &window) else { return mallocType }
        return classify(address, usableSize: usableSize, metadata: screened.metadata)
    }

    /// The verdict `classify` made on a first word, once it has made one: the type (`mallocType`
    /// when none), the bytes a block needs to be of it, and whether the block must be looked at
    /// again (an error box is typed by the value it holds).
    public func verdict(on metadata: UInt64) -> (type: Int32, minimumSize: UInt64, perBlock: Bool)? {
        guard let verdict = verdicts[metadata] else { return nil }
        guard verdict.typeIndex > 0 else { return (mallocType, 0, false) }
        return (verdict.typeIndex, verdict.minimumSize, verdict.isErrorBox)
    }

    /// The second half of `classify`, for a block whose first word `HeaderScreen.screen` gave.
    public func classify(_ address: UInt64, usableSize: UInt64, metadata: UInt64) -> Int32 {
        var verdict: Verdict
        if let hit = recent.first(where: { $0.metadata == metadata }) {
            verdict = hit.verdict
        } else {
            if let cached = verdicts[metadata] {
                verdict = cached
            } else {
                verdict = validate(metadata: metadata, sample: address)
                verdicts[metadata] = verdict
            }
            if recent.count == 4 { recent.removeFirst() }
            recent.append((metadata, verdict))
        }
        // The count word was checked above for every verdict that has one (all but slabs and queues).
        guard verdict.typeIndex > 0, usableSize >= verdict.minimumSize else { return mallocType }
        return verdict.isErrorBox ? errorBoxType(address, usableSize: usableSize, unnamed: verdict.typeIndex) : verdict.typeIndex
    }

    /// Per boxed type's metadata: the type of its error boxes and the bytes a box needs to hold the value.
    private var errorBoxTypes: [UInt64: (type: Int32, minimumSize: UInt64)] = [:]

    /// The type of the error box at `address`: named by the value it boxes, so that it is laid out
    /// by that value's type (`ObjectLayouts`); `unnamed` when the boxed type cannot be read, or
    /// when the block is too small for its value.
    private func errorBoxType(_ address: UInt64, usableSize: UInt64, unnamed: Int32) -> Int32 {
        guard let boxed = window.word(address &+ SwiftErrorLayout.valueType), boxed != 0, boxed & 7 == 0 else { return unnamed }
        if errorBoxTypes[boxed] == nil {
            var entry = (type: unnamed, minimumSize: UInt64(0))
            // Only metadata that lies in mapped memory is handed to the reflection library.
            if source.memoryMap.region(containing: boxed) != nil, let reflection, let typeRef = reflection.typeRef(forMetadata: boxed),
               let name = reflection.name(of: typeRef), let info = reflection.info(of: typeRef),
               let offset = SwiftErrorLayout.valueOffset(alignment: Int(info.Alignment)) {
                entry = (intern(SwiftErrorLayout.typeName(boxed: name), .error, types[Int(unnamed)].metadata), offset &+ UInt64(info.Size))
            }
            errorBoxTypes[boxed] = entry
        }
        guard let entry = errorBoxTypes[boxed], usableSize >= entry.minimumSize else { return unnamed }
        return entry.type
    }

    /// For a heap without an allocator walk: the size the object at `address` has by its metadata,
    /// when it is a Swift object whose count word is live (not deiniting); nil otherwise. Runtime blocks without a
    /// reference count (task slabs, queues) are not recognised this way.
    public func headerObjectSize(_ address: UInt64, limit: UInt64) -> UInt64? {
        // The count word first: random data rarely passes it, and then never reaches the cache.
        guard let count = window.word(address &+ 8), !RefCountWord(raw: count).isDeiniting,
              RefCountWord(raw: count).isPlausible(in: source),
              let metadata = window.word(address), metadata != 0, metadata & 7 == 0,
              source.memoryMap.region(containing: metadata) != nil else { return nil }
        let verdict: Verdict
        if let cached = verdicts[metadata] {
            verdict = cached
        } else {
            verdict = validate(metadata: metadata, sample: address)
            verdicts[metadata] = verdict
        }
        guard verdict.typeIndex > 0, verdict.hasRefCount, verdict.minimumSize <= limit else { return nil }
        return verdict.minimumSize
    }

    private func inImage(_ address: UInt64) -> Bool {
        guard let region = source.memoryMap.region(containing: address) else { return false }
        return region.isFileBacked
    }

    private func validate(metadata: UInt64, sample: UInt64) -> Verdict {
        let invalid = Verdict(typeIndex: -1, minimumSize: 0)
        if metadata == slabMetadata {
            if slabType < 0 { slabType = intern("Swift task allocator slab", .taskSlab, metadata) }
            return Verdict(typeIndex: slabType, minimumSize: 16, hasRefCount: false)
        }
        if queueVtables.contains(metadata) {
            if queueType < 0 { queueType = intern("dispatch_queue_s", .dispatchQueue, metadata) }
            return Verdict(typeIndex: queueType, minimumSize: 16, hasRefCount: false)
        }
        guard let kind = source.readWord(metadata) else { return invalid }
        switch kind {
        case SwiftMetadataKind.classMetadata.rawValue:
            return validateClass(metadata) ?? invalid
        case SwiftMetadataKind.heapLocalVariable.rawValue:
            // Closure contexts and boxes: static metadata in an image, capture offset in the header.
            guard inImage(metadata), let offset = source.readUInt32(metadata + 8), offset >= 16, offset < 1 << 16 else {
                return invalid
            }
            let (name, kind) = contextName(sample: sample)
            return Verdict(typeIndex: intern(name, kind, metadata, ownLayout: true), minimumSize: UInt64(offset))
        case SwiftMetadataKind.heapGenericLocalVariable.rawValue:
            guard let offset = source.readUInt32(metadata + 8), offset >= 16, offset < 1 << 16,
                  let boxed = source.readWord(metadata + ClassMetadataLayout.genericBoxBoxedType), boxed & 7 == 0,
                  // Only metadata that lies in mapped memory is handed to the reflection library.
                  source.memoryMap.region(containing: boxed) != nil,
                  let boxedName = reflection?.typeName(forMetadata: boxed) else { return invalid }
            return Verdict(typeIndex: intern("box<\(boxedName)>", .box, metadata, ownLayout: true), minimumSize: UInt64(offset))
        case SwiftMetadataKind.errorObject.rawValue:
            guard inImage(metadata) else { return invalid }
            return Verdict(typeIndex: intern(SwiftErrorLayout.unnamedTypeName, .error, metadata), minimumSize: SwiftErrorLayout.header,
                           isErrorBox: true)
        case SwiftMetadataKind.task.rawValue:
            guard inImage(metadata) else { return invalid }
            return Verdict(typeIndex: intern("Swift.Task (async task)", .task, metadata), minimumSize: 16)
        case SwiftMetadataKind.job.rawValue:
            guard inImage(metadata) else { return invalid }
            return Verdict(typeIndex: intern("Swift.Job", .job, metadata), minimumSize: 16)
        default:
            return invalid
        }
    }

    private func validateClass(_ metadata: UInt64) -> Verdict? {
        guard let size = SwiftObjectRecognizer.classInstanceSize(metadata: metadata, source: source) else { return nil }
        let name = reflection?.typeName(forMetadata: metadata) ?? "<class metadata 0x\(String(metadata, radix: 16))>"
        return Verdict(typeIndex: intern(name, .classInstance, metadata), minimumSize: size)
    }

    /// The instance size of the Swift class whose metadata (kind 0, read by the caller) is at
    /// `metadata`: it uses Swift reference counting, its address point is 0, its size and alignment
    /// are sane and its nominal type descriptor, in an image, is a class's. Nil otherwise.
    public static func classInstanceSize(metadata: UInt64, source: MemorySource) -> UInt64? {
        guard let flags = source.readUInt32(metadata &+ ClassMetadataLayout.flags), flags & 0x2 != 0,
              source.readUInt32(metadata &+ ClassMetadataLayout.instanceAddressPoint) == 0,
              let size = source.readUInt32(metadata &+ ClassMetadataLayout.instanceSize), size >= 16, size < 1 << 28,
              let alignWord = source.readUInt32(metadata &+ ClassMetadataLayout.alignMask) else { return nil }
        let alignMask = alignWord & 0xffff
        guard alignMask & (alignMask + 1) == 0, alignMask < 4096,
              let descriptor = source.readWord(metadata &+ ClassMetadataLayout.descriptor),
              source.memoryMap.region(containing: descriptor)?.isFileBacked == true,
              let descriptorFlags = source.readUInt32(descriptor),
              descriptorFlags & 0x1f == ClassMetadataLayout.descriptorKindClass else { return nil }
        return UInt64(size)
    }

    /// Names a closure context by what it captures. Boxes (a captured `var`, an indirect enum
    /// payload) share the metadata kind; a context with exactly one capture is taken for a box.
    private func contextName(sample: UInt64) -> (String, HeapObjectKind) {
        guard let reflection, let info = reflection.instanceInfo(sample), info.Kind == SWREF_LAYOUT_CLOSURE_CONTEXT else {
            return ("closure context", .closureContext)
        }
        var captures: [String] = []
        for index in 0..<Int(min(info.NumFields, 16)) {
            guard let child = reflection.child(ofInstance: sample, index), child.TR != 0 else { continue }
            captures.append(reflection.name(of: child.TR) ?? "?")
        }
        if captures.count == 1 { return ("box<\(captures[0])>", .box) }
        return (captures.isEmpty ? "closure context" : "closure context (\(captures.joined(separator: ", ")))", .closureContext)
    }

    /// The type given to blocks that are the reference-count side table of an object.
    public func sideTableType() -> Int32 { intern("Swift side table", .sideTable, 0) }

    /// The type given to the allocator's own blocks (`HeapBlocks.internalBlocks`).
    public func allocatorType(_ name: String) -> Int32 { intern(name, .allocatorInternal, 0) }

    /// The type index for `name`. `ownLayout`: a type of its own for this metadata even when the
    /// name is taken — closure contexts and boxes are named by what they capture, and two closures
    /// capturing the same types may lay them out differently (a generic closure's context starts
    /// with its bindings), while their layout is read once per type index.
    private func intern(_ name: String, _ kind: HeapObjectKind, _ metadata: UInt64, ownLayout: Bool = false) -> Int32 {
        if !ownLayout, let existing = typeByName[name] { return existing }
        let index = Int32(types.count)
        types.append(TypeEntry(name: name, kind: kind, metadata: metadata))
        if typeByName[name] == nil { typeByName[name] = index }
        return index
    }
}

/// The first half of `SwiftObjectRecognizer.classify`: what a block's first two words alone say,
/// with no verdict looked up or made. A value, so that a heap walk runs it on its own memory
/// window, as it passes each block, without a call into the recognizer.
public struct HeaderScreen {
    let source: MemorySource
    let slabMetadata: UInt64
    /// libdispatch's queue vtables, 0 for one not found (a first word of 0 never gets this far).
    let queueVtables: (UInt64, UInt64)

    /// Nil when the block is no Swift object by its first two words (`classify` gives `mallocType`);
    /// else its first word, for `classify(_:usableSize:metadata:)`, and whether its count word
    /// points to a side table.
    @inline(__always)
    public func screen(_ address: UInt64, usableSize: UInt64, window: inout MemoryWindow) -> (metadata: UInt64, sideTable: Bool)? {
        guard usableSize >= 16, let metadata = window.word(address), metadata != 0, metadata & 7 == 0 else {
            return nil
        }
        let word = window.word(address &+ 8)
        // The count word first, for blocks that must have one: a block that is no Swift object
        // rarely passes it, and its first word (under tcmalloc and mimalloc, a stale free-list
        // pointer, different in every block) then never reaches the verdict cache.
        if metadata != slabMetadata && metadata != queueVtables.0 && metadata != queueVtables.1 {
            guard let word, RefCountWord(raw: word).isPlausible(in: source) else { return nil }
        }
        return (metadata, word.map { RefCountWord(raw: $0).usesSideTable } ?? false)
    }
}
