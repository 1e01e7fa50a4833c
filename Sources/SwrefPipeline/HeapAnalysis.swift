import Glibc
import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// Whether framework buffers are named by what they pin (RPC-framework-aware mode).
public enum FrameworkMode: String, Sendable, CaseIterable {
    /// On when the heap holds SwiftNIO buffers.
    case auto
    case nio
    case none
}

/// How objects are placed on paths in the profile.
public enum AttributionMode: String, Sendable, CaseIterable {
    /// Under the immediate-dominator chain: a frame's total is what freeing it would free.
    case dominator
    /// On the first shortest path from a root (goref's way); order-dependent.
    case firstPath = "first-path"
    /// First path, and retained sizes computed too (for `top`, `why`).
    case firstPathWithRetained = "first-path+retained"
}

/// The analysis of one memory image, layer by layer: images → reflection → malloc heap → objects.
///
/// It knows nothing of where the memory came from: a live snapshot or a core file.
public final class HeapAnalysis {
    public let target: Target
    public var source: MemorySource { target }
    public let settings: AnalysisSettings
    public let images: ImageList
    public let reflection: ReflectionContext?
    public let heap: HeapBlocks
    public let objects: ObjectTable
    /// The blocks' address index, built beside the object table, until the reference scan takes it.
    private var addressIndex: AddressIndex?
    /// Things the user should know about this analysis (no Swift runtime, arenas not found, …).
    public private(set) var notes: [String] = []

    /// Time spent per phase, in nanoseconds, in order.
    public private(set) var timings: [(phase: String, nanoseconds: UInt64)] = []
    /// swref's resident memory after each phase (with `timings`, it shows where the peak is).
    public private(set) var residentAfter: [(phase: String, bytes: UInt64)] = []
    /// Pages swref faulted in per phase: on a virtual machine each fresh page costs microseconds.
    public private(set) var faults: [(phase: String, count: Int)] = []
    private var faultsBefore = minorFaults()

    private var phaseStart = monotonicNanoseconds()

    private func lap(_ phase: String) {
        let now = monotonicNanoseconds()
        timings.append((phase, now - phaseStart))
        residentAfter.append((phase, ProcFS.statusBytes(getpid(), "VmRSS")))
        let faultsNow = minorFaults()
        faults.append((phase, faultsNow - faultsBefore))
        faultsBefore = faultsNow
        phaseStart = now
    }

    /// Runs `body` as a phase of its own in `timings` (a report's census, its profile).
    public func measure<T>(_ phase: String, _ body: () throws -> T) rethrows -> T {
        phaseStart = monotonicNanoseconds()
        faultsBefore = minorFaults()
        let result = try body()
        lap(phase)
        return result
    }

    public init(target: Target, settings: AnalysisSettings = AnalysisSettings(), progress: ProgressReporter? = nil) {
        self.target = target
        self.settings = settings
        let source: MemorySource = target
        progress?.update("reading images", done: 0, total: 1, unit: .items)
        CrashContext.set("reading the target's images")
        images = ImageList(memoryMap: source.memoryMap, source: source, files: target.files)
        var notes: [String] = []
        if images.hasSwiftRuntime {
            CrashContext.set("loading Swift reflection metadata")
            reflection = ReflectionContext(source: source, images: images)
        } else {
            reflection = nil
            notes.append("no Swift runtime found in the target: malloc census only")
        }
        let imagesDone = monotonicNanoseconds()
        let recognizer = SwiftObjectRecognizer(source: source, images: images, reflection: reflection)
        CrashContext.set("walking the malloc heap")
        var walked = AllocatorChoice.walk(source: source, images: images, recognizer: reflection == nil ? nil : recognizer,
                                          threads: settings.scanThreads)
        notes += walked.notes
        let heapDone = monotonicNanoseconds()
        CrashContext.set("recognising Swift objects in \(walked.allocator)'s blocks")
        // The reference scan's address index needs the blocks only, not their types: built on the
        // second core while the first classifies them (the index phase took ~2 % of an analysis).
        var index: AddressIndex? = nil
        var classified: ObjectTable? = nil
        do {
            // A copy for the other thread, gone at the end of this block: the screening it shares
            // with `walked` is given back below.
            let blocks = walked, map = source.memoryMap
            if Parallel.splits(objects: blocks.count) {
                Parallel.run({ classified = ObjectTable(heap: blocks, recognizer: recognizer, progress: progress) }, {
                    index = AddressIndex(addresses: blocks.addresses, sizes: blocks.sizes, overhead: blocks.overhead, memoryMap: map)
                })
            } else {
                classified = ObjectTable(heap: blocks, recognizer: recognizer, progress: progress)
            }
        }
        objects = classified!
        addressIndex = index
        // The walk's screening served the object table alone.
        walked.screened = nil
        heap = walked
        let objectsDone = monotonicNanoseconds()
        if !images.mismatched.isEmpty {
            notes.append("\(images.mismatched.count) files are not the ones the target mapped (build ids differ): "
                         + images.mismatched.prefix(5).joined(separator: ", ") + "; their types and symbols were not used")
        }
        if !images.unreadable.isEmpty {
            let listed = images.unreadable.prefix(5).joined(separator: ", ")
            let more = images.unreadable.count > 5 ? " and \(images.unreadable.count - 5) more" : ""
            notes.append("\(images.unreadable.count) mapped files could not be read (\(listed)\(more)): analysis went on without them")
        }
        if let note = reflection?.damageNote { notes.append(note) }
        if let note = reflection?.faultNote { notes.append(note) }
        self.notes = notes
        timings = [("images", imagesDone - phaseStart), ("malloc heap", heapDone - imagesDone), ("objects", objectsDone - heapDone)]
        residentAfter = [("objects", ProcFS.statusBytes(getpid(), "VmRSS"))]
        faults = [("up to objects", minorFaults())]
        faultsBefore = minorFaults()
        phaseStart = objectsDone
    }

