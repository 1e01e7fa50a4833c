/// Loading ahead for the passes that follow references into arrays indexed by object: on a heap
/// whose references point all over it (a dictionary of a million objects), every step is a cache
/// miss, and asking for the element some references ahead lets the misses overlap. The passes
/// call `swref_prefetch` (CSwrefSystem) themselves: a Swift wrapper in this module was not
/// inlined into theirs and cost a call per reference.
public enum Prefetch {
    /// How many references ahead.
    @inlinable public static var distance: Int { 32 }
}
