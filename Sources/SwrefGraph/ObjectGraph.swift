import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// The object graph in compressed sparse rows: the out-edges of object `i` are
/// `targets[edgeStart[i]..<edgeStart[i+1]]`, each with a frame label.
public struct ObjectGraph {
    public private(set) var edgeStart: PooledArray<UInt32>
    public private(set) var targets = PooledArray<Int32>()
    public private(set) var labels = PooledArray<UInt32>()

    /// - Parameter edges: room to reserve for the references, when a bound is known (address
    ///   space only: pages are taken as the references come).
    public init(objectCount: Int, edges: Int = 0) {
        edgeStart = PooledArray()
        edgeStart.reserveCapacity(objectCount + 1)
        edgeStart.append(0)
        if edges > 0 {
            targets.reserveCapacity(edges)
            labels.reserveCapacity(edges)
        }
    }

    /// Edges must be added object by object, in object order, to a graph not copied meanwhile.
    @inline(__always)
    public mutating func add(target: Int32, label: UInt32) {
        targets.appendUnshared(target)
        labels.appendUnshared(label)
    }

    @inline(__always)
    public mutating func finishObject() { edgeStart.appendUnshared(UInt32(targets.count)) }

    public var edgeCount: Int { targets.count }

    /// The graph of consecutive parts, each holding the objects after the previous part's; a part
    /// may begin by finishing the previous part's last object, whose first edges that part holds.
    /// The first part's arrays grow in place (their pages move rather than copy): the parts are
    /// consumed.
    public init(concatenating parts: consuming [ObjectGraph]) {
        guard !parts.isEmpty else { self.init(objectCount: 0); return }
        self = parts.removeFirst()
        let objects = parts.reduce(edgeStart.count) { $0 + $1.edgeStart.count - 1 }
        let edges = parts.reduce(targets.count) { $0 + $1.targets.count }
        targets.reserveCapacity(edges)
        labels.reserveCapacity(edges)
        edgeStart.reserveCapacity(objects)
        while !parts.isEmpty {
            let part = parts.removeFirst()
            let base = UInt32(targets.count)
            targets.append(contentsOf: part.targets)
            labels.append(contentsOf: part.labels)
            part.edgeStart.withUnsafeBufferPointer { source in
                edgeStart.append(contentsOf: source[1...].lazy.map { base + $0 })
            }
        }
    }

    @inline(__always)
    public func edges(of object: Int) -> Range<Int> { Int(edgeStart[object])..<Int(edgeStart[object + 1]) }
}
