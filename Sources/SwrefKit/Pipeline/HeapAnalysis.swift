/// The analysis of one memory image, layer by layer: images → reflection → malloc heap → objects.
///
/// It knows nothing of where the memory came from: a live snapshot or a core file.
public final class HeapAnalysis {
    public let source: MemorySource
    public let images: ImageList
    public let reflection: ReflectionContext?
    public let heap: MallocHeap
    public let objects: ObjectTable
    /// Things the user should know about this analysis (no Swift runtime, arenas not found, …).
    public private(set) var notes: [String] = []

    public init(source: MemorySource, sysroot: String = "", progress: ProgressReporter? = nil) {
        self.source = source
        progress?.update("reading images", done: 0, total: 1, unit: .items)
        images = ImageList(memoryMap: source.memoryMap, sysroot: sysroot)
        var notes: [String] = []
        if images.hasSwiftRuntime {
            reflection = ReflectionContext(source: source, images: images)
        } else {
            reflection = nil
            notes.append("no Swift runtime found in the target: malloc census only")
        }
        heap = MallocHeap(source: source)
        notes += heap.notes
        let recognizer = SwiftObjectRecognizer(source: source, images: images, reflection: reflection)
        objects = ObjectTable(heap: heap, recognizer: recognizer, progress: progress)
        for missing in images.unreadable { notes.append("could not read \(missing): its types are unnamed") }
        self.notes = notes
    }

    public var census: HeapCensus { HeapCensus(objects: objects) }
}
