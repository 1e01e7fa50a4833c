import CSwrefSystem
import SwrefImages
import SwrefMemory
import SwrefSupport

/// How to find the references inside one kind of heap object.
public enum ObjectLayout {
    /// Class instance fields (or closure captures, box contents) at fixed offsets from the object;
    /// `prefix` starts every path ("$capture" for closure captures). `uncovered` lists words the
    /// type did not describe, scanned conservatively.
    case fixed(ValueLayout, prefix: String, uncovered: [Range<Int>])
    /// `_ContiguousArrayStorage<T>`: count at +16, elements from `start`.
    case array(element: ValueLayout, start: Int)
    /// swift-collections' `_DequeBuffer<T>` (`DequeStorage`): the elements in use, from `start`.
    case deque(element: ValueLayout, start: Int)
    /// `_DictionaryStorage<K, V>`: occupied buckets from the bitmap at +64.
    case dictionary(key: ValueLayout, value: ValueLayout)
    /// `_SetStorage<E>`: occupied buckets from the bitmap at +56.
    case set(element: ValueLayout)
    /// No references (string storage, plain data).
    case none
    /// Unknown contents: every word is a possible reference, reported as `$sub_objects$`.
    case conservative
}

/// Decides the `ObjectLayout` of each type the recognizer found, once per type.
public final class ObjectLayouts {
    public let reflection: ReflectionContext?
    public let values: ValueLayoutBuilder?
    public let source: MemorySource
    private var cache: [Int32: ObjectLayout] = [:]
    /// Types whose layout made no sense (offsets outside the instance, slots past the value's
    /// end): read conservatively instead.
    public private(set) var unreadableTypes: [String] = []

    /// "N types read conservatively: A, B…", or nil when every layout made sense.
    public var unreadableNote: String? {
        guard !unreadableTypes.isEmpty else { return nil }
        let listed = unreadableTypes.prefix(5).joined(separator: ", ")
        let more = unreadableTypes.count > 5 ? " and \(unreadableTypes.count - 5) more" : ""
        return "\(unreadableTypes.count) types read conservatively (their layout in the target makes no sense): \(listed)\(more)"
    }

    public init(reflection: ReflectionContext?, source: MemorySource) {
        self.reflection = reflection
        self.values = reflection.map(ValueLayoutBuilder.init)
        self.source = source
    }

    public func layout(type: Int32, entry: SwiftObjectRecognizer.TypeEntry, sample: UInt64) -> ObjectLayout {
        if let cached = cache[type] { return cached }
        let layout = compute(entry: entry, sample: sample)
        cache[type] = layout
        return layout
    }

    private func compute(entry: SwiftObjectRecognizer.TypeEntry, sample: UInt64) -> ObjectLayout {
        // Blocks that hold no references whatever reflection knows: without a Swift runtime too
        // (jemalloc's tcache stacks in a C program), their stale pointers are not references.
        switch entry.kind {
        case .sideTable, .taskSlab, .dispatchQueue, .allocatorInternal: return .none
        default: break
        }
        guard let reflection, let values, entry.kind != .malloc else { return .conservative }
        switch entry.kind {
        case .classInstance:
            let name = entry.name
            if name.hasPrefix("Swift.__StringStorage") || name.hasPrefix("Swift.__Empty") { return .none }
            guard let tr = reflection.typeRef(forMetadata: entry.metadata) else { return .conservative }
            if name.hasPrefix("Swift._ContiguousArrayStorage<") || name.hasPrefix("Swift.__ContiguousArrayStorage") {
                guard let element = reflection.genericArgument(of: tr, 0) else { return .conservative }
                let layout = values.layout(of: element)
                guard layout.slotsFitStride else { return unreadable(entry) }
                return .array(element: layout, start: NativeArrayStorage.elementsStart(alignment: layout.alignment))
            }
            if DequeStorage.isStorage(name) {
                guard let element = reflection.genericArgument(of: tr, 0) else { return .conservative }
                let layout = values.layout(of: element)
                guard layout.slotsFitStride else { return unreadable(entry) }
                return .deque(element: layout, start: DequeStorage.elementsStart(alignment: layout.alignment))
            }
            if name.hasPrefix("Swift._DictionaryStorage<") {
                guard let key = reflection.genericArgument(of: tr, 0), let value = reflection.genericArgument(of: tr, 1) else {
                    return .conservative
                }
                let keyLayout = values.layout(of: key), valueLayout = values.layout(of: value)
                guard keyLayout.slotsFitStride, valueLayout.slotsFitStride else { return unreadable(entry) }
                return .dictionary(key: keyLayout, value: valueLayout)
            }
            if name.hasPrefix("Swift._SetStorage<") {
                guard let element = reflection.genericArgument(of: tr, 0) else { return .conservative }
                let layout = values.layout(of: element)
                guard layout.slotsFitStride else { return unreadable(entry) }
                return .set(element: layout)
            }
            return classLayout(entry: entry)
        case .closureContext, .box:
            return captureLayout(sample: sample, entry: entry)
        case .task:
            // A task's frames, task-locals and slabs are roots of their own (`TaskRoots`).
            return .none
        case .error:
            return errorLayout(sample: sample, entry: entry)
        case .job, .malloc:
            return .conservative
        case .sideTable, .taskSlab, .dispatchQueue, .allocatorInternal:
            return .none
        }
    }

