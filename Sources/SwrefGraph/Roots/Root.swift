import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// What kind of root holds a reference, in the order the walk visits them.
public enum RootKind: String, CaseIterable, Comparable, Sendable {
    case global, stack, task, dispatch, register, tls, runtime, conservative
    /// With dominator attribution: objects that no single root dominates.
    case shared
    /// The pseudo-root of objects no root reaches (see `LeakFinder`).
    case leaked

    public static func < (lhs: RootKind, rhs: RootKind) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A named root and the objects it references directly, each with the frame label of the edge
/// ("" puts the object in the root's own frame).
public struct Root: Sendable {
    public var name: String
    public var kind: RootKind
    public var targets: [Int32] = []
    public var labels: [UInt32] = []

    public init(name: String, kind: RootKind) {
        self.name = name
        self.kind = kind
    }
}
