import CSwrefSystem
import Glibc
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// Finds the references held in memory — inside objects, by their type layouts, or in untyped
/// memory, word by word — and names each edge the way the profile shows it.
public final class ReferenceScanner {
    public let source: MemorySource
    public let objects: ObjectTable
    public let layouts: ObjectLayouts
    public let symbolizer: Symbolizer
    public let names: FrameNames
    private var typeLabels: [Int32: UInt32] = [:]
    /// Per type: its layout as the hot loop reads it, once compiled.
    var compiled: [FrozenLayout?]
    let store: FrozenStore
    private var window: MemoryWindow
    private let index: AddressIndex

    /// How many objects ahead of the one scanned the scan asks for an object's first line.
    static let prefetchObjects = 8
    /// Pointer bits that can hold tags: x86_64 user addresses fit in 47 bits.
    public static let addressMask: UInt64 = 0x0000_7FFF_FFFF_FFFF
    public static let subObjects = "$sub_objects$"
    private let subObjectsLabel: UInt32
    private let sideTableLabel: UInt32
    /// Malloc blocks that hold a NIO ByteBuffer's bytes: network data by construction, never
    /// references. Scanning them word by word (their unused capacity above all, left as malloc
    /// gave it) finds only false references (see `ByteBufferStorage`).
    private var byteBufferBytes: Set<Int32> = []

    /// Name framework buffers by what they pin and show (RPC-framework-aware mode).
    public var frameworkMode = false
    /// Guards what scanning may add to while workers run: frame names, the symbolizer's and the
    /// layouts' caches. Shared with the workers; uncontended on a single thread.
    private let shared: SharedLock

    /// - Parameter index: the blocks' address index when built already (from the same blocks).
    public init(source: MemorySource, objects: ObjectTable, layouts: ObjectLayouts, symbolizer: Symbolizer, index: AddressIndex? = nil) {
        shared = SharedLock()
        self.source = source
        self.objects = objects
        self.layouts = layouts
        self.symbolizer = symbolizer
        names = FrameNames(objects: objects)
        compiled = Array(repeating: nil, count: objects.types.count)
        store = FrozenStore()
        window = MemoryWindow(source: source)
        self.index = index ?? AddressIndex(addresses: objects.addresses, sizes: objects.sizes, overhead: objects.overhead,
                                           memoryMap: source.memoryMap)
        subObjectsLabel = names.code(frame: ReferenceScanner.subObjects)
        sideTableLabel = names.code(frame: "$side_table")
        byteBufferBytes = findByteBufferBytes()
    }

    /// The blocks `NIOCore.ByteBuffer._Storage.bytes` points to, found before any scan: a scan
    /// in address order may meet the bytes before their storage object.
    private func findByteBufferBytes() -> Set<Int32> {
        guard let type = objects.types.firstIndex(where: { $0.name == ByteBufferStorage.storageTypeName }),
              let offset = layouts.fieldOffset(named: ByteBufferStorage.bytesField, metadata: objects.types[type].metadata) else { return [] }
        var blocks: Set<Int32> = []
        for object in 0..<objects.count where Int(objects.typeIndices[object]) == type {
            guard let word = source.readWord(objects.addresses[object] + UInt64(offset)), let block = target(of: word),
                  objects.types[Int(objects.typeIndices[Int(block)])].kind == .malloc else { continue }
            blocks.insert(block)
        }
        return blocks
    }

    /// A scanner for another thread: the same tables and caches, its own memory window. Layouts
    /// must all be compiled first (`compileAllLayouts`): that is the one step that is not locked.
    private init(workerOf main: ReferenceScanner) {
        source = main.source
        objects = main.objects
        layouts = main.layouts
        symbolizer = main.symbolizer
        names = main.names
        shared = main.shared
        // Frozen layouts hold no reference counts: sharing them costs the threads nothing.
        compiled = main.compiled
        store = main.store
        window = MemoryWindow(source: main.source)
        index = main.index
        subObjectsLabel = main.subObjectsLabel
        sideTableLabel = main.sideTableLabel
        byteBufferBytes = main.byteBufferBytes
        frameworkMode = main.frameworkMode
        pathTexts = main.pathTexts
        typeLabels = main.typeLabels
        dataCapacityOffset = main.dataCapacityOffset
    }

