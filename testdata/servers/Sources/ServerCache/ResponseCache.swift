import NIOConcurrencyHelpers
import NIOCore

/// The app-level cache the load tests look for: request bodies kept as `ByteBuffer`s, so swref
/// should find each buffer on the path `APP.responseCache` › `entries` › `ByteBuffer (NIOCore)`
/// (the global is each app's own: HBApp, VaporApp).
public final class ResponseCache: @unchecked Sendable {
    private let lock = NIOLock()
    public var entries: [String: ByteBuffer] = [:]

    public init() {}

    public func store(_ key: String, _ buffer: ByteBuffer) {
        lock.withLock { entries[key] = buffer }
    }

    /// (entries, readable bytes in all of them)
    public var summary: (count: Int, bytes: Int) {
        lock.withLock { (entries.count, entries.values.reduce(0) { $0 + $1.readableBytes }) }
    }
}
