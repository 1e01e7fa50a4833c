import SwrefImages
import SwrefMemory
import SwrefSupport

/// Swift runtime constants on x86_64 Linux (include/swift/ABI/MetadataKind.def, HeapObject.h, RefCount.h).
public enum SwiftMetadataKind: UInt64 {
    case classMetadata = 0
    case heapLocalVariable = 0x400   // closure contexts and fixed-layout boxes
    case heapGenericLocalVariable = 0x500 // boxes of runtime-laid-out values
    case errorObject = 0x501
    case task = 0x502
    case job = 0x503
}

/// What kind of heap object a block holds, as shown in reports.
public enum HeapObjectKind: String, Sendable, CaseIterable {
    case classInstance = "class"
    case closureContext = "closure"
    case box = "box"
    case error = "error"
    case task = "task"
    case job = "job"
    /// The runtime's side table of an object that has (or had) weak references.
    case sideTable = "sidetable"
    /// A task allocator slab: async frames and task-locals, walked through the task's roots.
    case taskSlab = "slab"
    /// A libdispatch queue (`dispatch_queue_s`): its queued blocks are walked as roots.
    case dispatchQueue = "queue"
    /// A block of the allocator's own (jemalloc's tcache stacks): counted, never scanned — it holds
    /// stale pointers to blocks the program has since been given.
    case allocatorInternal = "allocator"
    case malloc = "malloc"
}

/// The inline reference-count word of a heap object (RefCount.h).
public struct RefCountWord {
    public let raw: UInt64
    public init(raw: UInt64) { self.raw = raw }

    public var isImmortal: Bool { raw & 0xFFFF_FFFF == 0xFFFF_FFFF && raw >> 63 == 1 }
    public var usesSideTable: Bool { !isImmortal && raw >> 62 == 0b11 }
    public var sideTable: UInt64 { (raw & 0x3FFF_FFFF_FFFF_FFFF) << 3 }
    public var unownedCount: UInt64 { (raw >> 1) & 0x7FFF_FFFF }
    public var isDeiniting: Bool { raw & (1 << 32) != 0 }
    /// Strong count for inline words: the stored extra count plus one.
    public var strongCount: UInt64 { ((raw >> 33) & 0x3FFF_FFFF) + 1 }

    /// Whether the word can belong to a live object: a check that rejects most random data.
    public func isPlausible(in source: MemorySource) -> Bool {
        if isImmortal { return true }
        if usesSideTable {
            let table = sideTable
            return table & 0xf == 0 && source.readWord(table) != nil
        }
        return raw >> 63 == 0 && unownedCount >= 1
    }
}

/// Offsets into class metadata and descriptors (no Objective-C interop on Linux).
public enum ClassMetadataLayout {
    @inlinable public static var superclass: UInt64 { 8 }    // 0 for a root class
    @inlinable public static var flags: UInt64 { 16 }        // u32; bit 1 UsesSwiftRefcounting
    @inlinable public static var instanceAddressPoint: UInt64 { 20 }
    @inlinable public static var instanceSize: UInt64 { 24 } // u32
    @inlinable public static var alignMask: UInt64 { 28 }    // u16
    @inlinable public static var descriptor: UInt64 { 40 }
    @inlinable public static var descriptorKindClass: UInt32 { 16 }
    @inlinable public static var genericBoxBoxedType: UInt64 { 16 }
}

/// An error box (`SwiftError`, stdlib/public/runtime/ErrorObject.h, no Objective-C interop): the
/// heap object header, the boxed value's type metadata and its `Error` witness table, then the
/// value, at its own alignment.
public enum SwiftErrorLayout {
    @inlinable public static var valueType: UInt64 { 16 }
    @inlinable public static var errorConformance: UInt64 { 24 }
    @inlinable public static var header: UInt64 { 32 }
    /// Error boxes whose boxed type could not be named: one type for them all, read conservatively.
    public static let unnamedTypeName = "Swift.Error (boxed)"

    /// The census name of the boxes that hold a value of `boxed`: `Swift.Error (boxed app.ParseError)`.
    public static func typeName(boxed: String) -> String { "Swift.Error (boxed \(boxed))" }

    /// Where the value starts for a type of `alignment` bytes; nil for an alignment no type has
    /// (the figure comes from the target).
    public static func valueOffset(alignment: Int) -> UInt64? {
        guard alignment >= 1, alignment <= 4096, alignment & (alignment - 1) == 0 else { return nil }
        let mask = UInt64(alignment - 1)
        return (header + mask) & ~mask
    }
}
