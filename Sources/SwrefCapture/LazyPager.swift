import CSwrefSystem
import Glibc
import SwrefMemory
import SwrefSupport

/// swref's side of SwrefLazyPager.c: copies that are reserved address space, filled from a
/// descriptor — a frozen child's /proc/PID/mem, or a spilled pre-copy's file — as the analysis
/// first reads them, within a resident window. Shared by the fork read in place and the pre-copy
/// read back from disk, which differ only in their source and in what ending them costs.
final class LazyPager {
    private var handle: OpaquePointer?

    /// `source`: read with pread at each copy's source offset (kept open by the caller).
    init(source: Int32, residentLimit: Int, serving: String) throws {
        guard let handle = swref_lazy_create(source, ForkSnapshot.inPlaceChunk, residentLimit) else {
            throw SwrefError.system("userfaultfd", errno: errno, "serving \(serving) (swref needs userfaultfd(2) for its own memory)")
        }
        self.handle = handle
    }

    deinit { _ = end() }

    /// Registers swref's `buffer` (`size` bytes) as the copy of the source from `offset`; before `start`.
    func add(_ buffer: UnsafeMutableRawPointer, size: UInt64, offset: UInt64, what: String) throws {
        guard swref_lazy_add(handle, buffer, size, offset) == 0 else {
            throw SwrefError.system("userfaultfd", errno: errno, "registering \(what)")
        }
    }

    func start() throws {
        guard swref_lazy_start(handle) == 0 else { throw SwrefError.system("pthread_create", errno: errno, "starting the pager") }
    }

    /// Its figures so far; nil once ended.
    var stats: swref_lazy_stats? {
        guard let handle else { return nil }
        var stats = swref_lazy_stats()
        swref_lazy_stats(handle, &stats)
        return stats
    }

    /// Stops it (the copies read as zeros where never filled after); its last figures, nil if
    /// ended before.
    func end() -> swref_lazy_stats? {
        guard let stats, let handle else { return nil }
        swref_lazy_destroy(handle)
        self.handle = nil
        return stats
    }
}

extension InPlaceReading {
    init(_ stats: swref_lazy_stats) {
        self.init()
        filledBytes = stats.filled
        peakResidentBytes = stats.peak_resident
        faults = stats.faults
    }
}
