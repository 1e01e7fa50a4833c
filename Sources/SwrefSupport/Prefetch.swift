import CSwrefSystem

/// Loading ahead for the passes that follow references into arrays indexed by object: on a heap
/// whose references point all over it (a dictionary of a million objects), every step is a cache
/// miss, and asking for the element some references ahead lets the misses overlap.
package enum Prefetch {
    /// How many references ahead.
    package static let distance = 32

    @inlinable @inline(__always)
    package static func element<T>(_ buffer: UnsafeMutableBufferPointer<T>, _ index: Int) {
        swref_prefetch(buffer.baseAddress! + index)
    }

    @inlinable @inline(__always)
    package static func element<T>(_ buffer: UnsafeBufferPointer<T>, _ index: Int) {
        swref_prefetch(buffer.baseAddress! + index)
    }
}