    /// The offset of a stored property of a class (its own or inherited), by name.
    public func fieldOffset(named name: String, metadata: UInt64) -> Int? {
        classFields(metadata: metadata)?.last { $0.name == name }.map(\.offset)
    }

    /// A stored property of a class instance; `child` is nil when reflection cannot lay out its type.
    private struct ClassField {
        var name: String
        var offset: Int
        var child: swref_childinfo_t?
    }

    /// Every stored property of a class instance, the root class's first, each at the offset the
    /// runtime gave it (see `ClassChain`). Nil when the chain does not read as Swift classes.
    private func classFields(metadata: UInt64) -> [ClassField]? {
        guard let reflection, let chain = ClassChain(metadata: metadata, source: source) else { return nil }
        var fields: [ClassField] = []
        for level in chain.levels {
            let readable = reflection.metadataInfo(level.metadata).map { Int($0.NumFields) == level.fieldOffsets.count } ?? false
            for (index, offset) in level.fieldOffsets.enumerated() {
                var child = readable ? reflection.child(ofMetadata: level.metadata, index) : nil
                if child?.TR == 0 || child.map({ reflection.info(of: $0.TR) == nil }) == true { child = nil }
                child?.Offset = UInt32(offset)
                let name = child?.Name.map { String(cString: $0) } ?? level.fieldNames?[safe: index] ?? ""
                fields.append(ClassField(name: name, offset: offset, child: child))
            }
        }
        return fields
    }

    func classLayout(entry: SwiftObjectRecognizer.TypeEntry) -> ObjectLayout {
        guard let reflection, let values else { return .conservative }
        // The recognizer checked the instance size (16 ≤ size < 2^28) when it took the block for this class.
        guard let size = source.readUInt32(entry.metadata + ClassMetadataLayout.instanceSize).map(Int.init), size >= 16,
              let fields = classFields(metadata: entry.metadata) else { return unreadable(entry) }
        // Fields sit after the header and inside the instance, or the layout is not this object's.
        guard fields.allSatisfy({ $0.offset >= 16 && $0.offset <= size }) else { return unreadable(entry) }
        let typed = fields.compactMap(\.child)
        var extents: [Range<Int>] = []
        for field in typed {
            let start = Int(field.Offset), length = reflection.info(of: field.TR).map { Int($0.Size) } ?? 0
            guard start <= size - length else { return unreadable(entry) }
            extents.append(start..<start + length)
        }
        var slots: [ValueLayout.Slot] = []
        var covered = 0
        values.appendChildren(count: typed.count, child: { typed[$0] }, offset: 0, path: "", hidePath: false,
                              into: &slots, covered: &covered, depth: 0)
        // A field reflection cannot lay out (the raw storage of `Mutex`, `Atomic`) may hold
        // references: each of its words up to the next field is read as one, under its name.
        // Without a name its words stay uncovered, for the scan of `$sub_objects$`.
        let starts = Set(fields.map(\.offset) + [size]).sorted()
        for field in fields where field.child == nil && !field.name.isEmpty {
            let first = (field.offset + 7) / 8 * 8
            guard let next = starts.first(where: { $0 > field.offset }), next - first >= 8 else { continue }
            let words = (next - first) / 8
            slots.append(.init(offset: first, action: .words(words), path: field.name))
            covered += words * 8
            extents.append(first..<first + words * 8)
        }
        let layout = ValueLayout(size: size, stride: size, alignment: 16, slots: slots, coveredBytes: covered)
        guard layout.slotsFit else { return unreadable(entry) }
        return .fixed(layout, prefix: "", uncovered: uncoveredWords(extents, from: 16, to: size))
    }

