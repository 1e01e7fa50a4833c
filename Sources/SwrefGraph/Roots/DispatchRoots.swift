import SwrefMemory
import SwrefRuntimes

/// **dispatch** roots: every libdispatch queue (`DispatchQueueLayout`) — the blocks waiting on it
/// (`dispatch queue LABEL › block`: each continuation and the block it carries, scanned word by
/// word), then the queue itself.
public struct DispatchRoots {
    public let scan: RootScan

    public func roots() -> [Root] {
        let objects = scan.objects, source = scan.source, scanner = scan.scanner
        var roots: [Root] = []
        for object in objects.objects(ofKind: .dispatchQueue) {
            let queue = objects.addresses[object]
            let label = source.readWord(queue + DispatchQueueLayout.labelOffset).flatMap { $0 == 0 ? nil : source.readCString($0, limit: 256) }
                ?? "0x\(String(queue, radix: 16))"
            var blocks = Root(name: "dispatch queue \(label) › block", kind: .dispatch)
            var item = source.readWord(queue + DispatchQueueLayout.itemsHeadOffset) ?? 0
            var seen = 0
            while item != 0 && seen < DispatchQueueLayout.maximumItems {
                // The continuation and the block it carries belong to this root, and so does what
                // they hold.
                if let continuation = scanner.target(of: item) {
                    scan.hold(continuation, label: scanner.typeLabel(of: continuation), in: &blocks)
                }
                scan.scan(&blocks, from: item, to: item + DispatchQueueLayout.continuationSize)
                if let context = source.readWord(item + DispatchQueueLayout.continuationContextOffset), let block = scanner.target(of: context) {
                    scan.hold(block, label: scanner.typeLabel(of: block), in: &blocks)
                    scan.scanUnclaimed(block: block, into: &blocks)
                }
                item = source.readWord(item + DispatchQueueLayout.continuationNextOffset) ?? 0
                seen += 1
            }
            roots.append(blocks)
            // The queue object and its other fields (label, target queue…), less the item links
            // followed above.
            var root = Root(name: "dispatch queue \(label)", kind: .dispatch)
            scan.hold(Int32(object), label: 0, in: &root)
            let end = queue &+ objects.usableSize(object)
            for range in DispatchQueueLayout.otherFields(queue: queue, end: end) where range.upperBound <= end {
                scan.scan(&root, from: range.lowerBound, to: range.upperBound)
            }
            roots.append(root)
        }
        return roots
    }
}