    public var census: HeapCensus { HeapCensus(objects: objects) }

    /// What a profile or report says of the heap before its notes: the allocator and how much of
    /// its heap was read.
    public var heapComment: String { "heap: \(heap.description)" }

    /// Throws when no heap was read, or the Swift runtime is loaded but no block or no Swift object
    /// was found: an analysis of nothing must not read as a clean heap.
    public func requireReadableHeap() throws {
        // Unread is never clean, Swift or not: a core whose NT_FILE no longer names the runtime
        // read as "no leaks, 0 blocks" (exit 0).
        if case .unread(let why) = heap.coverage { throw SwrefError.heapUnreadable("\(heap.allocator): \(why)") }
        guard images.hasSwiftRuntime else { return }
        if heap.count == 0 { throw SwrefError.heapUnreadable("\(heap.allocator): no live block found") }
        if objects.types.count <= 1 {
            throw SwrefError.heapUnreadable("\(heap.allocator): \(heap.count) blocks, none of them a Swift object, in a process with the Swift runtime")
        }
    }

    /// Why part of the target's memory could not be read during the reference scan, if it could not.
    public private(set) var lostMemory: String?

    /// Throws when the reference scan could not read all it needed (a copy read in place whose
    /// source went away): what it found is then no verdict on the heap.
    public func requireWholeRead() throws {
        if let lost = lostMemory ?? target.readFailure { throw SwrefError.heapUnreadable(lost) }
    }

    /// The heap holds framework buffers (`Frameworks`): SwiftNIO ByteBuffer storage, Foundation
    /// Data storage, swift-protobuf messages.
    public var hasFrameworkBuffers: Bool {
        objects.types.contains { Frameworks.hasBuffers(ofType: $0.name) }
    }

    /// Half the memory available now (at least 1 GiB), or the budget the options give.
    public func dominatorMemoryBudget() -> UInt64 {
        if let budget = settings.dominatorBudget { return budget }
        guard let available = MemoryBudget.memAvailable(ProcFS.readFile("/proc/meminfo") ?? "") else { return 4 << 30 }
        return max(available / 2, 1 << 30)
    }

    /// Whether `referencePaths` gives the snapshot's copied pages back once references are found.
    public var releaseMemoryAfterScan = true