    /// Compiles the layout of every type that has objects, from its first object, as a serial scan
    /// would meet them.
    private func compileAllLayouts() {
        var done = [Bool](repeating: false, count: objects.types.count)
        for object in 0..<objects.count {
            let type = Int(objects.typeIndices[object])
            if done[type] { continue }
            done[type] = true
            _ = compiledLayout(type: Int32(type), sample: objects.addresses[object])
        }
        // The capacity offset of Data storage is looked up once, here, rather than under the lock.
        if frameworkMode, dataCapacityOffset == nil,
           let type = objects.types.firstIndex(where: { $0.name.hasSuffix(DataStorage.storageTypeSuffix) }) {
            dataCapacityOffset = layouts.fieldOffset(named: DataStorage.capacityField, metadata: objects.types[type].metadata) ?? -1
        }
    }

    /// The references of every object, as a graph; on two threads when the heap is large and the
    /// memory is a snapshot (its reads share no cache that matters; a core's fallback to files does).
    /// - Parameters:
    ///   - discarding: memory to give back each stretch of as soon as its objects are scanned, so
    ///     the copy shrinks while the graph grows. Only when nothing reads that memory again: the
    ///     roots are found already, and no framework buffer is being named (naming one reads the
    ///     storage object, which may lie behind).
    ///   - forced: 1 or 2 scanning threads instead of the scanner's choice (the tests compare both).
    public func buildGraph(progress: ProgressReporter? = nil, discarding: DiscardableMemory? = nil, threads forced: Int? = nil) -> ObjectGraph {
        let count = objects.count
        let snapshot = frameworkMode ? nil : discarding
        var threads = source.readsAreLocal && Parallel.splits(objects: count) ? 2 : 1
        if let forced, forced == 1 || forced == 2, count >= 2, source.readsAreLocal { threads = forced }
        // Layouts are compiled from memory (generic metadata lives in the heap too): all of them
        // first, before any of it is given back.
        if threads == 1 {
            if snapshot != nil { compileAllLayouts() }
            let everything = ScanPlan.Task(objects: 0..<count, floor: 0, ceiling: .max)
            return run(everything, progress: progress, discarding: snapshot)
        }
        // The runs of objects are planned on the second core while the layouts compile; how a large
        // object is cut depends on its layout.
        let planned = PlanBox()
        let objects = self.objects
        Parallel.run({ self.compileAllLayouts() }, { planned.plan = ScanPlan(objects: objects, threads: threads) })
        var plan = planned.plan!
        plan.cut(objects: objects) { self.pieces(of: $0) }
        let queue = TaskQueue(count: plan.tasks.count, lock: shared)
        let worker = ReferenceScanner(workerOf: self)
        let second = PartsBox()
        var parts: [(Int, ObjectGraph)] = []
        Parallel.run({
            var done = 0
            while let task = queue.take() {
                parts.append((task, run(plan.tasks[task], progress: nil, discarding: snapshot)))
                done += plan.tasks[task].objects.count
                progress?.update("walking references", done: UInt64(done), total: UInt64(count), unit: .items)
            }
        }, {
            while let task = queue.take() { second.parts.append((task, worker.run(plan.tasks[task], progress: nil, discarding: snapshot))) }
        })
        parts += second.parts
        parts.sort { $0.0 < $1.0 }
        return ObjectGraph(concatenating: parts.map(\.1))
    }

