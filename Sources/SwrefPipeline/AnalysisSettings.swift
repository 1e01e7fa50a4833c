/// How an analysis runs beyond what the target is: made by the CLI from its flags and the
/// environment, so that nothing below the CLI reads the environment.
public struct AnalysisSettings: Sendable {
    /// Threads that walk glibc's main heap and scan references: nil lets each choose (two for a
    /// large heap whose reads are local); 1 or 2 forces it (`SWREF_THREADS`, the tests compare both
    /// on small heaps).
    public var scanThreads: Int?
    /// Bytes the dominator tree may take: nil is half the memory available, at least 1 GiB
    /// (`SWREF_DOMINATOR_BUDGET`).
    public var dominatorBudget: UInt64?
    /// Keeps a snapshot's copy whole until the end instead of giving it back as the scan goes
    /// (`SWREF_KEEP_COPY=1`, for comparison).
    public var keepCopy: Bool
    /// The most bytes of given-back pages the page pool keeps for later phases: nil is 48 per
    /// object; 0 makes every page fresh (`SWREF_PAGE_POOL`, for comparison).
    public var pagePoolLimit: Int?

    public init(scanThreads: Int? = nil, dominatorBudget: UInt64? = nil, keepCopy: Bool = false, pagePoolLimit: Int? = nil) {
        self.scanThreads = scanThreads
        self.dominatorBudget = dominatorBudget
        self.keepCopy = keepCopy
        self.pagePoolLimit = pagePoolLimit
    }
}
