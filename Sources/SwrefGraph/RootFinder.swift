import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// Finds the roots of a memory image and what each references directly, in walk order: globals
/// (typed from DWARF, or by symbol), thread stacks (unwound, per frame), Swift tasks, dispatch
/// queues, registers, thread-local storage, the runtime's data, then whatever else is writable.
///
/// Each kind of root has its producer in `Roots/`; they share one `RootScan`, which remembers
/// the memory each root has covered, so the order they run in decides which root a word is —
/// and the order of the roots is the output's.
public final class RootFinder {
    public let source: MemorySource
    public let threads: [ThreadState]
    public let images: ImageList
    public let objects: ObjectTable
    public let scanner: ReferenceScanner
    public let values: ValueLayoutBuilder?
    public let symbolizer: Symbolizer

    private let scan: RootScan
    private let stacks: StackRoots
    public private(set) var notes: [String] = []

    public static var runtimeLibraries: [String] { RuntimeLibraries.names }

    public init(source: MemorySource, threads: [ThreadState], images: ImageList, objects: ObjectTable,
                scanner: ReferenceScanner, values: ValueLayoutBuilder?, symbolizer: Symbolizer) {
        self.source = source
        self.threads = threads
        self.images = images
        self.objects = objects
        self.scanner = scanner
        self.values = values
        self.symbolizer = symbolizer
        scan = RootScan(source: source, objects: objects, scanner: scanner)
        stacks = StackRoots(scan: scan, threads: threads, images: images, values: values, symbolizer: symbolizer)
    }

    public func findRoots() -> [Root] {
        var roots: [Root] = []
        roots += GlobalRoots(scan: scan, images: images, values: values).roots()
        let ordered = threads.sorted { lhs, rhs in
            // The main thread (lowest tid, the process id) is thread 1.
            lhs.tid < rhs.tid
        }
        for (number, thread) in ordered.enumerated() { roots += stacks.roots(thread, number: number + 1) }
        roots += TaskRoots(scan: scan, symbolizer: symbolizer).roots()
        roots += DispatchRoots(scan: scan).roots()
        let threadRoots = ThreadRoots(scan: scan, images: images)
        for (number, thread) in ordered.enumerated() { roots.append(threadRoots.registerRoot(thread, number: number + 1)) }
        for (number, thread) in ordered.enumerated() { if let tls = threadRoots.tlsRoot(thread, number: number + 1) { roots.append(tls) } }
        roots += ImageDataRoots(scan: scan, images: images).roots()
        return roots.filter { !$0.targets.isEmpty }
    }
}