    /// Scans one task: its objects' references, or one piece of its one object's.
    /// - Parameter snapshot: give back its pages in the task's window once the objects in them are scanned.
    private func run(_ task: ScanPlan.Task, progress: ProgressReporter?, discarding snapshot: DiscardableMemory?) -> ObjectGraph {
        // Room for as many references as the task's objects have words (address space only): the
        // part's arrays then never grow by moving.
        let words = task.bytes / 8
        var graph = ObjectGraph(objectCount: task.objects.count, edges: Int(words))
        if let piece = task.piece {
            let index = task.objects.lowerBound
            references(of: index, piece: piece) { graph.add(target: $0, label: $1) }
            if piece.index == piece.count - 1 { graph.finishObject() }
            return graph
        }
        var given = task.floor
        for index in task.objects {
            // On a heap of large blocks each object is a cache and TLB miss of its own, which
            // asking ahead overlaps (3.9 GiB in 10 M blocks: graph 750 → 510 ms).
            let ahead = index + ReferenceScanner.prefetchObjects
            if ahead < task.objects.upperBound, let line = window.local(objects.addresses[ahead]) { swref_prefetch(line) }
            references(of: index) { graph.add(target: $0, label: $1) }
            graph.finishObject()
            if index & 0x3f == 0 {
                if index & 0xffff == 0 { progress?.update("walking references", done: UInt64(index), total: UInt64(objects.count), unit: .items) }
                // Objects are in address order: every page wholly below this object's chunk is scanned.
                // Given back by the MiB on big heaps (a system call each), by 64 KiB on small ones.
                if let snapshot {
                    let scanned = min(objects.addresses[index] - MallocLayout.chunkHeader, task.ceiling) & ~4095
                    if scanned >= given + (objects.count >= 200_000 ? 1 << 20 : 64 << 10) {
                        snapshot.discard(given..<scanned)
                        given = scanned
                    }
                }
            }
        }
        if let snapshot, task.ceiling != .max, task.ceiling > given { snapshot.discard(given..<task.ceiling) }
        return graph
    }

    /// How many pieces the scan of object `index` can be cut into: a container's elements or
    /// bitmap words, an untyped block's words; nil for the rest. Layouts must be compiled.
    private func pieces(of index: Int) -> Int? {
        let address = objects.addresses[index]
        let usable = objects.usableSize(index)
        switch compiled[Int(objects.typeIndices[index])] {
        case .array(let slots, let stride, let start)?:
            return slots.isEmpty ? nil : elementCount(address, usable: usable, stride: stride, start: start)
        case .deque(let slots, let stride, let start)?:
            return slots.isEmpty ? nil : dequeRing(address, usable: usable, stride: stride, start: start)?.count
        case .dictionary?, .set?:
            return bucketCount(address).map { ($0 + 63) / 64 }
        case .conservative?:
            return byteBufferBytes.contains(Int32(index)) ? nil : Int(usable / 8)
        default:
            return nil
        }
    }

    // MARK: Pointers

    /// The object a word points into, if any (interior pointers keep the whole block).
    @inline(__always)
    public func target(of word: UInt64) -> Int32? {
        index.block(containing: word & ReferenceScanner.addressMask).map(Int32.init)
    }

    @inline(__always)
    private func readWord(_ address: UInt64) -> UInt64? { window.word(address) }

    // MARK: Labels

    /// `(T)`: the frame of an object found by a conservative word in a root.
    public func typeLabel(of target: Int32) -> UInt32 {
        let type = objects.typeIndices[Int(target)]
        if let cached = typeLabels[type] { return cached }
        let id = names.code(frame: "(\(SwiftTypeNames.display(objects.types[Int(type)].name)))")
        typeLabels[type] = id
        return id
    }

    private var pathTexts: [UInt32: String] = [:]
    private func pathsText(_ code: UInt32) -> String { pathTexts[code] ?? "" }
    func pathCode(_ path: String) -> UInt32 {
        let code = names.code(path: path)
        pathTexts[code] = path
        return code
    }

