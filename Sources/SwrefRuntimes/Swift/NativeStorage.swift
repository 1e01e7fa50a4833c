/// The standard library's native collection storage (64-bit), as the reference scan reads it.
/// Each storage is one Swift object: the 16-byte object header, the storage's own fields, then
/// its elements (and, for hash storage, the bitmap of occupied buckets) in the same block.
public enum NativeArrayStorage {
    /// `_ContiguousArrayStorage<T>`: `count` at +16 (`_capacityAndFlags` at +24).
    public static let countOffset: UInt64 = 16
    /// The storage's fields end at +32; the elements follow, aligned to the element.
    public static let fieldsEnd = 32

    /// Where the elements of an element type of `alignment` start.
    @inlinable
    public static func elementsStart(alignment: Int) -> Int {
        (fieldsEnd + alignment - 1) / alignment * alignment
    }

    /// How many elements to read: the `count` the storage states, bounded by what fits between
    /// `start` and the end of its block. Nil when no element can be read.
    @inline(__always)
    public static func elementCount(usable: UInt64, stride: Int, start: Int, count: () -> UInt64?) -> Int? {
        guard stride > 0, usable > UInt64(start), let count = count() else { return nil }
        return Int(min(count, (usable - UInt64(start)) / UInt64(stride)))
    }
}

/// `_DictionaryStorage<K, V>` and `_SetStorage<E>` (`_RawDictionaryStorage`, `_RawSetStorage`):
/// `_count` +16, `_capacity` +24, `_scale` (a byte) +32, `_reservedScale` +33, `_extra` +34,
/// `_age` +36, `_seed` +40, then the tail arrays' base pointers — a dictionary's `_rawKeys` +48
/// and `_rawValues` +56, a set's `_rawElements` +48 — and right after them the bitmap of
/// occupied buckets (+64 for a dictionary, +56 for a set).
public enum NativeHashStorage {
    public static let scaleOffset: UInt64 = 32
    public static let dictionaryKeysOffset: UInt64 = 48
    public static let dictionaryValuesOffset: UInt64 = 56
    public static let dictionaryBitmapOffset: UInt64 = 64
    public static let setElementsOffset: UInt64 = 48
    public static let setBitmapOffset: UInt64 = 56

    /// 2^scale buckets; a scale of 40 or more is no storage's.
    @inline(__always)
    public static func bucketCount(scale: UInt8) -> Int? {
        scale < 40 ? 1 << Int(scale) : nil
    }

    /// The bitmap's words for `buckets` buckets, one bit each.
    @inline(__always)
    public static func bitmapWords(buckets: Int) -> Int { (buckets + 63) / 64 }

    /// Word `word` of the bitmap as read, less the bits past the last bucket (set as a sentinel).
    @inline(__always)
    public static func occupiedBits(_ bits: UInt64, word: Int, buckets: Int) -> UInt64 {
        if buckets - word * 64 < 64 { return bits & ((1 << UInt64(buckets - word * 64)) - 1) }
        return bits
    }

    /// Hash storage keeps its keys and values in its own block: a base pointer read from the
    /// target counts only when all `count` elements fit between it and the block's end.
    @inline(__always)
    public static func tailArray(_ base: UInt64?, of address: UInt64, usable: UInt64, count: Int, stride: Int) -> UInt64? {
        guard let base, base >= address, address <= UInt64.max - usable else { return nil }
        let (bytes, overflow) = UInt64(count).multipliedReportingOverflow(by: UInt64(stride))
        guard !overflow, bytes <= usable, base - address <= usable - bytes else { return nil }
        return base
    }
}
