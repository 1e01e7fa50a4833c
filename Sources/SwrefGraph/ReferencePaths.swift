/// The object graph, its roots, and the path that attributes each object.
public struct ReferencePaths {
    public let graph: ObjectGraph
    public let roots: [Root]
    public let attribution: Attribution
    public let leaks: LeakReport
    /// Dominators and retained sizes, unless the graph was too large for them.
    public let retained: RetainedSizes?

    public init(graph: ObjectGraph, roots: [Root], attribution: Attribution, leaks: LeakReport, retained: RetainedSizes?) {
        self.graph = graph
        self.roots = roots
        self.attribution = attribution
        self.leaks = leaks
        self.retained = retained
    }
}