    /// The label of a closure's context: the closure's frame, or — when the context is the one
    /// object the closure captures (Swift passes a single class reference, or a lone box, as the
    /// context itself) — a path naming the closure, so the frame still names the object's type:
    /// `[0].{closure #1 () -> Int in app}. (app.Listener)`.
    private func functionLabel(path: UInt32, function: UInt64, context: Int32) -> UInt32 {
        shared.lock()
        defer { shared.unlock() }
        let name = SwiftTypeNames.closureFunction(symbolizer.name(of: function))
        let pathText = path == 0 ? "" : pathsText(path)
        switch objects.types[Int(objects.typeIndices[Int(context)])].kind {
        case .closureContext, .malloc:
            return names.code(frame: pathText.isEmpty ? name : "\(pathText). (\(name))")
        default:
            return pathCode(joined(pathText, "{\(name)}"))
        }
    }

    // MARK: Values

    /// References in a value at `base`, laid out by `layout`, with paths under `prefix`.
    /// Paths that come out empty give label 0: the object sits in the holder's frame.
    public func scanValue(_ layout: ValueLayout, at base: UInt64, prefix: String,
                          emit: (Int32, UInt32) -> Void) {
        for slot in layout.slots {
            scan(slot.action, at: base + UInt64(slot.offset), path: pathCode(joined(prefix, slot.path)), emit: emit)
        }
    }

    func joined(_ prefix: String, _ path: String) -> String {
        if prefix.isEmpty { return path }
        if path.isEmpty { return prefix }
        return path.hasPrefix("[") ? prefix + path : prefix + "." + path
    }

    @inline(__always)
    private func scan(_ slots: UnsafeBufferPointer<FrozenSlot>, at base: UInt64, bucket: Int, emit: (Int32, UInt32) -> Void) {
        for slot in slots {
            let address = base + UInt64(slot.offset)
            let path = slot.paths[min(bucket, slot.paths.count - 1)]
            if slot.action < 0 {
                if let word = readWord(address), let target = target(of: word) { emit(target, path) }
            } else {
                scan(store.actions[Int(slot.action)], at: address, path: path, emit: emit)
            }
        }
    }

    /// The references of one slot of a value at `address`.
    private func scan(_ action: ValueLayout.Action, at address: UInt64, path: UInt32, emit: (Int32, UInt32) -> Void) {
        switch action {
        case .reference:
            if let word = readWord(address), let target = target(of: word) { emit(target, path) }
        case .byteBuffer(let grpc):
            guard let word = readWord(address), let storage = target(of: word) else { return }
            guard frameworkMode, let indices = readWord(address &+ ByteBufferStorage.indicesOffset) else { emit(storage, path); return }
            let capacity = UInt64(source.readUInt32(objects.addresses[Int(storage)] + ByteBufferStorage.storageCapacityOffset) ?? 0)
            let (buffer, display) = ByteBufferStorage.buffer(capacity: capacity, indices: indices, grpc: grpc)
            emit(storage, shared.locked { names.code(path: pathsText(path), buffer: buffer, display: display) })
        case .foundationData(let unknownFields):
            scanData(at: address, path: path, protobufUnknownFields: unknownFields, emit: emit)
        case .protobufStorage(let message):
            guard let word = readWord(address), let storage = target(of: word) else { return }
            guard frameworkMode else { emit(storage, path); return }
            let (buffer, display) = ProtobufMessages.storageBuffer(storageSize: objects.sizes[Int(storage)], message: message)
            emit(storage, shared.locked { names.code(path: pathsText(path), buffer: buffer, display: display) })
        case .function:
            if let context = readWord(address &+ 8), let target = target(of: context) {
                let function = readWord(address) ?? 0
                emit(target, functionLabel(path: path, function: function, context: target))
            }
        case .words(let count):
            for index in 0..<count {
                if let word = readWord(address &+ UInt64(index * 8)), let target = target(of: word) { emit(target, path) }
            }
        }
    }

