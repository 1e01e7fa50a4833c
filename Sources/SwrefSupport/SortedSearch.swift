extension RandomAccessCollection where Index == Int {
    /// The first index whose element satisfies `isAfter` (`endIndex` when none does); the
    /// collection must be partitioned: every element failing it before every element passing it.
    @inline(__always)
    public func partitioningIndex(where isAfter: (Element) -> Bool) -> Int {
        var low = startIndex
        var high = endIndex
        while low < high {
            let mid = (low + high) >> 1
            if isAfter(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}

extension RandomAccessCollection where Index == Int, Element: Comparable {
    /// The index of the first element not less than `value` (`count` when there is none); the
    /// collection must be sorted.
    public func lowerBound(_ value: Element) -> Int { partitioningIndex { $0 >= value } }

    /// The index of the first element greater than `value`; the collection must be sorted.
    public func upperBound(_ value: Element) -> Int { partitioningIndex { $0 > value } }
}
