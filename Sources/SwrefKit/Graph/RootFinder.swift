/// Finds the roots of a memory image and what each references directly, in walk order:
/// globals (typed from DWARF, or by symbol), thread stacks (unwound, per frame), registers,
/// thread-local storage, the Swift runtime's data, then whatever else is writable.
public final class RootFinder {
    let source: MemorySource
    let threads: [ThreadState]
    let images: ImageList
    let objects: ObjectTable
    let scanner: ReferenceScanner
    let values: ValueLayoutBuilder?
    let symbolizer: Symbolizer

    /// Address ranges already covered by a root, so conservative scans skip them.
    private var claimed: [Range<UInt64>] = []
    public private(set) var notes: [String] = []

    static let runtimeLibraries = ["libswiftCore.so", "libswift_Concurrency.so", "libswiftDispatch.so", "libdispatch.so",
                                   "libFoundation.so", "libFoundationEssentials.so", "libFoundationInternationalization.so",
                                   "libBlocksRuntime.so", "lib_FoundationICU.so", "libswiftSynchronization.so",
                                   "libswift_StringProcessing.so", "libswift_RegexParser.so", "libswiftGlibc.so"]

    public init(source: MemorySource, threads: [ThreadState], images: ImageList, objects: ObjectTable,
                scanner: ReferenceScanner, values: ValueLayoutBuilder?, symbolizer: Symbolizer) {
        self.source = source
        self.threads = threads
        self.images = images
        self.objects = objects
        self.scanner = scanner
        self.values = values
        self.symbolizer = symbolizer
    }

    public func findRoots() -> [Root] {
        var roots: [Root] = []
        roots += globals()
        let ordered = threads.sorted { lhs, rhs in
            // The main thread (lowest tid, the process id) is thread 1.
            lhs.tid < rhs.tid
        }
        for (number, thread) in ordered.enumerated() { roots += stackRoots(thread, number: number + 1) }
        roots += taskRoots()
        roots += dispatchRoots()
        for (number, thread) in ordered.enumerated() { roots.append(registerRoot(thread, number: number + 1)) }
        for (number, thread) in ordered.enumerated() { if let tls = tlsRoot(thread, number: number + 1) { roots.append(tls) } }
        roots += imageDataRoots()
        roots += anonymousRoots()
        return roots.filter { !$0.targets.isEmpty }
    }

    /// Scans a root's memory word by word. A conservative word has no variable name, so unless the
    /// root is one named variable the object gets a frame that names its type.
    private func scan(_ root: inout Root, from start: UInt64, to end: UInt64, namedVariable: Bool = false) {
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

    // MARK: Globals

    private func globals() -> [Root] {
        var roots: [Root] = []
        for image in images.images where !image.path.contains("/libc.so") {
            let hasDebugInfo = image.file.section(named: ".debug_info") != nil
            var named: [UInt64: Root] = [:]
            if hasDebugInfo, let values, let globals = DwarfGlobals.read(path: image.path) {
                for global in globals {
                    let address = global.address &+ image.loadBias
                    guard let mangled = global.typeName, mangled.hasPrefix("$s"),
                          let layout = values.layout(ofMangledType: mangled) else { continue }
                    var root = Root(name: globalName(image: image, unrelocated: global.address, fallback: global.name), kind: .global)
                    var targets: [Int32] = []
                    var labels: [UInt32] = []
                    scanner.scanValue(layout, at: address, prefix: "") { targets.append($0); labels.append($1) }
                    root.targets = targets
                    root.labels = labels
                    claimed.append(address..<address + UInt64(max(layout.size, 8)))
                    named[address] = root
                }
            }
            // Without DWARF types, Swift globals are still named by their symbols and scanned word by word.
            for symbol in image.file.objectSymbols(prefix: "$s", suffix: "vp") {
                let address = symbol.value &+ image.loadBias
                guard named[address] == nil, symbol.size > 0, symbol.size < 1 << 20 else { continue }
                var root = Root(name: globalName(symbol.name), kind: .global)
                scan(&root, from: address, to: address + symbol.size, namedVariable: true)
                named[address] = root
            }
            roots += named.sorted { $0.key < $1.key }.map(\.value)
        }
        return roots
    }

    /// `module.name` from the symbol at a global's address (`paths.registry : [Int : Session]`).
    private func globalName(image: LoadedImage, unrelocated: UInt64, fallback: String) -> String {
        if let symbol = image.file.symbol(containing: unrelocated), symbol.value == unrelocated { return globalName(symbol.name) }
        return "\(image.name).\(fallback)"
    }

    private func globalName(_ symbol: String) -> String {
        let demangled = Symbolizer.demangle(symbol)
        if let colon = demangled.range(of: " : ") { return String(demangled[..<colon.lowerBound]) }
        return demangled
    }

    // MARK: Threads

    private lazy var unwound: [Int32: [StackFrame]] = StackUnwinder.unwind(threads: threads, images: images, source: source)

    private func stackRoots(_ thread: ThreadState, number: Int) -> [Root] {
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
            for piece in unclaimed(start..<end) { scan(&root, from: piece.lowerBound, to: piece.upperBound) }
            roots.append(root)
            start = end
        }
        if start < region.end {
            var root = Root(name: "thread \(number) › stack", kind: .stack)
            scan(&root, from: start, to: region.end)
            roots.append(root)
        }
        claimed.append(region.start..<region.end)
        return roots
    }

