/// SwiftNIO's `ByteBuffer` (NIOCore 2.x), alone or in gRPC's wrapper (`GRPCBytes`).
///
/// The value is 24 bytes: `_storage` (a `ByteBuffer._Storage` reference) at +0, `_readerIndex` and
/// `_writerIndex` (UInt32 each) at +8 and +12, then `_slice`. The storage object keeps its
/// `capacity` (UInt32) at +16 and its `bytes` pointer to a malloc block holding the data.
public enum ByteBufferStorage {
    public static let valueTypeName = "NIOCore.ByteBuffer"
    public static let storageTypeName = "NIOCore.ByteBuffer._Storage"
    /// The storage's pointer to the bytes block: network data, never references; in framework mode
    /// the block is charged to the buffer (it sits in the buffer's frame).
    public static let bytesField = "bytes"
    /// The least size of a value read as a ByteBuffer (storage, indices).
    public static let minimumValueSize = 16
    /// Reader index (low half) and writer index (high half), as one word.
    public static let indicesOffset: UInt64 = 8
    /// `_Storage.capacity` (UInt32) from the storage object's start.
    public static let storageCapacityOffset: UInt64 = 16

    /// Whether a value of type `name` is read as a ByteBuffer, and whether it is gRPC's wrapper.
    public static func valueKind(_ name: String) -> (isByteBuffer: Bool, grpc: Bool) {
        let grpc = name == GRPCBytes.typeName
        return (name == valueTypeName || grpc, grpc)
    }

    /// The buffer a ByteBuffer value names: its storage's capacity pinned, its readable bytes viewed.
    public static func buffer(capacity: UInt64, indices: UInt64, grpc: Bool) -> (buffer: FrameworkBuffer, display: String) {
        let reader = indices & 0xffff_ffff, writer = indices >> 32
        let buffer = FrameworkBuffer(framework: grpc ? GRPCBytes.framework : "nio", pinnedBytes: capacity,
                                     viewedBytes: writer >= reader ? writer - reader : 0)
        return (buffer, grpc ? GRPCBytes.display : "ByteBuffer (NIOCore)")
    }

    /// SwiftNIO's modules: their frames are not user code.
    public static let modules: Set<String> = [
        "NIO", "NIOCore", "NIOPosix", "NIOEmbedded", "NIOConcurrencyHelpers", "NIOHTTP1", "NIOHTTP2", "NIOSSL", "NIOTLS",
        "NIOWebSocket", "NIOExtras", "NIOFoundationCompat", "NIOTransportServices", "NIOFileSystem", "_NIOFileSystem",
        "_NIODataStructures", "_NIOBase64", "NIOHPACK",
    ]
}
