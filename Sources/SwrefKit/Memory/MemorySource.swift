/// Read access to a target's address space: a live process, a snapshot of one, or a core file.
///
/// The analysis sees only this; which backend sits behind it is the CLI's choice.
public protocol MemorySource: AnyObject {
    /// The target's mappings, sorted by address.
    var memoryMap: MemoryMap { get }
    /// Copies `count` bytes at `address` into `buffer`; false when any byte is unreadable.
    func read(_ address: UInt64, count: Int, into buffer: UnsafeMutableRawPointer) -> Bool
}

extension MemorySource {
    @inline(__always)
    public func readWord(_ address: UInt64) -> UInt64? {
        var value: UInt64 = 0
        return withUnsafeMutableBytes(of: &value) { read(address, count: 8, into: $0.baseAddress!) } ? value : nil
    }

    @inline(__always)
    public func readUInt32(_ address: UInt64) -> UInt32? {
        var value: UInt32 = 0
        return withUnsafeMutableBytes(of: &value) { read(address, count: 4, into: $0.baseAddress!) } ? value : nil
    }

    public func readBytes(_ address: UInt64, count: Int) -> [UInt8]? {
        guard count >= 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: count)
        let ok = bytes.withUnsafeMutableBytes { count == 0 || read(address, count: count, into: $0.baseAddress!) }
        return ok ? bytes : nil
    }

    /// A NUL-terminated string of at most `limit` bytes.
    public func readCString(_ address: UInt64, limit: Int = 4096) -> String? {
        var bytes: [UInt8] = []
        var cursor = address
        while bytes.count < limit {
            guard let chunk = readBytes(cursor, count: 64) ?? readBytes(cursor, count: 1) else { return nil }
            if let nul = chunk.firstIndex(of: 0) {
                bytes.append(contentsOf: chunk[..<nul])
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.append(contentsOf: chunk)
            cursor += UInt64(chunk.count)
        }
        return nil
    }
}