    // MARK: Tasks

    /// Every task is a root: each suspended async frame (`task #ID › function`), its task-local
    /// values, then the rest of the task and its allocator slabs.
    private func taskRoots() -> [Root] {
        var roots: [Root] = []
        var frameSizes: [UInt64: UInt64] = [:]
        for object in objects.objects(ofKind: .task) {
            let address = objects.addresses[object]
            guard let task = AsyncTask(at: address, source: source) else { continue }
            let name = "task #\(task.id)"
            for frame in task.frames {
                let function = AsyncTask.functionName(symbolizer.name(of: frame.resume))
                var root = Root(name: "\(name) › \(function)", kind: .task)
                let size = frameSizes[frame.resume] ?? frameSize(resume: frame.resume)
                frameSizes[frame.resume] = size
                scan(&root, from: frame.context, to: frame.context &+ size)
                roots.append(root)
            }
            if !task.localValues.isEmpty {
                var root = Root(name: "\(name) › task-local values", kind: .task)
                for value in task.localValues { scan(&root, from: value, to: value &+ 32) }
                roots.append(root)
            }
            let parent = task.parent.flatMap { AsyncTask.id(at: $0, source: source) }.map { ", child of task #\($0)" } ?? ""
            var root = Root(name: "\(name) (\(task.state)\(parent))", kind: .task)
            root.targets.append(Int32(object))
            root.labels.append(0)
            // The rest of the task and its slabs, less the frames and values already named.
            let usable = objects.usableSize(object)
            for piece in unclaimed((address + 16)..<(address + usable)) { scan(&root, from: piece.lowerBound, to: piece.upperBound) }
            for slab in task.slabs {
                if let block = scanner.target(of: slab), block != Int32(object) {
                    root.targets.append(block)
                    root.labels.append(scanner.names.code(frame: "$slab"))
                    let start = objects.addresses[Int(block)]
                    for piece in unclaimed(start..<(start + objects.usableSize(Int(block)))) {
                        scan(&root, from: piece.lowerBound, to: piece.upperBound)
                    }
                }
            }
            roots.append(root)
        }
        return roots
    }

    // MARK: Dispatch

