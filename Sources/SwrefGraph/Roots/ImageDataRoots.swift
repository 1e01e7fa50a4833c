import SwrefImages
import SwrefMemory
import SwrefRuntimes

/// **runtime** and **conservative** roots, last: the writable sections of every image (the Swift
/// runtime's and its core libraries' as `runtime`, the rest as `conservative`), then anonymous
/// writable mappings no other root or the heap covers.
public struct ImageDataRoots {
    public let scan: RootScan
    public let images: ImageList

    public func roots() -> [Root] {
        let sections = imageDataRoots()
        return sections + anonymousRoots()
    }

    private func imageDataRoots() -> [Root] {
        var runtime: [Root] = []
        var conservative: [Root] = []
        for image in images.images {
            let isRuntime = RuntimeLibraries.contains(image.name)
            for section in image.file.writableSections {
                let start = section.address &+ image.loadBias
                let end = start + section.size
                let label = isRuntime ? "<runtime> \(image.name) \(section.name)" : "\(image.name) \(section.name)"
                var root = Root(name: label, kind: isRuntime ? .runtime : .conservative)
                // The allocator's library data (jemalloc's, tcmalloc's) points at free and cached
                // blocks: never a root. (Blocks inside the allocator's heaps, a task's rest or a
                // queued block, are scanned as they were: only image data and anonymous memory skip it.)
                for range in scan.unclaimed(start..<end, besides: scan.objects.allocatorRanges) {
                    scan.scan(&root, from: range.lowerBound, to: range.upperBound)
                }
                if isRuntime { runtime.append(root) } else { conservative.append(root) }
            }
        }
        return runtime + conservative
    }

    /// Anonymous writable mappings that are neither malloc's, a stack, nor image data (runtime
    /// allocators, mmap'd buffers) are scanned last.
    private func anonymousRoots() -> [Root] {
        let objects = scan.objects
        var roots: [Root] = []
        for region in scan.source.memoryMap.regions where region.readable && region.writable && !region.isFileBacked {
            if region.path == "[heap]" || region.path.hasPrefix("[stack") { continue }
            if holdsObjects(region) || objects.allocatorRanges.contains(where: { $0.overlaps(region.start..<region.end) }) { continue }
            let free = scan.unclaimed(region.start..<region.end)
            guard free.reduce(0, { $0 + $1.count }) == Int(region.size) else { continue }
            var root = Root(name: "<anonymous 0x\(String(region.start, radix: 16))>", kind: .conservative)
            scan.scan(&root, from: region.start, to: region.end)
            roots.append(root)
        }
        return roots
    }

    private func holdsObjects(_ region: MemoryRegion) -> Bool {
        let objects = scan.objects
        guard let index = objects.object(containing: region.start) ?? objects.firstObject(atOrAfter: region.start) else { return false }
        return region.contains(objects.addresses[index])
    }
}
