import SwrefImages
import SwrefMemory
import SwrefRuntimes

/// **register** and **tls** roots of each thread: its general registers, and its static TLS and
/// thread control block.
public struct ThreadRoots {
    public let scan: RootScan
    public let images: ImageList

    public func registerRoot(_ thread: ThreadState, number: Int) -> Root {
        var root = Root(name: "thread \(number) › registers", kind: .register)
        for value in thread.dwarfRegisters.prefix(16) {
            if let target = scan.scanner.target(of: value) {
                scan.hold(target, label: scan.scanner.typeLabel(of: target), in: &root)
            }
        }
        return root
    }

    /// Static TLS sits just below the thread pointer, the thread control block above it.
    public func tlsRoot(_ thread: ThreadState, number: Int) -> Root? {
        guard thread.fsBase != 0 else { return nil }
        let tlsSize = images.images.reduce(UInt64(0)) { $0 + $1.file.tlsSize } + 512
        let start = thread.fsBase &- tlsSize
        // fs_base comes from the target's registers (a core's notes): anything, even near 2^64.
        let (end, overflow) = thread.fsBase.addingReportingOverflow(0x800)
        guard !overflow, start < thread.fsBase else { return nil }
        var root = Root(name: "thread \(number) › TLS", kind: .tls)
        scan.scan(&root, from: start, to: end)
        return root
    }
}
