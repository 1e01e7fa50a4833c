/// A framework's buffer as framework mode names it: what it pins (its storage's capacity) and
/// what is viewed through it. Each framework's folder (`Runtimes/NIO`, `Runtimes/Foundation`,
/// `Runtimes/Protobuf`) says how to read its buffers' extents and what its frames are called.
public struct FrameworkBuffer: Sendable {
    public var framework: String
    public var pinnedBytes: UInt64
    /// nil for what is not a view (a protobuf message's storage): no pinned/viewed in its name.
    public var viewedBytes: UInt64?
    /// Heap blocks per buffer in its frame: a storage object and its bytes, or one storage.
    public var blocks: Int64 = 2

    public init(framework: String, pinnedBytes: UInt64, viewedBytes: UInt64?, blocks: Int64 = 2) {
        self.framework = framework
        self.pinnedBytes = pinnedBytes
        self.viewedBytes = viewedBytes
        self.blocks = blocks
    }
}
