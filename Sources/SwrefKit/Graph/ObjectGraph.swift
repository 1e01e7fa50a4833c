/// The object graph in compressed sparse rows: the out-edges of object `i` are
/// `targets[edgeStart[i]..<edgeStart[i+1]]`, each with a frame label.
public struct ObjectGraph {
    public private(set) var edgeStart: [UInt32]
    public private(set) var targets: [Int32] = []
    public private(set) var labels: [UInt32] = []

    public init(objectCount: Int) {
        edgeStart = [0]
        edgeStart.reserveCapacity(objectCount + 1)
    }

    /// Edges must be added object by object, in object order.
    public mutating func add(target: Int32, label: UInt32) {
        targets.append(target)
        labels.append(label)
    }

    public mutating func finishObject() { edgeStart.append(UInt32(targets.count)) }

    public var edgeCount: Int { targets.count }

    /// Appends the objects of `other`, which follow this graph's objects in object order.
    public mutating func append(_ other: ObjectGraph) {
        let base = UInt32(targets.count)
        edgeStart.reserveCapacity(edgeStart.count + other.edgeStart.count - 1)
        for start in other.edgeStart.dropFirst() { edgeStart.append(base + start) }
        targets += other.targets
        labels += other.labels
    }

    @inline(__always)
    public func edges(of object: Int) -> Range<Int> { Int(edgeStart[object])..<Int(edgeStart[object + 1]) }
}
