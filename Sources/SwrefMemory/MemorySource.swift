import SwrefSupport

/// Read access to a target's address space: a live process, a snapshot of one, or a core file.
///
/// The analysis sees only this; which backend sits behind it is the CLI's choice.
public protocol MemorySource: AnyObject {
    /// The target's mappings, sorted by address.
    var memoryMap: MemoryMap { get }
    /// Copies `count` bytes at `address` into `buffer`; false when any byte is unreadable.
    func read(_ address: UInt64, count: Int, into buffer: UnsafeMutableRawPointer) -> Bool
    /// The bytes of the mapping that holds `address`, when they sit in swref's own memory (a
    /// snapshot's copy, a mapped core): hot loops read through them without a call per word.
    func localBytes(containing address: UInt64) -> (start: UInt64, bytes: UnsafeRawBufferPointer)?
    /// Bytes the target's own memory holds, never filled in from a file on disk (a core reads
    /// pages it did not keep from the files it names): what an image's build id is checked by.
    func ownBytes(_ address: UInt64, count: Int) -> [UInt8]?
    /// Reads come from swref's own memory (a snapshot's copy), so two threads can scan at once;
    /// false where reads share a cache or a file (a core's fallback to files, a live process).
    var readsAreLocal: Bool { get }
}

extension MemorySource {
    public func localBytes(containing address: UInt64) -> (start: UInt64, bytes: UnsafeRawBufferPointer)? { nil }
    public func ownBytes(_ address: UInt64, count: Int) -> [UInt8]? { readBytes(address, count: count) }
    public var readsAreLocal: Bool { false }
}

/// A cursor over a memory source that remembers the last local mapping it used: reading a word
/// in the same mapping is a bounds check and a load.
public struct MemoryWindow {
    public let source: MemorySource
    @usableFromInline var start: UInt64 = 1
    /// The last address a whole word of the mapping starts at (below `start` while there is none):
    /// compared with, not computed from the address, which wraps at the top of the address space.
    @usableFromInline var last: UInt64 = 0
    @usableFromInline var base: UnsafeRawPointer? = nil

    public init(source: MemorySource) { self.source = source }

    // Inlinable: the scan of another module calls it for every word of every object.
    @inlinable @inline(__always)
    public mutating func word(_ address: UInt64) -> UInt64? {
        if address >= start && address <= last, let base {
            return base.loadUnaligned(fromByteOffset: Int(address - start), as: UInt64.self)
        }
        return slowWord(address)
    }

    /// Where `address` sits in swref's memory when the window holds it (for prefetching), else nil.
    @inlinable @inline(__always)
    public func local(_ address: UInt64) -> UnsafeRawPointer? {
        guard address >= start && address <= last, let base else { return nil }
        return base + Int(address - start)
    }

    @usableFromInline mutating func slowWord(_ address: UInt64) -> UInt64? {
        if let local = source.localBytes(containing: address), let pointer = local.bytes.baseAddress, local.bytes.count >= 8 {
            start = local.start
            last = local.start + UInt64(local.bytes.count - 8)
            base = UnsafeRawPointer(pointer)
            if address >= start && address <= last { return base!.loadUnaligned(fromByteOffset: Int(address - start), as: UInt64.self) }
        }
        return source.readWord(address)
    }
}

extension MemorySource {
    @inlinable @inline(__always)
    public func readWord(_ address: UInt64) -> UInt64? {
        var value: UInt64 = 0
        return withUnsafeMutableBytes(of: &value) { read(address, count: 8, into: $0.baseAddress!) } ? value : nil
    }

    @inlinable @inline(__always)
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