    /// Every libdispatch queue is a root: the blocks waiting on it (`dispatch queue LABEL › block`,
    /// each continuation and the block it carries, scanned word by word), then the queue itself.
    private func dispatchRoots() -> [Root] {
        var roots: [Root] = []
        for object in objects.objects(ofKind: .dispatchQueue) {
            let queue = objects.addresses[object]
            let label = source.readWord(queue + 72).flatMap { $0 == 0 ? nil : source.readCString($0, limit: 256) } ?? "0x\(String(queue, radix: 16))"
            var blocks = Root(name: "dispatch queue \(label) › block", kind: .dispatch)
            var item = source.readWord(queue + 104) ?? 0
            var seen = 0
            while item != 0 && seen < 100_000 {
                // The continuation and the block it carries belong to this root, and so does what
                // they hold.
                if let continuation = scanner.target(of: item) {
                    blocks.targets.append(continuation)
                    blocks.labels.append(scanner.typeLabel(of: continuation))
                }
                scan(&blocks, from: item, to: item + 64)
                if let context = source.readWord(item + 40), let block = scanner.target(of: context) {
                    blocks.targets.append(block)
                    blocks.labels.append(scanner.typeLabel(of: block))
                    let start = objects.addresses[Int(block)]
                    for piece in unclaimed(start..<(start + objects.usableSize(Int(block)))) { scan(&blocks, from: piece.lowerBound, to: piece.upperBound) }
                }
                item = source.readWord(item + 16) ?? 0
                seen += 1
            }
            roots.append(blocks)
            // The queue object and its other fields (label, target queue…), less the item links
            // followed above (tail at +48, head at +104).
            var root = Root(name: "dispatch queue \(label)", kind: .dispatch)
            root.targets.append(Int32(object))
            root.labels.append(0)
            let end = queue &+ objects.usableSize(object)
            for range in [(queue + 8)..<(queue + 48), (queue + 56)..<(queue + 104), (queue + 112)..<end] where range.upperBound <= end {
                scan(&root, from: range.lowerBound, to: range.upperBound)
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
              let size = source.readUInt32(pointer + 4), size > 0, size < 1 << 20 else { return 256 }
        return UInt64(size)
    }

    /// `thread N › function › name` roots for the locals of one frame that DWARF locates in memory.
    private func namedLocals(frame: StackFrame, pc: UInt64, cfa: UInt64?, prefix: String) -> [Root] {
        guard let values, let image = images.image(containing: pc), image.file.section(named: ".debug_info") != nil,
              let (frameBase, locals) = DwarfLocals.at(pc: pc &- image.loadBias, in: image.path) else { return [] }
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
            var targets: [Int32] = []
            var labels: [UInt32] = []
            scanner.scanValue(layout, at: address, prefix: "") { targets.append($0); labels.append($1) }
            root.targets = targets
            root.labels = labels
            claimed.append(slot..<(slot + UInt64(local.indirect ? 8 : max(layout.size, 8))))
            if !targets.isEmpty { roots.append(root) }
        }
        return roots
    }

    private func registerRoot(_ thread: ThreadState, number: Int) -> Root {
        var root = Root(name: "thread \(number) › registers", kind: .register)
        for value in thread.dwarfRegisters.prefix(16) {
            if let target = scanner.target(of: value) {
                root.targets.append(target)
                root.labels.append(scanner.typeLabel(of: target))
            }
        }
        return root
    }

    /// Static TLS sits just below the thread pointer, the thread control block above it.
    private func tlsRoot(_ thread: ThreadState, number: Int) -> Root? {
        guard thread.fsBase != 0 else { return nil }
        let tlsSize = images.images.reduce(UInt64(0)) { $0 + $1.file.tlsSize } + 512
        let start = thread.fsBase &- tlsSize
        // fs_base comes from the target's registers (a core's notes): anything, even near 2^64.
        let (end, overflow) = thread.fsBase.addingReportingOverflow(0x800)
        guard !overflow, start < thread.fsBase else { return nil }
        var root = Root(name: "thread \(number) › TLS", kind: .tls)
        scan(&root, from: start, to: end)
        return root
    }

    // MARK: Image data and the rest

    private func imageDataRoots() -> [Root] {
        var runtime: [Root] = []
        var conservative: [Root] = []
        for image in images.images {
            let isRuntime = RootFinder.runtimeLibraries.contains { image.name.hasPrefix($0) }
            for section in image.file.writableSections {
                let start = section.address &+ image.loadBias
                let end = start + section.size
                let label = isRuntime ? "<runtime> \(image.name) \(section.name)" : "\(image.name) \(section.name)"
                var root = Root(name: label, kind: isRuntime ? .runtime : .conservative)
                // The allocator's library data (jemalloc's, tcmalloc's) points at free and cached
                // blocks: never a root. (Blocks inside the allocator's heaps, a task's rest or a
                // queued block, are scanned as they were: only image data and anonymous memory skip it.)
                for range in unclaimed(start..<end, besides: objects.allocatorRanges) {
                    scan(&root, from: range.lowerBound, to: range.upperBound)
                }
                if isRuntime { runtime.append(root) } else { conservative.append(root) }
            }
        }
        return runtime + conservative
    }

    /// Anonymous writable mappings that are neither malloc's, a stack, nor image data (runtime
    /// allocators, mmap'd buffers) are scanned last.
    private func anonymousRoots() -> [Root] {
        var roots: [Root] = []
        for region in source.memoryMap.regions where region.readable && region.writable && !region.isFileBacked {
            if region.path == "[heap]" || region.path.hasPrefix("[stack") { continue }
            if holdsObjects(region) || objects.allocatorRanges.contains(where: { $0.overlaps(region.start..<region.end) }) { continue }
            let free = unclaimed(region.start..<region.end)
            guard free.reduce(0, { $0 + $1.count }) == Int(region.size) else { continue }
            var root = Root(name: "<anonymous 0x\(String(region.start, radix: 16))>", kind: .conservative)
            scan(&root, from: region.start, to: region.end)
            roots.append(root)
        }
        return roots
    }

    private func holdsObjects(_ region: MemoryRegion) -> Bool {
        guard let index = objects.object(containing: region.start) ?? objects.firstObject(atOrAfter: region.start) else { return false }
        return region.contains(objects.addresses[index])
    }

    private func unclaimed(_ range: Range<UInt64>, besides more: [Range<UInt64>] = []) -> [Range<UInt64>] {
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
}
