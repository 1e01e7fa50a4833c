import SwrefMemory
import SwrefRuntimes

/// What the root producers share: the scanner that finds references, and the memory a root has
/// already covered — a later, conservative scan skips it, so each word is one root's.
public final class RootScan {
    public let source: MemorySource
    public let objects: ObjectTable
    public let scanner: ReferenceScanner
    /// Address ranges already covered by a root.
    private var claimed: [Range<UInt64>] = []

    public init(source: MemorySource, objects: ObjectTable, scanner: ReferenceScanner) {
        self.source = source
        self.objects = objects
        self.scanner = scanner
    }

    /// Marks memory as a root's, for the conservative scans that follow.
    public func claim(_ range: Range<UInt64>) { claimed.append(range) }

    /// Scans a root's memory word by word. A conservative word has no variable name, so unless the
    /// root is one named variable the object gets a frame that names its type.
    public func scan(_ root: inout Root, from start: UInt64, to end: UInt64, namedVariable: Bool = false) {
        guard end > start else { return }
        var targets: [Int32] = []
        var labels: [UInt32] = []
        scanner.scanWords(from: start, to: end, label: 0) { target, _ in
            targets.append(target)
            labels.append(namedVariable ? 0 : self.scanner.typeLabel(of: target))
        }
        root.targets += targets
        root.labels += labels
        claimed.append(start..<end)
    }

    /// A typed value's references (a global, a local), as a root's targets and labels.
    public func scanValue(_ layout: ValueLayout, at address: UInt64, into root: inout Root) {
        var targets: [Int32] = []
        var labels: [UInt32] = []
        scanner.scanValue(layout, at: address, prefix: "") { targets.append($0); labels.append($1) }
        root.targets = targets
        root.labels = labels
    }

    /// An object a root holds as a whole, in the frame `label` gives it.
    public func hold(_ object: Int32, label: UInt32, in root: inout Root) {
        root.targets.append(object)
        root.labels.append(label)
    }

    /// The parts of `range` no root has claimed yet, nor any of `more`.
    public func unclaimed(_ range: Range<UInt64>, besides more: [Range<UInt64>] = []) -> [Range<UInt64>] {
        var pieces = [range]
        for taken in claimed + more where taken.overlaps(range) {
            pieces = pieces.flatMap { piece -> [Range<UInt64>] in
                guard piece.overlaps(taken) else { return [piece] }
                var out: [Range<UInt64>] = []
                if piece.lowerBound < taken.lowerBound { out.append(piece.lowerBound..<taken.lowerBound) }
                if taken.upperBound < piece.upperBound { out.append(taken.upperBound..<piece.upperBound) }
                return out
            }
        }
        return pieces
    }

    /// Scans what no root has claimed of a heap block: a task's slab, a queued block.
    public func scanUnclaimed(block: Int32, into root: inout Root) {
        let start = objects.addresses[Int(block)]
        for piece in unclaimed(start..<(start + objects.usableSize(Int(block)))) { scan(&root, from: piece.lowerBound, to: piece.upperBound) }
    }
}
