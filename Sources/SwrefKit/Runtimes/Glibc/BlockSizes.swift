/// Chunk sizes, four bytes each: at ten million blocks the difference to `[UInt64]` is 40 MB of
/// swref's peak. The rare chunk of 4 GiB or more (an mmapped one) keeps its size in a side table.
public struct BlockSizes: RandomAccessCollection {
    private var small: [UInt32] = []
    private var large: [Int: UInt64] = [:]

    public init() {}

    public var startIndex: Int { 0 }
    public var endIndex: Int { small.count }

    @inline(__always)
    public subscript(index: Int) -> UInt64 {
        get {
            let value = small[index]
            return value == .max ? large[index]! : UInt64(value)
        }
        set {
            if newValue >= UInt64(UInt32.max) {
                small[index] = .max
                large[index] = newValue
            } else {
                small[index] = UInt32(newValue)
                if !large.isEmpty { large[index] = nil }
            }
        }
    }

    public mutating func append(_ size: UInt64) {
        small.append(0)
        self[small.count - 1] = size
    }

    public mutating func reserveCapacity(_ count: Int) { small.reserveCapacity(count) }

    public mutating func removeLast(_ count: Int) {
        if !large.isEmpty { for index in (small.count - count)..<small.count { large[index] = nil } }
        small.removeLast(count)
    }

    /// The sizes in `order` (indices into these).
    func permuted(_ order: [Int]) -> BlockSizes {
        var result = BlockSizes()
        result.reserveCapacity(order.count)
        for index in order { result.append(self[index]) }
        return result
    }
}
