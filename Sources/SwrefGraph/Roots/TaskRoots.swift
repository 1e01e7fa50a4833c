import SwrefImages
import SwrefMemory
import SwrefRuntimes

/// **task** roots: every Swift task (`AsyncTask`) — the closure it runs (`task #ID › operation`),
/// each suspended async frame (`task #ID › function`), its task-local values, then the rest of the
/// task and its allocator slabs.
public struct TaskRoots {
    public let scan: RootScan
    public let symbolizer: Symbolizer

    public func roots() -> [Root] {
        let objects = scan.objects, source = scan.source
        var roots: [Root] = []
        var frameSizes: [UInt64: UInt64] = [:]
        for object in objects.objects(ofKind: .task) {
            let address = objects.addresses[object]
            guard let task = AsyncTask(at: address, source: source) else { continue }
            let name = "task #\(task.id)"
            // The closure the task runs, held by the task itself until it completes: first, so
            // that what only the closure captured is shown under it.
            if let slot = task.operationContextSlot(usable: objects.usableSize(object)) {
                var root = Root(name: "\(name) › operation", kind: .task)
                scan.scan(&root, from: slot, to: slot + 8)
                if !root.targets.isEmpty { roots.append(root) }
            }
            for frame in task.frames {
                let function = AsyncTask.functionName(symbolizer.name(of: frame.resume))
                var root = Root(name: "\(name) › \(function)", kind: .task)
                let size = frameSizes[frame.resume] ?? frameSize(resume: frame.resume)
                frameSizes[frame.resume] = size
                scan.scan(&root, from: frame.context, to: frame.context &+ size)
                roots.append(root)
            }
            if !task.localValues.isEmpty {
                var root = Root(name: "\(name) › task-local values", kind: .task)
                for value in task.localValues { scan.scan(&root, from: value, to: value &+ 32) }
                roots.append(root)
            }
            let parent = task.parent.flatMap { AsyncTask.id(at: $0, source: source) }.map { ", child of task #\($0)" } ?? ""
            var root = Root(name: "\(name) (\(task.state)\(parent))", kind: .task)
            scan.hold(Int32(object), label: 0, in: &root)
            // The rest of the task and its slabs, less the frames and values already named.
            let usable = objects.usableSize(object)
            for piece in scan.unclaimed((address + 16)..<(address + usable)) { scan.scan(&root, from: piece.lowerBound, to: piece.upperBound) }
            for slab in task.slabs {
                if let block = scan.scanner.target(of: slab), block != Int32(object) {
                    scan.hold(block, label: scan.scanner.names.code(frame: "$slab"), in: &root)
                    scan.scanUnclaimed(block: block, into: &root)
                }
            }
            roots.append(root)
        }
        return roots
    }

    /// An async function's frame size, from its async function pointer (`…Tu`: relative function,
    /// then the context size); 256 bytes when the symbol is not there (a stripped image).
    private func frameSize(resume: UInt64) -> UInt64 {
        guard let (image, symbol) = symbolizer.symbol(at: resume),
              let pointerSymbol = AsyncTask.asyncFunctionPointerSymbol(symbol.name),
              let pointer = image.address(ofSymbol: pointerSymbol),
              let size = scan.source.readUInt32(pointer + 4), size > 0, size < 1 << 20 else { return 256 }
        return UInt64(size)
    }
}