    /// Foundation `Data` (see `DataStorage`): a slice references its `__DataStorage` (and a large
    /// slice its range object); empty and inline values reference nothing.
    private func scanData(at address: UInt64, path: UInt32, protobufUnknownFields: Bool, emit: (Int32, UInt32) -> Void) {
        guard let first = readWord(address), let second = readWord(address &+ 8) else { return }
        let data = DataStorage.Representation(first: first, second: second)
        guard let pointer = data.storage, let storage = target(of: pointer) else {
            // Unknown representation: look at both words.
            for word in [first, second] { if let object = target(of: word) { emit(object, path) } }
            return
        }
        var viewed: UInt64 = 0
        if let inline = data.inlineSliceBytes {
            viewed = inline
        } else if let range = target(of: first) {
            // A large slice: word 0 is its range object.
            emit(range, path)
            let base = objects.addresses[Int(range)]
            if let lower = readWord(base + DataStorage.rangeLowerOffset), let upper = readWord(base + DataStorage.rangeUpperOffset),
               upper >= lower { viewed = upper - lower }
        }
        guard frameworkMode, let capacity = dataCapacity(storage: storage) else { emit(storage, path); return }
        let (buffer, display) = DataStorage.buffer(capacity: capacity, viewed: viewed, protobufUnknownFields: protobufUnknownFields)
        emit(storage, shared.locked { names.code(path: pathsText(path), buffer: buffer, display: display) })
    }

    /// `__DataStorage._capacity`, at the offset reflection gives for the storage's class.
    private func dataCapacity(storage: Int32) -> UInt64? {
        let type = objects.typeIndices[Int(storage)]
        if dataCapacityOffset == nil {
            dataCapacityOffset = shared.locked { layouts.fieldOffset(named: DataStorage.capacityField, metadata: objects.types[Int(type)].metadata) ?? -1 }
        }
        guard let offset = dataCapacityOffset, offset > 0 else { return nil }
        return readWord(objects.addresses[Int(storage)] + UInt64(offset))
    }
    private var dataCapacityOffset: Int? = nil

    /// Untyped memory: every word that points into a block is a reference.
    public func scanWords(from start: UInt64, to end: UInt64, label: UInt32, emit: (Int32, UInt32) -> Void) {
        // A block at the top of the address space (a hostile core) must not wrap: compare distances.
        var address = (start &+ 7) & ~7
        guard address >= start else { return }
        let batch = 4096
        var buffer = [UInt64](repeating: 0, count: batch / 8)
        while address < end && end - address >= 8 {
            let length = Int(min(UInt64(batch), (end - address) & ~7))
            let ok = buffer.withUnsafeMutableBytes { source.read(address, count: length, into: $0.baseAddress!) }
            if ok {
                for index in 0..<length / 8 {
                    if let target = target(of: buffer[index]) { emit(target, label) }
                }
            } else {
                for index in 0..<length / 8 {
                    if let word = readWord(address &+ UInt64(index * 8)), let target = target(of: word) { emit(target, label) }
                }
            }
            address &+= UInt64(length)
            if address == 0 { return }
        }
    }

    // MARK: Objects

