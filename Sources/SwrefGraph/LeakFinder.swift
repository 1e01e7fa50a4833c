import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// Objects no root reaches are leaked. They are grouped by strongly connected components: a
/// component that nothing else leaked points into is a leak root — a ROOT CYCLE when its objects
/// retain each other, a ROOT LEAK otherwise — and it carries what it retains below it.
public struct LeakReport {
    public enum Kind: String, Sendable { case cycle = "ROOT CYCLE", leak = "ROOT LEAK" }

    public struct Group: Sendable {
        public var kind: Kind
        /// The component's objects (one for a ROOT LEAK).
        public var members: [Int32]
        /// Leaked objects below the component, retained only through it.
        public var retained: [Int32]
        /// `Parent.child → Child.parent → Parent` for a cycle, the type for a single object.
        public var shape: String
        public var count: Int { members.count + retained.count }

        public init(kind: Kind, members: [Int32], retained: [Int32], shape: String) {
            self.kind = kind
            self.members = members
            self.retained = retained
            self.shape = shape
        }
    }

    public var groups: [Group] = []
    public var leakedCount: Int { groups.reduce(0) { $0 + $1.count } }

    public init(groups: [Group] = []) { self.groups = groups }

    public func bytes(of group: Group, objects: ObjectTable) -> UInt64 {
        (group.members + group.retained).reduce(0) { $0 + objects.sizes[Int($1)] }
    }
}

public enum LeakFinder {
    /// - Parameter reachable: whether the walk from the roots reached an object.
    /// The leaks among the objects `tiers` did not reach. Called from another module, the closure
    /// form below is a call per object and per edge; made here, it is specialised into the loops.
    public static func find(objects: ObjectTable, graph: ObjectGraph, names: FrameNames, tiers: RootTiers) -> LeakReport {
        find(leaked: tiers.unreachedObjects(), objects: objects, graph: graph, names: names) { tiers.isReachable($0) }
    }

    public static func find(objects: ObjectTable, graph: ObjectGraph, names: FrameNames,
                            reachable: (Int) -> Bool) -> LeakReport {
        find(leaked: (0..<objects.count).filter { !reachable($0) }, objects: objects, graph: graph, names: names, reachable: reachable)
    }

    /// - Parameter leaked: the objects `reachable` says no, ascending.
    private static func find(leaked: [Int], objects: ObjectTable, graph: ObjectGraph, names: FrameNames,
                             reachable: (Int) -> Bool) -> LeakReport {
        guard !leaked.isEmpty else { return LeakReport() }
        let component = stronglyConnectedComponents(leaked, graph: graph, reachable: reachable)

        // A component is a leak root when no edge from another leaked component enters it.
        var entered = [Bool](repeating: false, count: component.count)
        for object in leaked {
            for edge in graph.edges(of: object) {
                let target = Int(graph.targets[edge])
                if !reachable(target), component.of[target] != component.of[object] { entered[Int(component.of[target])] = true }
            }
        }
        var membersOf = [[Int32]](repeating: [], count: component.count)
        for object in leaked { membersOf[Int(component.of[object])].append(Int32(object)) }

        var claimed = [Bool](repeating: false, count: objects.count)
        var report = LeakReport()
        // Components in address order of their first object: deterministic.
        let roots = (0..<component.count).filter { !entered[$0] }.sorted { membersOf[$0][0] < membersOf[$1][0] }
        for root in roots {
            let members = membersOf[root]
            for member in members { claimed[Int(member)] = true }
            var retained: [Int32] = []
            var queue = members
            var head = 0
            while head < queue.count {
                let object = Int(queue[head])
                head += 1
                for edge in graph.edges(of: object) {
                    let target = Int(graph.targets[edge])
                    if !reachable(target) && !claimed[target] {
                        claimed[target] = true
                        retained.append(Int32(target))
                        queue.append(Int32(target))
                    }
                }
            }
            let isCycle = members.count > 1 || graph.edges(of: Int(members[0])).contains { graph.targets[$0] == members[0] }
            let shape = isCycle ? cycleShape(members, objects: objects, graph: graph, names: names)
                                : objects.types[Int(objects.typeIndices[Int(members[0])])].name
            report.groups.append(.init(kind: isCycle ? .cycle : .leak, members: members, retained: retained, shape: shape))
        }
        return report
    }

