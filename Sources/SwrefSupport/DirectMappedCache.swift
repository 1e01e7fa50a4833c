/// A small cache in front of a dictionary with 64-bit keys, one entry per slot, no hashing beyond
/// a multiply: the attribution asks for the same few (parent, frame) pairs millions of times, in
/// interleaved runs (a record, its payload, the next record), which a one-entry cache misses.
public struct DirectMappedCache {
    @usableFromInline var keys: [UInt64]
    @usableFromInline var values: [UInt32]
    @usableFromInline let shift: UInt64

    /// - Parameter bits: 2^bits entries.
    public init(bits: Int = 8) {
        keys = [UInt64](repeating: .max, count: 1 << bits)
        values = [UInt32](repeating: 0, count: 1 << bits)
        shift = UInt64(64 - bits)
    }

    @inlinable @inline(__always)
    func slot(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    @inlinable @inline(__always)
    public func value(for key: UInt64) -> UInt32? {
        let slot = slot(key)
        return keys[slot] == key ? values[slot] : nil
    }

    @inlinable @inline(__always)
    public mutating func set(_ value: UInt32, for key: UInt64) {
        let slot = slot(key)
        keys[slot] = key
        values[slot] = value
    }
}
