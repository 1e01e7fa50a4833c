extension Range where Bound == Int {
    /// Whether object number `object` is in the range (object numbers fit 32 bits), in one unsigned
    /// compare: for the passes in which each of two threads takes the references toward its half of
    /// the objects.
    @inline(__always)
    func containsObject(_ object: Int32) -> Bool {
        UInt32(bitPattern: object) &- UInt32(truncatingIfNeeded: lowerBound) < UInt32(truncatingIfNeeded: count)
    }
}
