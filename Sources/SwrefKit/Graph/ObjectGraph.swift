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

    /// The graph of consecutive parts, each holding the objects after the previous part's; a part
    /// may begin by finishing the previous part's last object, whose first edges that part holds.
    public init(concatenating parts: [ObjectGraph]) {
        let objects = parts.reduce(0) { $0 + $1.edgeStart.count - 1 }
        targets = ObjectGraph.joined(parts.map(\.targets))
        labels = ObjectGraph.joined(parts.map(\.labels))
        edgeStart = Array(unsafeUninitializedCapacity: objects + 1) { buffer, count in
            buffer[0] = 0
            count = 1
            var base: UInt32 = 0
            for part in parts {
                part.edgeStart.withUnsafeBufferPointer { source in
                    for index in 1..<source.count { buffer[count + index - 1] = base + source[index] }
                }
                count += part.edgeStart.count - 1
                base += UInt32(part.targets.count)
            }
        }
    }

    /// The arrays one after another, copied with no per-element checks: the parts of a large heap
    /// hold tens of millions of edges.
    private static func joined<T>(_ arrays: [[T]]) -> [T] {
        Array(unsafeUninitializedCapacity: arrays.reduce(0) { $0 + $1.count }) { buffer, count in
            for array in arrays {
                array.withUnsafeBufferPointer { source in
                    _ = UnsafeMutableBufferPointer(rebasing: buffer[count..<count + source.count]).initialize(from: source)
                }
                count += array.count
            }
        }
    }

    @inline(__always)
    public func edges(of object: Int) -> Range<Int> { Int(edgeStart[object])..<Int(edgeStart[object + 1]) }
}