    /// Builds the object graph, finds the roots and attributes every object to one path.
    public func referencePaths(maxDepth: Int = 256, attribution mode: AttributionMode = .dominator,
                               framework: FrameworkMode = .auto, progress: ProgressReporter? = nil) -> ReferencePaths {
        phaseStart = monotonicNanoseconds()
        faultsBefore = minorFaults()
        let layouts = ObjectLayouts(reflection: reflection, source: source)
        let symbolizer = Symbolizer(images: images)
        let scanner = ReferenceScanner(source: source, objects: objects, layouts: layouts, symbolizer: symbolizer, index: addressIndex)
        // The scanner holds it now; a later call builds its own.
        addressIndex = nil
        scanner.frameworkMode = framework == .nio || (framework == .auto && hasFrameworkBuffers)
        lap("address index")
        // Roots first: they read stacks, globals and task objects, after which only the reference
        // scan reads the copy, each object once, in address order — so it can give the copy back as
        // it goes (`keepCopy` keeps it, for comparison).
        let finder = RootFinder(source: source, threads: target.threads, images: images, objects: objects, scanner: scanner,
                                values: layouts.values, symbolizer: symbolizer)
        CrashContext.set("finding roots (globals, stacks, tasks)")
        let roots = finder.findRoots()
        lap("roots")
        let discardable = releaseMemoryAfterScan ? target as? DiscardableMemory : nil
        let streaming = discardable != nil && !settings.keepCopy
        // The copy's pages, as the scan gives them back, build the graph and the later phases'
        // arrays (see `PagePool`): as many as those hold at once, at most; none left kept after.
        // `pagePoolLimit` sets the most it keeps (0: none, every page fresh, for comparison). A copy
        // that is a window (a fork read in place) would have freed its pages: none are kept.
        let pool = PagePool.shared
        pool.limit = settings.pagePoolLimit ?? (discardable?.copyIsWindow == true ? 0 : objects.count * 48)
        defer { pool.limit = 0 }
        CrashContext.set("scanning references")
        let graph = scanner.buildGraph(progress: progress, discarding: streaming ? discardable : nil, threads: settings.scanThreads)
        // A copy read as the scan went (a fork read in place) may have lost its source meanwhile.
        if lostMemory == nil { lostMemory = target.readFailure }
        // From here on only the graph is used: the copy of the target's memory can go.
        discardable?.releaseCopies()
        lap("graph")
        if let note = layouts.unreadableNote { notes.append(note) }
        // Layouts ask the library more than recognition did: its note again, with every fault so far.
        if let note = reflection?.faultNote {
            notes.removeAll { $0.hasPrefix("libswiftRemoteMirror faulted") }
            notes.append(note)
        }
        // Dominators if wanted and if they fit; the tiers' walk then numbers the heap for them.
        var wantsDominators = mode == .dominator || mode == .firstPathWithRetained
        if wantsDominators {
            let need = RetainedSizes.estimatedMemory(objects: objects.count, edges: graph.edgeCount, roots: roots.count + 1)
            let budget = dominatorMemoryBudget()
            if need > budget {
                wantsDominators = false
                notes.append("the dominator tree would need about \(formatBytes(need)), more than the \(formatBytes(budget)) allowed: "
                             + "retained sizes skipped, objects attributed to their first path")
            }
        }
        // Reachability by root tier first: the leak finder and the dominator pass need no paths.
        CrashContext.set("finding leaks")
        var tiers = RootTiers(objectCount: objects.count, graph: graph, roots: roots, numbered: wantsDominators)
        let leaks = LeakFinder.find(objects: objects, graph: graph, names: scanner.names, tiers: tiers)
        lap("leaks")
        var retained: RetainedSizes? = nil
        let dominatorRoots = leaks.groups.isEmpty ? roots : Attribution.withLeakedRoot(roots)
        if wantsDominators {
            progress?.update("computing dominators", done: 0, total: 1, unit: .items)
            CrashContext.set("computing dominators")
            retained = RetainedSizes(objects: objects, graph: graph, roots: dominatorRoots, tiers: tiers, leaks: leaks,
                                     lowMemory: discardable?.copyIsWindow == true)
            tiers.numbering = nil
            lap("dominators")
        }
        CrashContext.set("attributing objects to paths")
        var attribution: Attribution
        if mode == .dominator, let retained {
            attribution = Attribution(objectCount: objects.count, roots: dominatorRoots, names: scanner.names, maxDepth: maxDepth)
            attribution.attributeByDominators(retained, graph: graph, objects: objects, leaks: leaks)
            lap("dominator attribution")
        } else {
            attribution = Attribution(objectCount: objects.count, graph: graph, roots: roots, names: scanner.names, maxDepth: maxDepth)
            attribution.attributeLeaks(leaks, graph: graph)
            lap("attribution")
        }
        return ReferencePaths(graph: graph, roots: roots, attribution: attribution, leaks: leaks, retained: retained)
    }
}

/// swref's minor page faults so far.
public func minorFaults() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_minflt
}
