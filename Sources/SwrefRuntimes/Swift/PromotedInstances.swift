import SwrefMemory

/// Class instances that live outside the heap, where the optimiser promoted them: a non-escaping
/// object of an async function is allocated in its task's allocator slab, with a real header (its
/// class's metadata, a reference count) and fields pointing on into the heap. Recognised by that
/// header and laid out by the class, so that a root can name the object and its fields.
public final class PromotedInstances {
    public struct Instance {
        public var address: UInt64
        public var size: UInt64
        /// The class's name, as the census would give it.
        public var name: String
        public var fields: ValueLayout
        /// Words no field describes, to scan word by word.
        public var uncovered: [Range<Int>]
    }

    private let layouts: ObjectLayouts
    private struct Class {
        var size: UInt64
        var name: String
        var fields: ValueLayout
        var uncovered: [Range<Int>]
    }
    /// Per metadata pointer: the class, or nil for metadata that is no class swref can lay out.
    private var classes: [UInt64: Class?] = [:]

    public init(layouts: ObjectLayouts) { self.layouts = layouts }

    /// The instance that starts at `address`, if one does and fits in `limit` bytes.
    public func instance(at address: UInt64, limit: UInt64) -> Instance? {
        let source = layouts.source
        guard limit >= 16, let metadata = source.readWord(address), metadata != 0, metadata & 7 == 0,
              let count = source.readWord(address &+ 8), RefCountWord(raw: count).isPlausible(in: source) else { return nil }
        if classes[metadata] == nil { classes[metadata] = .some(readClass(metadata)) }
        guard let known = classes[metadata], let type = known, type.size <= limit else { return nil }
        return Instance(address: address, size: type.size, name: type.name, fields: type.fields, uncovered: type.uncovered)
    }

    private func readClass(_ metadata: UInt64) -> Class? {
        let source = layouts.source
        guard source.memoryMap.region(containing: metadata) != nil, source.readWord(metadata) == SwiftMetadataKind.classMetadata.rawValue,
              let size = SwiftObjectRecognizer.classInstanceSize(metadata: metadata, source: source),
              let name = layouts.reflection?.typeName(forMetadata: metadata), !name.hasPrefix("Swift._") else { return nil }
        // Fixed fields only. The standard library's storage classes (a promoted array's elements
        // follow its fields) are left to the word-by-word scan of the slab.
        let entry = SwiftObjectRecognizer.TypeEntry(name: name, kind: .classInstance, metadata: metadata)
        guard case .fixed(let fields, _, let uncovered) = layouts.classLayout(entry: entry) else { return nil }
        return Class(size: size, name: name, fields: fields, uncovered: uncovered)
    }
}
