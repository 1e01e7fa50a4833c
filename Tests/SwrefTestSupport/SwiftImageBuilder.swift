import SwrefMemory

/// Swift runtime data laid out by hand in an `InMemoryTarget`: class metadata with its nominal
/// type descriptor, field descriptor (names) and field offset vector, closure-context metadata,
/// and object headers (a metadata pointer and an inline reference-count word) — what the object
/// recognizer and the class-chain reader look at. The metadata and descriptors live in a
/// file-backed mapping, as an image's data would.
///
/// Layouts are the Swift 5 ABI's on x86_64 Linux (Metadata.h, RefCount.h), written out here
/// independently of swref's own constants.
public final class SwiftImageBuilder {
    public let target: InMemoryTarget
    public let imageStart: UInt64
    public let imageEnd: UInt64
    private var cursor: UInt64

    /// A class made by `makeClass`.
    public struct ClassType {
        public var metadata: UInt64
        public var descriptor: UInt64
        public var instanceSize: UInt32
        public var fieldOffsets: [UInt64]
    }

    public init(target: InMemoryTarget, imageStart: UInt64 = 0x7fff_f000_0000, size: UInt64 = 0x10000,
                path: String = "/app/libApp.so") {
        self.target = target
        self.imageStart = imageStart
        imageEnd = imageStart + size
        target.map(imageStart, size: size, "rw-p", path: path, fileOffset: 0x3000)
        cursor = imageStart
    }

    /// `bytes` of room in the image, 16-byte aligned.
    public func reserve(_ bytes: UInt64) -> UInt64 {
        let address = cursor
        cursor = (cursor + bytes + 15) & ~15
        precondition(cursor <= imageEnd, "the image is full")
        return address
    }

    /// Class metadata (kind 0, UsesSwiftRefcounting) for instances of `instanceSize` bytes, with a
    /// class descriptor; `fields` (name, offset) go into its field descriptor and field offset
    /// vector (at metadata word `vectorWords`).
    public func makeClass(instanceSize: UInt32, fields: [(name: String, offset: UInt64)] = [], superclass: UInt64 = 0,
                          alignMask: UInt16 = 15, vectorWords: UInt32 = 10) -> ClassType {
        let metadata = reserve(UInt64(vectorWords) * 8 + UInt64(fields.count) * 8 + 16)
        let descriptor = reserve(64)
        target.put(0, at: metadata)                   // kind: class
        target.put(superclass, at: metadata + 8)
        target.put32(0x2, at: metadata + 16)          // flags: UsesSwiftRefcounting
        target.put32(0, at: metadata + 20)            // instance address point
        target.put32(instanceSize, at: metadata + 24)
        target.put16(alignMask, at: metadata + 28)
        target.put(descriptor, at: metadata + 40)
        target.put32(16, at: descriptor)              // context descriptor flags: kind class
        target.put32(UInt32(fields.count), at: descriptor + 36)
        target.put32(vectorWords, at: descriptor + 40)
        for (index, field) in fields.enumerated() {
            target.put(field.offset, at: metadata + UInt64(vectorWords) * 8 + UInt64(index * 8))
        }
        if !fields.isEmpty {
            // FieldDescriptor: type name, superclass, kind u16, record size u16, count u32; records of
            // flags, type name, field name (relative pointers).
            let fieldDescriptor = reserve(16 + UInt64(fields.count) * 12)
            target.put32(UInt32(12) << 16, at: fieldDescriptor + 8)
            target.put32(UInt32(fields.count), at: fieldDescriptor + 12)
            for (index, field) in fields.enumerated() {
                let record = fieldDescriptor + 16 + UInt64(index * 12)
                let name = reserve(UInt64(field.name.utf8.count + 1))
                target.put(cString: field.name, at: name)
                target.putRelative(to: name, at: record + 8)
            }
            target.putRelative(to: fieldDescriptor, at: descriptor + 16)
        }
        return ClassType(metadata: metadata, descriptor: descriptor, instanceSize: instanceSize, fieldOffsets: fields.map(\.offset))
    }

    /// Heap-local-variable metadata (closure contexts, boxes) whose captures start at `captureOffset`.
    public func makeContextMetadata(captureOffset: UInt32) -> UInt64 {
        let metadata = reserve(16)
        target.put(0x400, at: metadata)
        target.put32(captureOffset, at: metadata + 8)
        return metadata
    }

    // MARK: Object headers

    /// An inline reference-count word (RefCount.h): strong extra count at bit 33, unowned count at
    /// bit 1 (1 while the object lives), PureSwiftDealloc at bit 0.
    public static func refCount(strong: UInt64 = 1, unowned: UInt64 = 1) -> UInt64 {
        precondition(strong >= 1)
        return (strong - 1) << 33 | (unowned & 0x7FFF_FFFF) << 1 | 1
    }

    /// The count word of an immortal object (statically allocated, never freed).
    public static let immortalRefCount: UInt64 = .max

    /// The count word of an object whose counts moved to a side table at `table` (16-aligned):
    /// UseSlowRC and SideTableMark set, the table's address shifted right by 3.
    public static func sideTableRefCount(_ table: UInt64) -> UInt64 { 0b11 << 62 | table >> 3 }

    /// The count word of an object being deinitialized.
    public static func deinitingRefCount() -> UInt64 { refCount() | 1 << 32 }

    /// Writes an object header at `address`: the metadata pointer, then the count word.
    public func writeObject(at address: UInt64, metadata: UInt64, refCount: UInt64 = SwiftImageBuilder.refCount()) {
        target.put(metadata, at: address)
        target.put(refCount, at: address + 8)
    }
}

/// A deterministic random number generator for property tests (SplitMix64).
public struct SplitMix: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
