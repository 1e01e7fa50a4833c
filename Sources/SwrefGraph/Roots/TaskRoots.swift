import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// **task** roots: every Swift task (`AsyncTask`) — the closure it runs (`task #ID › operation`),
/// the objects the optimiser promoted into its allocator (`task #ID › function › (T)`), each
/// suspended async frame (`task #ID › function`), its task-local values, then the rest of the task
/// and its allocator slabs.
public struct TaskRoots {
    public let scan: RootScan
    public let symbolizer: Symbolizer

    public func roots() -> [Root] {
        let objects = scan.objects, source = scan.source
        let promoted = PromotedInstances(layouts: scan.scanner.layouts)
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
            var frames: [(name: String, memory: Range<UInt64>)] = []
            for frame in task.frames {
                let size = frameSizes[frame.resume] ?? frameSize(resume: frame.resume)
                frameSizes[frame.resume] = size
                let (end, overflow) = frame.context.addingReportingOverflow(size)
                guard !overflow else { continue }
                frames.append(("\(name) › \(AsyncTask.functionName(symbolizer.name(of: frame.resume)))", frame.context..<end))
            }
            let objectRoots = promotedRoots(task, frames: frames, promoted: promoted)
            roots += objectRoots
            for frame in frames {
                var root = Root(name: frame.name, kind: .task)
                // Less the objects' words (`unclaimed` goes through every claimed range: only when there are some).
                let pieces = objectRoots.isEmpty ? [frame.memory] : scan.unclaimed(frame.memory)
                for piece in pieces { scan.scan(&root, from: piece.lowerBound, to: piece.upperBound) }
                // A frame points into its slab (its caller's frame, a promoted object): the slab is
                // the task's, held below, and what it holds has roots of its own.
                let slabs = root.targets.indices.filter { objects.types[Int(objects.typeIndices[Int(root.targets[$0])])].kind == .taskSlab }
                for index in slabs.reversed() {
                    root.targets.remove(at: index)
                    root.labels.remove(at: index)
                }
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

    /// A root for each object promoted into the task's memory — inside the async frame that points
    /// to it, or an allocation of its own in a slab — walked by its class's layout and named in that
    /// frame (`task #ID › function › (app.Scratch)`). Only addresses a frame points to are tried: a
    /// class's metatype spilled beside a number would otherwise read as an object.
    private func promotedRoots(_ task: AsyncTask, frames: [(name: String, memory: Range<UInt64>)], promoted: PromotedInstances) -> [Root] {
        let allocations = task.allocations.sorted { $0.lowerBound < $1.lowerBound }
        /// The memory `pointer` lies in: the frame's own, else the allocation that holds it.
        func region(of pointer: UInt64, frame: Range<UInt64>) -> Range<UInt64>? {
            if frame.contains(pointer) { return frame }
            let after = allocations.partitioningIndex { $0.lowerBound > pointer }
            return after > 0 && allocations[after - 1].contains(pointer) ? allocations[after - 1] : nil
        }
        var roots: [Root] = []
        var found: Set<UInt64> = []
        for frame in frames {
            for slot in stride(from: frame.memory.lowerBound, to: frame.memory.upperBound, by: 8) {
                guard let pointer = scan.source.readWord(slot), pointer & 7 == 0, !found.contains(pointer),
                      let memory = region(of: pointer, frame: frame.memory),
                      let instance = promoted.instance(at: pointer, limit: memory.upperBound - pointer) else { continue }
                found.insert(pointer)
                var root = Root(name: "\(frame.name) › (\(SwiftTypeNames.display(instance.name)))", kind: .task)
                scan.scanValue(instance.fields, at: instance.address, into: &root)
                for words in instance.uncovered {
                    scan.scan(&root, from: instance.address + UInt64(words.lowerBound), to: instance.address + UInt64(words.upperBound))
                }
                // Its words are the object's, not the frame's.
                scan.claim(instance.address..<instance.address + instance.size)
                roots.append(root)
            }
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
