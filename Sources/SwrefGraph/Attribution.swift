import CSwrefSystem
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// Attributes every object to one reference path from a root: breadth-first, root kinds in
/// order (globals, stacks, registers, TLS, runtime, conservative), each kind's walk finished
/// before the next starts so that a precise root wins over a stale conservative word.
///
/// Paths are nodes of a trie of frames; an object's node is its sample in the profile.
public struct Attribution {
    public struct PathNode: Sendable {
        public var parent: Int32      // -1 for a root frame
        public var frame: UInt32      // into `frames`
        public var root: Int32        // index of the root this path starts from
        public var depth: Int32
    }

    public private(set) var nodes: [PathNode] = []
    /// The node of each object; -1 when no root reaches it (until `attributeLeaks`).
    public private(set) var nodeOf: PooledArray<Int32>
    public private(set) var roots: [Root]
    public let names: FrameNames
    private var children: [UInt64: Int32] = [:]
    private var recentChildren = DirectMappedCache()
    /// The last two answers of `child` (while the trie only grows, an answer stays right).
    private var lastAnswers: (Answer, Answer) = (Attribution.noAnswer, Attribution.noAnswer)
    private typealias Answer = (parent: Int32, key: UInt64, node: Int32)
    private static let noAnswer: Answer = (Int32.min, 0, 0)
    /// Frames that stand for the rest of a chain of untyped blocks, and the link frame each repeats.
    private var chainLinks: [UInt32: UInt32] = [:]
    private var chainFrames: [UInt32: UInt32] = [:]
    private let maxDepth: Int
    public static let leakedRoot = "<leaked>"
    public static let sharedRoot = "<shared by several roots>"

    /// No object placed yet: for `attributeByDominators`, which places them all.
    public init(objectCount: Int, roots: [Root], names: FrameNames, maxDepth: Int = 256) {
        self.names = names
        self.roots = roots
        self.maxDepth = maxDepth
        nodeOf = PooledArray(repeating: -1, count: objectCount)
    }

    /// Every reachable object on its first path.
    public init(objectCount: Int, graph: ObjectGraph, roots: [Root], names: FrameNames, maxDepth: Int = 256) {
        self.init(objectCount: objectCount, roots: roots, names: names, maxDepth: maxDepth)
        var queue: [Int32] = []
        queue.reserveCapacity(objectCount)
        var head = 0
        for kind in RootKind.allCases {
            for (index, root) in roots.enumerated() where root.kind == kind {
                let rootNode = Int32(nodes.count)
                nodes.append(PathNode(parent: -1, frame: names.intern(root.name), root: Int32(index), depth: 1))
                for (target, label) in zip(root.targets, root.labels) where nodeOf[Int(target)] < 0 {
                    nodeOf[Int(target)] = child(rootNode, label, target)
                    queue.append(target)
                }
            }
            expand(&queue, from: &head, graph: graph)
        }
    }

    /// Breadth-first from the queued objects: each object not yet placed goes below the node of
    /// the object that reaches it, named by the reference's label.
    @inline(__always)
    private mutating func expand(_ queue: inout [Int32], from head: inout Int, graph: ObjectGraph) {
        while head < queue.count {
            let object = Int(queue[head])
            head += 1
            let node = nodeOf[object]
            for edge in graph.edges(of: object) {
                let target = Int(graph.targets[edge])
                if nodeOf[target] < 0 {
                    nodeOf[target] = child(node, graph.labels[edge], Int32(target))
                    queue.append(Int32(target))
                }
            }
        }
    }

    /// The trie node below `parent` for an edge label `code` toward `target`.
    @inline(__always)
    private mutating func child(_ parent: Int32, _ code: UInt32, _ target: Int32) -> Int32 {
        // The answer depends on the parent, the code and (for a path) the target's type alone;
        // siblings come in alternating runs (a record and its payload, each below its own node),
        // so the last two answers are remembered before anything is hashed.
        let key = names.resolutionKey(code, target: target)
        if lastAnswers.0.parent == parent && lastAnswers.0.key == key { return lastAnswers.0.node }
        if lastAnswers.1.parent == parent && lastAnswers.1.key == key { return lastAnswers.1.node }
        let node = resolveChild(parent, code, target)
        lastAnswers = ((parent, key, node), lastAnswers.0)
        return node
    }

