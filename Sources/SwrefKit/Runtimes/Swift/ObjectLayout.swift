import CSwrefSystem

/// How to find the references inside one kind of heap object.
public enum ObjectLayout {
    /// Class instance fields (or closure captures, box contents) at fixed offsets from the object;
    /// `prefix` starts every path ("$capture" for closure captures). `uncovered` lists words the
    /// type did not describe, scanned conservatively.
    case fixed(ValueLayout, prefix: String, uncovered: [Range<Int>])
    /// `_ContiguousArrayStorage<T>`: count at +16, elements from `start`.
    case array(element: ValueLayout, start: Int)
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
    let reflection: ReflectionContext?
    let values: ValueLayoutBuilder?
    let source: MemorySource
    private var cache: [Int32: ObjectLayout] = [:]

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
        guard let reflection, let values, entry.kind != .malloc else { return .conservative }
        switch entry.kind {
        case .classInstance:
            let name = entry.name
            if name.hasPrefix("Swift.__StringStorage") || name.hasPrefix("Swift.__Empty") { return .none }
            guard let tr = reflection.typeRef(forMetadata: entry.metadata) else { return .conservative }
            if name.hasPrefix("Swift._ContiguousArrayStorage<") || name.hasPrefix("Swift.__ContiguousArrayStorage") {
                guard let element = reflection.genericArgument(of: tr, 0) else { return .conservative }
                let layout = values.layout(of: element)
                return .array(element: layout, start: (32 + layout.alignment - 1) / layout.alignment * layout.alignment)
            }
            if name.hasPrefix("Swift._DictionaryStorage<") {
                guard let key = reflection.genericArgument(of: tr, 0), let value = reflection.genericArgument(of: tr, 1) else {
                    return .conservative
                }
                return .dictionary(key: values.layout(of: key), value: values.layout(of: value))
            }
            if name.hasPrefix("Swift._SetStorage<") {
                guard let element = reflection.genericArgument(of: tr, 0) else { return .conservative }
                return .set(element: values.layout(of: element))
            }
            return classLayout(metadata: entry.metadata)
        case .closureContext, .box:
            return captureLayout(sample: sample, entry: entry)
        case .task:
            // A task's frames, task-locals and slabs are roots of their own (RootFinder.taskRoots).
            return .none
        case .job, .error, .malloc:
            return .conservative
        case .sideTable, .taskSlab, .dispatchQueue, .allocatorInternal:
            return .none
        }
    }

    /// The offset of a stored property of a class, by name.
    public func fieldOffset(named name: String, metadata: UInt64) -> Int? {
        guard let reflection, let info = reflection.metadataInfo(metadata) else { return nil }
        for index in 0..<Int(info.NumFields) {
            if let child = reflection.child(ofMetadata: metadata, index), let childName = child.Name,
               String(cString: childName) == name { return Int(child.Offset) }
        }
        return nil
    }

    private func classLayout(metadata: UInt64) -> ObjectLayout {
        guard let reflection, let values, let info = reflection.metadataInfo(metadata),
              let instanceSize = source.readUInt32(metadata + ClassMetadataLayout.instanceSize) else { return .conservative }
        var slots: [ValueLayout.Slot] = []
        var covered = 0
        values.appendChildren(count: Int(info.NumFields), child: { reflection.child(ofMetadata: metadata, $0) },
                              offset: 0, path: "", hidePath: false, into: &slots, covered: &covered, depth: 0)
        var byteCovered = [Bool](repeating: false, count: Int(instanceSize))
        for index in 0..<Int(info.NumFields) {
            guard let child = reflection.child(ofMetadata: metadata, index), let childInfo = reflection.info(of: child.TR) else { continue }
            let start = Int(child.Offset)
            for byte in start..<min(start + Int(childInfo.Size), byteCovered.count) { byteCovered[byte] = true }
        }
        let layout = ValueLayout(size: Int(instanceSize), stride: Int(instanceSize), alignment: 16, slots: slots, coveredBytes: covered)
        return .fixed(layout, prefix: "", uncovered: uncoveredWords(byteCovered, from: 16))
    }

    /// Closure contexts and boxes: the library lays out the captures of each instance.
    private func captureLayout(sample: UInt64, entry: SwiftObjectRecognizer.TypeEntry) -> ObjectLayout {
        guard let reflection, let values else { return .conservative }
        if entry.kind == .box, let boxed = source.readWord(entry.metadata + ClassMetadataLayout.genericBoxBoxedType),
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
        return .fixed(layout, prefix: entry.kind == .box ? "" : "$capture", uncovered: [])
    }

    private func uncoveredWords(_ covered: [Bool], from start: Int) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var word = (start + 7) / 8 * 8
        while word + 8 <= covered.count {
            if !covered[word..<word + 8].contains(true) {
                if let last = ranges.last, last.upperBound == word {
                    ranges[ranges.count - 1] = last.lowerBound..<word + 8
                } else {
                    ranges.append(word..<word + 8)
                }
            }
            word += 8
        }
        return ranges
    }
}
