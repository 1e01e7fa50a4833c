import SwrefImages
import SwrefMemory
import SwrefSupport

/// A class and its superclasses, root first, each with the field offsets the runtime stored in
/// its metadata (the field offset vector).
///
/// libswiftRemoteMirror lists only a class's own fields, and places them after a start it works
/// out itself, which is wrong from the third level of a hierarchy on (and for generic classes).
/// The runtime wrote the real offsets into each class's metadata when it laid the class out:
/// those are the ones an instance has.
public struct ClassChain {
    public struct Level {
        public let metadata: UInt64
        /// Offsets from the object's start, in declaration order (the order reflection lists fields).
        public let fieldOffsets: [Int]
        /// The fields' names from the class's field descriptor: for a class reflection cannot lay
        /// out (raw-layout `Mutex`/`Atomic` fields), its words still get a name. Nil when unreadable.
        public let fieldNames: [String]?
    }

    /// Root class first, the object's own class last.
    public let levels: [Level]

    @inlinable public static var maximumDepth: Int { 64 }
    @inlinable public static var maximumFields: Int { 1 << 12 }

    /// Nil when the metadata does not read as a chain of Swift classes. Every address here comes
    /// from the target: arithmetic on it wraps (a read of a wrapped address fails) rather than traps.
    public init?(metadata: UInt64, source: MemorySource) {
        var levels: [Level] = []
        var seen: Set<UInt64> = []
        var current = metadata
        while current != 0 {
            guard levels.count < ClassChain.maximumDepth, seen.insert(current).inserted,
                  let offsets = ClassChain.fieldOffsets(metadata: current, source: source),
                  let superclass = source.readWord(current &+ ClassMetadataLayout.superclass) else { return nil }
            levels.append(Level(metadata: current, fieldOffsets: offsets, fieldNames: ClassChain.fieldNames(metadata: current, source: source)))
            current = superclass
        }
        self.levels = levels.reversed()
    }

    /// Class descriptor fields (TargetClassDescriptor, Metadata.h).
    private enum Descriptor {
        static let fields: UInt64 = 16                   // relative pointer to the FieldDescriptor
        static let resilientMetadataBounds: UInt64 = 24  // relative pointer, with a resilient superclass
        static let numFields: UInt64 = 36
        static let fieldOffsetVectorOffset: UInt64 = 40  // in words from the metadata's address point
        /// Kind-specific flag: the superclass is resilient, so this class's members start where the
        /// runtime found room for them (StoredClassMetadataBounds.ImmediateMembersOffset, in bytes).
        static let hasResilientSuperclass: UInt32 = 1 << (16 + 13)
    }

    /// FieldDescriptor (Records.h): a 16-byte header, then 12-byte records whose third word is a
    /// relative pointer to the field's name.
    private static func fieldNames(metadata: UInt64, source: MemorySource) -> [String]? {
        guard let descriptor = source.readWord(metadata &+ ClassMetadataLayout.descriptor),
              let fields = relative(descriptor &+ Descriptor.fields, source),
              let header = source.readUInt32(fields &+ 8), let count = source.readUInt32(fields &+ 12),
              header >> 16 >= 12, count <= ClassChain.maximumFields else { return nil }
        let recordSize = UInt64(header >> 16)
        var names: [String] = []
        for index in 0..<UInt64(count) {
            let record = fields &+ 16 &+ index * recordSize
            guard let name = relative(record &+ 8, source).flatMap({ source.readCString($0, limit: 256) }) else { return nil }
            names.append(name)
        }
        return names
    }

    /// The target of a 32-bit relative pointer at `field`; nil when null or unreadable.
    private static func relative(_ field: UInt64, _ source: MemorySource) -> UInt64? {
        guard let value = source.readUInt32(field), value != 0 else { return nil }
        return field &+ UInt64(bitPattern: Int64(Int32(bitPattern: value)))
    }

    private static func fieldOffsets(metadata: UInt64, source: MemorySource) -> [Int]? {
        guard metadata & 7 == 0, let descriptor = source.readWord(metadata &+ ClassMetadataLayout.descriptor),
              descriptor != 0, descriptor & 3 == 0, let flags = source.readUInt32(descriptor),
              flags & 0x1f == ClassMetadataLayout.descriptorKindClass,
              let count = source.readUInt32(descriptor &+ Descriptor.numFields), count <= ClassChain.maximumFields,
              let vectorWords = source.readUInt32(descriptor &+ Descriptor.fieldOffsetVectorOffset) else { return nil }
        if count == 0 { return [] }
        var vector = Int64(vectorWords) * 8
        if flags & Descriptor.hasResilientSuperclass != 0 {
            let field = descriptor &+ Descriptor.resilientMetadataBounds
            guard let relative = source.readUInt32(field), relative != 0,
                  let immediate = source.readWord(field &+ UInt64(bitPattern: Int64(Int32(bitPattern: relative)))) else {
                return nil
            }
            let (sum, overflow) = vector.addingReportingOverflow(Int64(bitPattern: immediate))
            guard !overflow else { return nil }
            vector = sum
        }
        guard vector >= 0, vector < 1 << 20 else { return nil }
        var offsets: [Int] = []
        offsets.reserveCapacity(Int(count))
        for index in 0..<UInt64(count) {
            // An offset past 2^32 fits no instance: the word is not a field offset.
            guard let word = source.readWord(metadata &+ UInt64(vector) &+ index * 8), word < 1 << 32 else { return nil }
            offsets.append(Int(word))
        }
        return offsets
    }
}
