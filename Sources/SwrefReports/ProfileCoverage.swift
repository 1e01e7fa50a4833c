import SwrefSupport

/// How much of the heap a profile read, as its comments record it (`HeapAnalysis.heapComment`:
/// `heap: glibc malloc (partial: …)`). A comparison that passes must not rest on a heap swref did
/// not read whole: a leak or growth in the part it missed would pass unseen.
extension PprofProfile {
    /// The heap comment when it records a heap not read whole (partial, approximate, not read);
    /// nil when it was read whole, or when the profile has no heap comment (not made by swref).
    public var incompleteHeap: String? {
        guard let heap = comments.first(where: { $0.hasPrefix("heap: ") }) else { return nil }
        let marks = [" (partial: ", " (approximate: ", " (not read: "]
        return marks.contains { heap.contains($0) } ? String(heap.dropFirst("heap: ".count)) : nil
    }
}
