import SwrefImages
import SwrefMemory
import SwrefSupport

/// Which allocator's heap the target has, and its walk.
///
/// Each allocator recognises itself from the loaded images (its library, or its code linked into
/// the executable) and checks what it found before trusting it. Replacements are asked first:
/// glibc's malloc is in every process's libc, used or not. When no walk reads a heap and the Swift
/// runtime is loaded, Swift objects are found by their headers instead, and the result says it is
/// approximate.
public enum AllocatorChoice {
    public static let replacements: [any HeapWalker.Type] = [JemallocHeap.self, TcmallocHeap.self, MimallocHeap.self]

    /// - Parameters:
    ///   - recognizer: finds Swift objects by their headers when no walk reads the heap; nil when
    ///     the target has no Swift runtime.
    ///   - threads: 1 or 2 threads for glibc's main heap instead of its walk's choice.
    public static func walk(source: MemorySource, images: ImageList, recognizer: SwiftObjectRecognizer?, threads: Int? = nil) -> HeapBlocks {
        // A replacement that recognised itself but could not read its heap says why; the header
        // scan below still runs.
        let replacement = replacements.lazy.compactMap { $0.recognise(source: source, images: images)?.walk() }.first
        // glibc's walk screens each block's header for the object table as it passes it.
        var blocks = replacement ?? MallocHeap.recognise(source: source, images: images).map { heap in
            var heap = heap
            heap.recognizer = recognizer
            return heap.walk(threads: threads)
        }
            ?? HeapBlocks(allocator: "no known allocator", overhead: 0, coverage: .unread("no allocator swref knows is loaded"))
        if case .unread(let why) = blocks.coverage, let recognizer {
            var scanned = SwiftHeaderScan(source: source, recognizer: recognizer).walk()
            scanned.notes = blocks.notes + ["\(blocks.allocator): \(why); Swift objects were found by their headers instead"] + scanned.notes
            blocks = scanned
        }
        return blocks
    }
}
