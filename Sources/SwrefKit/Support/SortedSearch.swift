extension Array where Element: Comparable {
    /// The index of the first element not less than `value` (`count` when there is none); the
    /// array must be sorted.
    func lowerBound(_ value: Element) -> Int {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) >> 1
            if self[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// The index of the first element greater than `value`; the array must be sorted.
    func upperBound(_ value: Element) -> Int {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) >> 1
            if self[mid] <= value { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
