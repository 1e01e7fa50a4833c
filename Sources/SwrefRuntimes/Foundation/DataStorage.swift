/// Foundation's `Data` (swift-corelibs-foundation and swift-foundation's FoundationEssentials).
///
/// A `Data` value is 16 bytes, its `_Representation`: word 1 is a `__DataStorage` reference tagged
/// in its top bits — 0b01: InlineSlice, whose word 0 holds the slice as two Int32; 0b10:
/// LargeSlice, whose word 0 is a `RangeReference` object with the range at +16 and +24. Empty and
/// inline values (at most 14 bytes) reference nothing. The storage object keeps `_bytes` (the
/// malloc block of the data) and `_capacity`, at offsets reflection gives for its class.
public enum DataStorage {
    public static let valueTypeNames: Set<String> = ["FoundationEssentials.Data", "Foundation.Data"]
    public static let valueSize = 16
    /// Any storage class, as found when one is looked for by name.
    public static let storageTypeSuffix = "__DataStorage"
    public static let capacityField = "_capacity"
    /// The storage's pointer to the data: charged to the buffer in framework mode.
    public static let bytesField = "_bytes"
    /// `RangeReference.range`'s bounds, from the object's start.
    public static let rangeLowerOffset: UInt64 = 16
    public static let rangeUpperOffset: UInt64 = 24

    /// Foundation's modules: their frames are not user code.
    public static let modules: Set<String> = ["Foundation", "FoundationEssentials", "FoundationInternationalization"]

    /// Whether a class is Foundation's (or FoundationEssentials') `__DataStorage`.
    public static func isStorage(_ typeName: String) -> Bool {
        typeName.hasSuffix("Foundation.__DataStorage") || typeName.hasSuffix("FoundationEssentials.__DataStorage")
    }

    /// A Data value's two words, decoded.
    public struct Representation {
        public let first: UInt64
        public let second: UInt64

        @inline(__always)
        public init(first: UInt64, second: UInt64) {
            self.first = first
            self.second = second
        }

        /// The `__DataStorage` pointer of a slice (InlineSlice or LargeSlice); nil for empty,
        /// inline or unknown representations.
        @inline(__always)
        public var storage: UInt64? {
            let tag = second >> 62
            return tag == 1 || tag == 2 ? second & 0x00FF_FFFF_FFFF_FFF8 : nil
        }

        /// An InlineSlice's viewed bytes, from its two Int32 bounds; nil for other representations.
        @inline(__always)
        public var inlineSliceBytes: UInt64? {
            guard second >> 62 == 1 else { return nil }
            // Int64: two arbitrary Int32s from the target can differ by more than Int32 holds.
            let lower = Int64(Int32(truncatingIfNeeded: first)), upper = Int64(Int32(truncatingIfNeeded: first >> 32))
            return upper >= lower ? UInt64(upper - lower) : 0
        }
    }

    /// The buffer a Data value names; `protobufUnknownFields` for swift-protobuf's `UnknownStorage`
    /// (a Data), charged to protobuf.
    public static func buffer(capacity: UInt64, viewed: UInt64, protobufUnknownFields: Bool) -> (buffer: FrameworkBuffer, display: String) {
        let buffer = FrameworkBuffer(framework: protobufUnknownFields ? "protobuf" : "foundation", pinnedBytes: capacity, viewedBytes: viewed)
        return (buffer, protobufUnknownFields ? ProtobufMessages.unknownStorageDisplay : "Data (Foundation)")
    }
}
