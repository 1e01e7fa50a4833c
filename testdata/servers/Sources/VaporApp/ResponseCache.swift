import NIOConcurrencyHelpers
import NIOCore

/// The app-level cache the load tests look for: request bodies kept as `ByteBuffer`s, so swref
/// should find each buffer on the path `VaporApp.responseCache` › `entries` › `ByteBuffer (NIOCore)`.
final class ResponseCache: @unchecked Sendable {
    private let lock = NIOLock()
    var entries: [String: ByteBuffer] = [:]

    func store(_ key: String, _ buffer: ByteBuffer) {
        lock.withLock { entries[key] = buffer }
    }

    /// (entries, readable bytes in all of them)
    var summary: (count: Int, bytes: Int) {
        lock.withLock { (entries.count, entries.values.reduce(0) { $0 + $1.readableBytes }) }
    }
}

/// A global, so that the cache's path starts at a root swref names from DWARF or the symbol table.
let responseCache = ResponseCache()