    /// The shortest cycle through the component's object with the smallest type name (so the same
    /// cycle always reads the same), as `Type.field → Type.field → Type`.
    public static func cycleShape(_ members: [Int32], objects: ObjectTable, graph: ObjectGraph, names: FrameNames) -> String {
        let inComponent = Set(members)
        let start = members.min { (typeName($0, objects), $0) < (typeName($1, objects), $1) }!
        var previous: [Int32: (from: Int32, label: UInt32)] = [:]
        var queue = [start]
        var head = 0
        var closing: (from: Int32, label: UInt32)? = nil
        search: while head < queue.count {
            let object = queue[head]
            head += 1
            for edge in graph.edges(of: Int(object)) {
                let target = graph.targets[edge]
                guard inComponent.contains(target) else { continue }
                if target == start { closing = (object, graph.labels[edge]); break search }
                if previous[target] == nil {
                    previous[target] = (object, graph.labels[edge])
                    queue.append(target)
                }
            }
        }
        guard let closing else { return members.map { typeName($0, objects) }.joined(separator: " ⇄ ") }
        var steps: [(object: Int32, label: UInt32, to: Int32)] = [(closing.from, closing.label, start)]
        var current = closing.from
        while current != start, let step = previous[current] {
            steps.append((step.from, step.label, current))
            current = step.from
        }
        let hops = steps.reversed().map { "\(typeName($0.object, objects)).\(fieldName(names.text($0.label, target: $0.to)))" }
        return (hops + [typeName(start, objects)]).joined(separator: " → ")
    }

    public static func typeName(_ object: Int32, _ objects: ObjectTable) -> String {
        objects.types[Int(objects.typeIndices[Int(object)])].name
    }

    /// The field part of a frame label: `child` from `child. (leaks.Child)`, and `callback` from
    /// `callback.{closure #1 () -> () in f()}. (leaks.Handler)` (an object that is its closure's
    /// context): shapes stay as short, and as suppressions match them, as they were.
    public static func fieldName(_ label: String) -> String {
        var field = Substring(label)
        if let range = field.range(of: ". (") { field = field[..<range.lowerBound] }
        if field.hasSuffix("}") {
            if let closure = field.range(of: ".{") {
                field = field[..<closure.lowerBound]
            } else if field.hasPrefix("{") {
                field = field.dropFirst().dropLast()  // no field: the closure is all there is to name
            }
        }
        return field.isEmpty ? "?" : String(field)
    }

    public struct Components {
        public var of: [Int32]
        public var count: Int
    }

    /// Tarjan's algorithm, iterative, over the leaked objects only.
    public static func stronglyConnectedComponents(_ nodes: [Int], graph: ObjectGraph, reachable: (Int) -> Bool) -> Components {
        let n = graph.edgeStart.count - 1
        var index = [Int32](repeating: -1, count: n)
        var low = [Int32](repeating: 0, count: n)
        var onStack = [Bool](repeating: false, count: n)
        var component = [Int32](repeating: -1, count: n)
        var stack: [Int32] = []
        var counter: Int32 = 0
        var components = 0
        var work: [(node: Int32, edge: Int)] = []
        for start in nodes where index[start] < 0 {
            work.append((Int32(start), Int(graph.edgeStart[start])))
            index[start] = counter; low[start] = counter; counter += 1
            stack.append(Int32(start)); onStack[start] = true
            while let (node, edge) = work.last {
                let v = Int(node)
                let end = Int(graph.edgeStart[v + 1])
                if edge < end {
                    work[work.count - 1].edge += 1
                    let w = Int(graph.targets[edge])
                    guard !reachable(w) else { continue }
                    if index[w] < 0 {
                        index[w] = counter; low[w] = counter; counter += 1
                        stack.append(Int32(w)); onStack[w] = true
                        work.append((Int32(w), Int(graph.edgeStart[w])))
                    } else if onStack[w] {
                        low[v] = min(low[v], index[w])
                    }
                } else {
                    work.removeLast()
                    if let parent = work.last { low[Int(parent.node)] = min(low[Int(parent.node)], low[v]) }
                    if low[v] == index[v] {
                        while let top = stack.popLast() {
                            onStack[Int(top)] = false
                            component[Int(top)] = Int32(components)
                            if top == node { break }
                        }
                        components += 1
                    }
                }
            }
        }
        return Components(of: component, count: components)
    }
}