    /// Every reference held by object `index`, or by piece `piece.index` of `piece.count` of it
    /// (see `pieces(of:)`): the pieces' references, in order, are the object's.
    public func references(of index: Int, piece: (index: Int, count: Int)? = nil, emit: (Int32, UInt32) -> Void) {
        let type = objects.typeIndices[index]
        let address = objects.addresses[index]
        let usable = objects.usableSize(index)
        // A Swift object owns its side table (the refcount word holds its address, shifted).
        if piece?.index ?? 0 == 0, objects.types[Int(type)].kind != .malloc, objects.types[Int(type)].kind != .sideTable,
           let word = readWord(address &+ 8), RefCountWord(raw: word).usesSideTable,
           let table = target(of: RefCountWord(raw: word).sideTable) {
            emit(table, sideTableLabel)
        }
        switch compiledLayout(type: type, sample: address) {
        case .none:
            return
        case .conservative:
            if !byteBufferBytes.isEmpty && byteBufferBytes.contains(Int32(index)) { return }
            let words = piece.map { ScanPlan.share(of: Int(usable / 8), piece: $0) } ?? 0..<Int(usable / 8)
            scanWords(from: address &+ UInt64(words.lowerBound * 8), to: address &+ UInt64(words.upperBound * 8),
                      label: subObjectsLabel, emit: emit)
        case .fixed(let slots, let uncovered):
            guard piece?.index ?? 0 == 0 else { return }
            scan(slots, at: address, bucket: 0, emit: emit)
            for range in uncovered where UInt64(range.upperBound) <= usable {
                scanWords(from: address &+ UInt64(range.lowerBound), to: address &+ UInt64(range.upperBound),
                          label: subObjectsLabel, emit: emit)
            }
        case .array(let slots, let stride, let start):
            guard !slots.isEmpty, let all = elementCount(address, usable: usable, stride: stride, start: start) else { return }
            let elements = piece.map { ScanPlan.share(of: all, piece: $0) } ?? 0..<all
            for element in elements {
                if element + Prefetch.distance < elements.upperBound {
                    prefetchTargets(slots, at: address &+ UInt64(start + (element + Prefetch.distance) * stride))
                }
                scan(slots, at: address &+ UInt64(start + element * stride), bucket: min(element, 10), emit: emit)
            }
        case .deque(let slots, let stride, let start):
            // The elements in use only, by their index in the deque: the other slots hold stale bits.
            guard !slots.isEmpty, let ring = dequeRing(address, usable: usable, stride: stride, start: start) else { return }
            let elements = piece.map { ScanPlan.share(of: ring.count, piece: $0) } ?? 0..<ring.count
            for element in elements {
                scan(slots, at: address &+ UInt64(start + ring.slot(element) * stride), bucket: min(element, 10), emit: emit)
            }
        case .dictionary(let keys, let keyStride, let values, let valueStride):
            let buckets = bucketCount(address) ?? 0
            let keyBase = keys.isEmpty ? nil : NativeHashStorage.tailArray(readWord(address &+ NativeHashStorage.dictionaryKeysOffset), of: address,
                                                                           usable: usable, count: buckets, stride: keyStride)
            let valueBase = values.isEmpty ? nil : NativeHashStorage.tailArray(readWord(address &+ NativeHashStorage.dictionaryValuesOffset),
                                                                               of: address, usable: usable, count: buckets, stride: valueStride)
            forEachOccupiedBucket(address, bitmap: NativeHashStorage.dictionaryBitmapOffset, usable: usable, piece: piece, ahead: { bucket in
                if let keyBase { prefetchTargets(keys, at: keyBase + UInt64(bucket * keyStride)) }
                if let valueBase { prefetchTargets(values, at: valueBase + UInt64(bucket * valueStride)) }
            }) { bucket in
                if let keyBase { scan(keys, at: keyBase + UInt64(bucket * keyStride), bucket: 0, emit: emit) }
                if let valueBase { scan(values, at: valueBase + UInt64(bucket * valueStride), bucket: 0, emit: emit) }
            }
        case .set(let slots, let stride):
            guard !slots.isEmpty, let buckets = bucketCount(address),
                  let base = NativeHashStorage.tailArray(readWord(address &+ NativeHashStorage.setElementsOffset), of: address, usable: usable,
                                                         count: buckets, stride: stride) else { return }
            forEachOccupiedBucket(address, bitmap: NativeHashStorage.setBitmapOffset, usable: usable, piece: piece, ahead: { bucket in
                prefetchTargets(slots, at: base + UInt64(bucket * stride))
            }) { bucket in
                scan(slots, at: base + UInt64(bucket * stride), bucket: 0, emit: emit)
            }
        }
    }