    private mutating func resolveChild(_ parent: Int32, _ code: UInt32, _ target: Int32) -> Int32 {
        var frame = names.frame(code, target: target)
        if frame == 0 { return parent }
        let parentNode = nodes[Int(parent)]
        // A linked list of untyped blocks (each holding the next, word-scanned) would be a frame per
        // link, hundreds deep: the second link and all after it share one frame, `… (chain)`, whose
        // count is the links after the second.
        if !chainLinks.isEmpty, chainLinks[parentNode.frame] == frame { return parent }
        if parentNode.frame == frame, let chain = chainFrame(for: frame) { frame = chain }
        if parentNode.depth >= maxDepth { return parent }
        let key = UInt64(UInt32(bitPattern: parent)) << 32 | UInt64(frame)
        // Siblings come in interleaved runs (every value of one dictionary, and what each holds):
        // most lookups are repeats, answered without hashing.
        if let existing = recentChildren.value(for: key) { return Int32(bitPattern: existing) }
        if let existing = children[key] { recentChildren.set(UInt32(bitPattern: existing), for: key); return existing }
        let id = Int32(nodes.count)
        nodes.append(PathNode(parent: parent, frame: frame, root: parentNode.root, depth: parentNode.depth + 1))
        children[key] = id
        recentChildren.set(UInt32(bitPattern: id), for: key)
        return id
    }

    /// The frame for the rest of a chain of `link` frames, when `link` is a word-scanned reference.
    private mutating func chainFrame(for link: UInt32) -> UInt32? {
        if let known = chainFrames[link] { return known == UInt32.max ? nil : known }
        let text = names[link]
        guard text.hasPrefix("$sub_objects$") else { chainFrames[link] = UInt32.max; return nil }
        let chain = names.intern("\(text) … (chain)")
        chainFrames[link] = chain
        chainLinks[chain] = link
        return chain
    }

    /// Re-attributes every object along its immediate-dominator chain, so that a frame's cumulative
    /// value is exactly what freeing that reference would free. An object dominated by no single
    /// root sits under `<shared by several roots>`. Each step is named by a direct reference from
    /// the dominator when there is one, else by the object's type, `(T)`.
    public mutating func attributeByDominators(_ retained: RetainedSizes, graph: ObjectGraph, objects: ObjectTable,
                                               leaks: LeakReport) {
        var groupFrame: [Int32: UInt32] = [:]
        for group in leaks.groups {
            let frame = names.code(frame: "\(group.kind.rawValue): \(group.shape)")
            for member in group.members { groupFrame[member] = frame }
        }
        nodes = []
        children = [:]
        chainLinks = [:]
        chainFrames = [:]
        recentChildren = DirectMappedCache()
        lastAnswers = (Attribution.noAnswer, Attribution.noAnswer)
        var rootNodes = [Int32](repeating: -1, count: roots.count + 1)
        var typeLabels: [Int32: UInt32] = [:]
        func rootNode(_ root: Int) -> Int32 {
            if rootNodes[root] >= 0 { return rootNodes[root] }
            if root == roots.count { roots.append(Root(name: Attribution.sharedRoot, kind: .shared)) }
            let id = Int32(nodes.count)
            nodes.append(PathNode(parent: -1, frame: names.intern(roots[root].name), root: Int32(root), depth: 1))
            rootNodes[root] = id
            return id
        }
        func typeLabel(_ object: Int) -> UInt32 {
            let type = objects.typeIndices[object]
            if let label = typeLabels[type] { return label }
            let label = names.code(frame: "(\(SwiftTypeNames.display(objects.types[Int(type)].name)))")
            typeLabels[type] = label
            return label
        }
        // The label of the reference each object's immediate dominator holds to it, found in one
        // pass over all references (a per-child search of a holder's references would be
        // quadratic for a dictionary of a million values). Two threads each read every reference
        // and take those toward their half of the objects: a split by holders would leave one
        // thread a dictionary's millions of values. Objects a root dominates get the root's label
        // after: the references' pass never labels them (their dominator is no object).
        let dominatorLabel = DominatorLabels(objectCount: objects.count)
        let rootCount = retained.rootCount
        // Out of `self` while `child` (which changes `self`) is called for each object.
        var nodeOf = self.nodeOf
        self.nodeOf = PooledArray()
        defer { self.nodeOf = nodeOf }
        let half = objects.count / 2
        // No object placed yet: each thread clears its half first.
        nodeOf.withUnsafeMutableBufferPointer { nodeOf in
            Parallel.run({
                UnsafeMutableBufferPointer(rebasing: nodeOf[0..<half]).update(repeating: -1)
                dominatorLabel.find(targets: 0..<half, retained: retained, graph: graph)
            }, {
                UnsafeMutableBufferPointer(rebasing: nodeOf[half...]).update(repeating: -1)
                dominatorLabel.find(targets: half..<objects.count, retained: retained, graph: graph)
            })
        }
        for (index, root) in roots.enumerated() where root.kind != .leaked && index < retained.rootCount {
            let rootNode = Int32(retained.node(ofRoot: index))
            for (target, label) in zip(root.targets, root.labels)
            where dominatorLabel[Int(target)] == .max && retained.idom[retained.node(ofObject: Int(target))] == rootNode {
                dominatorLabel[Int(target)] = label
            }
        }
        nodeOf.withUnsafeMutableBufferPointer { nodeOf in
            retained.idom.withUnsafeBufferPointer { idom in
                retained.topDown.withUnsafeBufferPointer { topDown in
                    for node in topDown {
                        guard let object = retained.object(ofNode: Int(node)) else { continue }
                        let dominator = Int(idom[Int(node)])
                        let parent: Int32
                        var label: UInt32? = nil
                        if dominator == 0 {
                            parent = rootNode(rootCount)
                        } else if let holder = retained.object(ofNode: dominator) {
                            parent = nodeOf[holder]
                            label = dominatorLabel.found(object)
                        } else {
                            let root = dominator - 1
                            parent = rootNode(root)
                            label = roots[root].kind == .leaked ? groupFrame[Int32(object)]
                                : dominatorLabel.found(object)
                        }
                        nodeOf[object] = child(parent, label ?? typeLabel(object), Int32(object))
                    }
                }
            }
        }
    }