    /// Closure contexts and boxes: the library lays out the captures of each instance.
    private func captureLayout(sample: UInt64, entry: SwiftObjectRecognizer.TypeEntry) -> ObjectLayout {
        guard let reflection, let values else { return .conservative }
        if entry.kind == .box, let boxed = source.readWord(entry.metadata + ClassMetadataLayout.genericBoxBoxedType),
           boxed & 7 == 0, source.memoryMap.region(containing: boxed) != nil,
           source.readWord(entry.metadata) == SwiftMetadataKind.heapGenericLocalVariable.rawValue,
           let offset = source.readUInt32(entry.metadata + 8), let tr = reflection.typeRef(forMetadata: boxed) {
            var layout = values.layout(of: tr)
            layout.slots = layout.slots.map { var s = $0; s.offset += Int(offset); return s }
            return .fixed(layout, prefix: "", uncovered: [])
        }
        guard let info = reflection.instanceInfo(sample), info.Kind == SWREF_LAYOUT_CLOSURE_CONTEXT else { return .conservative }
        var slots: [ValueLayout.Slot] = []
        var covered = 0
        values.appendChildren(count: Int(info.NumFields), child: { reflection.child(ofInstance: sample, $0) },
                              offset: 0, path: "", hidePath: entry.kind != .box, into: &slots, covered: &covered, depth: 0)
        let layout = ValueLayout(size: Int(info.Size), stride: Int(info.Size), alignment: 16, slots: slots, coveredBytes: covered)
        guard layout.slotsFit else { return unreadable(entry) }
        return .fixed(layout, prefix: entry.kind == .box ? "" : "$capture", uncovered: [])
    }

    /// An error box (`SwiftErrorLayout`) holding a value of a type the recognizer named: the value's
    /// layout after the header. Boxes of unnamed types stay conservative.
    private func errorLayout(sample: UInt64, entry: SwiftObjectRecognizer.TypeEntry) -> ObjectLayout {
        guard let reflection, let values, entry.name != SwiftErrorLayout.unnamedTypeName,
              let boxed = source.readWord(sample &+ SwiftErrorLayout.valueType), boxed & 7 == 0,
              source.memoryMap.region(containing: boxed) != nil, let tr = reflection.typeRef(forMetadata: boxed) else { return .conservative }
        var layout = values.layout(of: tr)
        guard layout.slotsFit, let offset = SwiftErrorLayout.valueOffset(alignment: layout.alignment) else { return unreadable(entry) }
        layout.slots = layout.slots.map { var slot = $0; slot.offset += Int(offset); return slot }
        layout.size += Int(offset)
        return .fixed(layout, prefix: "", uncovered: [])
    }

    /// The words in `start..<end` that no field touches, as ranges.
    private func uncoveredWords(_ fields: [Range<Int>], from start: Int, to end: Int) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var word = (start + 7) / 8 * 8  // the first word not yet known to be covered
        let limit = end / 8 * 8
        func gap(upTo upper: Int) {
            if min(upper, limit) > word { ranges.append(word..<min(upper, limit)) }
        }
        for field in fields.filter({ !$0.isEmpty }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            gap(upTo: field.lowerBound / 8 * 8)
            word = max(word, (field.upperBound + 7) / 8 * 8)
        }
        gap(upTo: limit)
        return ranges
    }

    /// A type whose layout, as read from the target, makes no sense: scanned word by word, and
    /// listed so that reports can say so.
    private func unreadable(_ entry: SwiftObjectRecognizer.TypeEntry) -> ObjectLayout {
        unreadableTypes.append(entry.name)
        return .conservative
    }
}
