import SwrefImages
import SwrefMemory
import SwrefRuntimes

/// **stack** roots: every thread unwound (libdwfl), each frame's DWARF-located locals walked by
/// their types (`thread N › function › name`), the rest of each frame word by word.
public final class StackRoots {
    public let scan: RootScan
    public let threads: [ThreadState]
    public let images: ImageList
    public let values: ValueLayoutBuilder?
    public let symbolizer: Symbolizer

    public init(scan: RootScan, threads: [ThreadState], images: ImageList, values: ValueLayoutBuilder?, symbolizer: Symbolizer) {
        self.scan = scan
        self.threads = threads
        self.images = images
        self.values = values
        self.symbolizer = symbolizer
    }

    private var source: MemorySource { scan.source }
    /// Every thread's frames, unwound when the first stack is asked for.
    private lazy var unwound: [Int32: [StackFrame]] = StackUnwinder.unwind(threads: threads, images: images, source: source)

    /// The roots of thread `number`'s stack, innermost frame first.
    public func roots(_ thread: ThreadState, number: Int) -> [Root] {
        guard let region = source.memoryMap.region(containing: thread.rsp) else { return [] }
        var frames = unwound[thread.tid] ?? []
        if frames.isEmpty { frames = [StackFrame(pc: thread.rip, sp: thread.rsp, isActivation: true)] }
        var roots: [Root] = []
        // The innermost frame may use the 128-byte red zone below its stack pointer.
        var start = max(region.start, thread.rsp &- 128)
        for (index, frame) in frames.enumerated() {
            let end = index + 1 < frames.count ? frames[index + 1].sp : region.end
            guard end > start, region.contains(end - 1) || end == region.end else { break }
            let pc = frame.isActivation ? frame.pc : frame.pc &- 1
            let function = "thread \(number) › \(symbolizer.name(of: pc))"
            // Locals DWARF can place are roots of their own, walked by their types.
            roots += namedLocals(frame: frame, pc: pc, cfa: index + 1 < frames.count ? frames[index + 1].sp : nil, prefix: function)
            var root = Root(name: function, kind: .stack)
            for piece in scan.unclaimed(start..<end) { scan.scan(&root, from: piece.lowerBound, to: piece.upperBound) }
            roots.append(root)
            start = end
        }
        if start < region.end {
            var root = Root(name: "thread \(number) › stack", kind: .stack)
            scan.scan(&root, from: start, to: region.end)
            roots.append(root)
        }
        scan.claim(region.start..<region.end)
        return roots
    }

    /// `thread N › function › name` roots for the locals of one frame that DWARF locates in memory.
    private func namedLocals(frame: StackFrame, pc: UInt64, cfa: UInt64?, prefix: String) -> [Root] {
        guard let values, let image = images.image(containing: pc), image.file.section(named: ".debug_info") != nil,
              let (frameBase, locals) = DwarfLocals.at(pc: pc &- image.loadBias, in: image.hostPath) else { return [] }
        func value(of base: DwarfLocal.Base?) -> UInt64? {
            switch base {
            case .frameBase?: return value(of: frameBase)
            case .cfa?: return cfa
            case .register(6)?: return frame.bp == 0 ? nil : frame.bp
            case .register(7)?: return frame.sp
            default: return nil
            }
        }
        var roots: [Root] = []
        for local in locals where !local.name.isEmpty {
            guard let mangled = local.typeName, mangled.hasPrefix("$s"), let layout = values.layout(ofMangledType: mangled),
                  layout.hasReferences, let base = value(of: local.base) else { continue }
            let slot = base &+ UInt64(bitPattern: local.offset)
            guard source.memoryMap.region(containing: slot) != nil else { continue }
            let address = local.indirect ? (source.readWord(slot) ?? 0) : slot
            guard address != 0 else { continue }
            var root = Root(name: "\(prefix) › \(local.name)", kind: .stack)
            scan.scanValue(layout, at: address, into: &root)
            scan.claim(slot..<(slot + UInt64(local.indirect ? 8 : max(layout.size, 8))))
            if !root.targets.isEmpty { roots.append(root) }
        }
        return roots
    }
}