    /// Places leaked objects under `<leaked>` › `ROOT CYCLE: …` (or `ROOT LEAK: …`), with what each
    /// leak root retains below it on its own paths.
    public mutating func attributeLeaks(_ report: LeakReport, graph: ObjectGraph) {
        guard !report.groups.isEmpty else { return }
        roots = Attribution.withLeakedRoot(roots)
        let rootNode = Int32(nodes.count)
        nodes.append(PathNode(parent: -1, frame: names.intern(Attribution.leakedRoot), root: Int32(roots.count - 1), depth: 1))
        for group in report.groups {
            let groupNode = child(rootNode, names.code(frame: "\(group.kind.rawValue): \(group.shape)"), group.members[0])
            var queue: [Int32] = []
            for member in group.members where nodeOf[Int(member)] < 0 {
                nodeOf[Int(member)] = groupNode
                queue.append(member)
            }
            var head = 0
            expand(&queue, from: &head, graph: graph)
        }
    }

    /// `roots` with the `<leaked>` pseudo-root last, once.
    public static func withLeakedRoot(_ roots: [Root]) -> [Root] {
        roots.last?.kind == .leaked ? roots : roots + [Root(name: Attribution.leakedRoot, kind: .leaked)]
    }

    /// Frame names from the root down to `node`.
    public func frames(of node: Int32) -> [String] {
        var result: [String] = []
        var current = node
        while current >= 0 {
            result.append(names[nodes[Int(current)].frame])
            current = nodes[Int(current)].parent
        }
        return result.reversed()
    }
}

/// Per object: the label of the reference its immediate dominator holds to it (`.max` for none yet).
private final class DominatorLabels {
    private let labels: UnsafeMutableBufferPointer<UInt32>

    /// Each object's label is set to none by the `find` that covers it.
    init(objectCount: Int) {
        labels = .allocatePooled(capacity: max(objectCount, 1))
        if objectCount == 0 { labels.initialize(repeating: .max) }
    }

    deinit { labels.deallocatePooled() }

    /// The labels of the references toward `targets` held by their immediate dominators; each
    /// target's references in graph order, the first one found wins.
    /// Unchecked buffers: every index is an object or node number the graph was built with.
    func find(targets wanted: Range<Int>, retained: RetainedSizes, graph: ObjectGraph) {
        let labels = self.labels
        UnsafeMutableBufferPointer(rebasing: labels[wanted]).initialize(repeating: .max)
        retained.idom.withUnsafeBufferPointer { idom in
            graph.edgeStart.withUnsafeBufferPointer { edgeStart in
                graph.targets.withUnsafeBufferPointer { targets in
                    graph.labels.withUnsafeBufferPointer { edgeLabels in
                        let offset = retained.node(ofObject: 0)
                        let holders = max(edgeStart.count - 1, 0)
                        for holder in 0..<holders {
                            let holderNode = Int32(holder + offset)
                            for edge in Int(edgeStart[holder])..<Int(edgeStart[holder + 1]) {
                                if edge + Prefetch.distance < targets.count {
                                    let ahead = targets[edge + Prefetch.distance]
                                    if wanted.containsObject(ahead) {
                                        swref_prefetch(idom.baseAddress! + Int(ahead) + offset)
                                        swref_prefetch(labels.baseAddress! + Int(ahead))
                                    }
                                }
                                let target = targets[edge]
                                guard wanted.containsObject(target) else { continue }
                                if labels[Int(target)] == .max && idom[Int(target) + offset] == holderNode {
                                    labels[Int(target)] = edgeLabels[edge]
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The label found for `object`, if one was.
    @inline(__always)
    func found(_ object: Int) -> UInt32? { labels[object] == .max ? nil : labels[object] }

    subscript(object: Int) -> UInt32 {
        get { labels[object] }
        set { labels[object] = newValue }
    }
}
