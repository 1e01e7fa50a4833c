/// Which kind of root first reaches each object, walking root kinds in order (globals, stacks,
/// tasks, …) as the first-path attribution does, but without building paths: all the dominator
/// pass and the leak finder need. One byte per object.
public struct RootTiers {
    /// The rank of the root kind (its index in `RootKind.allCases`) whose walk reached each object;
    /// `unreached` when none did.
    public private(set) var tier: [UInt8]
    public static let unreached = UInt8(RootKind.allCases.count)

    public init(objectCount: Int, graph: ObjectGraph, roots: [Root]) {
        var tier = [UInt8](repeating: RootTiers.unreached, count: objectCount)
        var queue = [Int32](repeating: 0, count: objectCount)
        var tail = 0
        var head = 0
        // Unchecked buffers: every index is an object number the graph was built with.
        tier.withUnsafeMutableBufferPointer { tier in
            queue.withUnsafeMutableBufferPointer { queue in
                graph.edgeStart.withUnsafeBufferPointer { edgeStart in
                    graph.targets.withUnsafeBufferPointer { targets in
                        for (rank, kind) in RootKind.allCases.enumerated() {
                            let rank = UInt8(rank)
                            for root in roots where root.kind == kind {
                                for target in root.targets where tier[Int(target)] == RootTiers.unreached {
                                    tier[Int(target)] = rank
                                    queue[tail] = target
                                    tail += 1
                                }
                            }
                            while head < tail {
                                let object = Int(queue[head])
                                head += 1
                                for edge in Int(edgeStart[object])..<Int(edgeStart[object + 1]) {
                                    let target = Int(targets[edge])
                                    if tier[target] == RootTiers.unreached {
                                        tier[target] = rank
                                        queue[tail] = Int32(target)
                                        tail += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        self.tier = tier
    }

    public func isReachable(_ object: Int) -> Bool { tier[object] != RootTiers.unreached }

    public static func rank(of kind: RootKind) -> UInt8 {
        UInt8(RootKind.allCases.firstIndex(of: kind) ?? RootKind.allCases.count)
    }
}