    /// Starts loading the index entries of what an element's references point at, some elements
    /// before it is scanned: a large container's elements point all over the heap.
    @inline(__always)
    private func prefetchTargets(_ slots: UnsafeBufferPointer<FrozenSlot>, at base: UInt64) {
        for slot in slots {
            if slot.action < 0, let word = window.word(base + UInt64(slot.offset)) {
                index.prefetch(word & ReferenceScanner.addressMask)
            }
        }
    }

    /// Native hash storage (`NativeHashStorage`): a bitmap at `bitmap` marks the occupied buckets.
    /// `ahead` sees each bitmap word's buckets one word before `body` does. A piece covers its
    /// share of the bitmap's words.
    private func forEachOccupiedBucket(_ address: UInt64, bitmap: UInt64, usable: UInt64, piece: (index: Int, count: Int)?,
                                       ahead: (Int) -> Void, _ body: (Int) -> Void) {
        guard let buckets = bucketCount(address) else { return }
        let words = NativeHashStorage.bitmapWords(buckets: buckets)
        guard bitmap + UInt64(words * 8) <= usable else { return }
        func occupied(_ word: Int) -> UInt64? {
            guard let bits = source.readWord(address &+ bitmap + UInt64(word * 8)) else { return nil }
            return NativeHashStorage.occupiedBits(bits, word: word, buckets: buckets)
        }
        let share = piece.map { ScanPlan.share(of: words, piece: $0) } ?? 0..<words
        guard !share.isEmpty, var next = occupied(share.lowerBound) else { return }
        for word in share {
            var bits = next
            if word + 1 < share.upperBound {
                guard let following = occupied(word + 1) else { return }
                next = following
                var early = next
                while early != 0 {
                    ahead((word + 1) * 64 + early.trailingZeroBitCount)
                    early &= early - 1
                }
            }
            while bits != 0 {
                body(word * 64 + bits.trailingZeroBitCount)
                bits &= bits - 1
            }
        }
    }

    /// Native array storage (`NativeArrayStorage`): its count, bounded by what fits in the block.
    private func elementCount(_ address: UInt64, usable: UInt64, stride: Int, start: Int) -> Int? {
        NativeArrayStorage.elementCount(usable: usable, stride: stride, start: start) {
            readWord(address &+ NativeArrayStorage.countOffset)
        }
    }

    /// A deque's header (`DequeStorage`), checked against its block.
    private func dequeRing(_ address: UInt64, usable: UInt64, stride: Int, start: Int) -> DequeStorage.Ring? {
        guard let capacity = readWord(address &+ DequeStorage.capacityOffset), let count = readWord(address &+ DequeStorage.countOffset),
              let startSlot = readWord(address &+ DequeStorage.startSlotOffset) else { return nil }
        return DequeStorage.Ring(capacity: capacity, count: count, startSlot: startSlot, usable: usable, stride: stride, start: start)
    }

    /// Native hash storage (`NativeHashStorage`): 2^scale buckets.
    private func bucketCount(_ address: UInt64) -> Int? {
        guard let scale = source.readBytes(address &+ NativeHashStorage.scaleOffset, count: 1) else { return nil }
        return NativeHashStorage.bucketCount(scale: scale[0])
    }
}

/// The second thread's parts of the graph, by task number.
private final class PartsBox { var parts: [(Int, ObjectGraph)] = [] }

/// Hands out task numbers in order to the scanning threads.
private final class TaskQueue {
    private var next = 0
    private let count: Int
    private let lock: SharedLock
    init(count: Int, lock: SharedLock) {
        self.count = count
        self.lock = lock
    }
    func take() -> Int? {
        lock.locked {
            guard next < count else { return nil }
            next += 1
            return next - 1
        }
    }
}

/// The scan's plan, while the second thread makes it.
private final class PlanBox {
    var plan: ScanPlan?
}
