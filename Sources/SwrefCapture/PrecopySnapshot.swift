import CSwrefSystem
import Glibc
import SwrefImages
import SwrefMemory
import SwrefSupport

/// A snapshot copied while the target runs, made consistent by one short stop at the end:
/// livecore's iterative pre-copy, with userfaultfd write tracking where livecore had soft-dirty
/// bits (which this kernel never sets).
///
/// 1. The main thread alone is stopped for two injected system calls: userfaultfd(2), whose
///    descriptor swref takes with pidfd_getfd(2), and close(2). The injection runs in the holder
///    process (SwrefInjectionHolder.c), as the fork snapshot's does.
/// 2. swref registers the target's private anonymous writable mappings for asynchronous write
///    protection: a write by the target only clears the page's protection, in the kernel, with no
///    handler and no wait. Other mappings are copied again in the final stop.
/// 3. Copy every page while the target runs; then, in rounds, ask PAGEMAP_SCAN which pages were
///    written since, re-protect them and copy them again, until a round finds little.
/// 4. Stop every thread, copy what the last round left written and what was mapped meanwhile,
///    read the registers, resume. The pause is that last copy, not the heap.
///
/// Closing the descriptor (or swref dying) unregisters everything: the target is back as it was,
/// having paid one minor fault per page it wrote while tracked.
public final class PrecopySnapshot {
    public let pid: Int32
    /// How long the main thread was held for the injection.
    public private(set) var injectionPauseNanoseconds: UInt64 = 0
    /// Bytes copied again in each round, then in the final stop.
    public private(set) var roundBytes: [UInt64] = []
    private var tracker: Int32 = -1
    private var pagemap: Int32 = -1
    private var copies: [UInt64: Copy] = [:]
    /// A spilled copy's changes found in the final stop, held in swref's memory until the target
    /// runs again: the file's page cache costs several times anonymous memory to write into.
    private var stopWrites: [StopWrite] = []

    private struct StopWrite {
        var fileOffset: UInt64
        /// Nil: a hole (pages the target no longer has).
        var bytes: UnsafeMutableRawPointer?
        var length: Int
        /// A whole mapping's copy (mapped with `Snapshot.allocate`), else a piece (`malloc`).
        var whole = false
    }
    /// Where the copies go when spilled to disk (`--capture precopy-to-disk`); nil: swref's memory.
    private let spill: SpillFile?
    private var ranges = [swref_page_range](repeating: swref_page_range(), count: 1 << 16)

    /// One mapping's copy, by start address.
    private struct Copy {
        var region: MemoryRegion
        var buffer: UnsafeMutableRawPointer
        var mappedSize: Int
        /// Write-tracked; else copied again in the final stop.
        var tracked: Bool
        /// Spilled: where the copy lies in the file, and the stretch reserved for it there.
        var fileOffset: UInt64 = 0
        var fileCapacity = 0
        /// What swref registered of this mapping, to unregister at the end even if it is no longer
        /// tracked. A mapping that went away took its registration with it: nothing to undo there
        /// (and the range may be someone else's by then).
        var registered: [Range<UInt64>] = []
    }

    /// The most each scan or unregister call covers. Both hold the target's mmap lock for their
    /// whole call (unregistering, for writing: the target's page faults wait), so they go in windows
    /// of a fraction of a millisecond: closing the descriptor on 1 GiB still tracked would lift every
    /// protection in one call and hold up the target's faults for about 20 ms.
    public static let window: UInt64 = 32 << 20

    /// The end of the window holding `address`: windows are aligned to their size (a multiple of
    /// 2 MiB), so none cuts a huge page, which the scan would split to protect part of it.
    public static func windowEnd(after address: UInt64) -> UInt64 { (address / window + 1) * window }
    /// A round that re-copies less than this ends the rounds.
    public static let quietBytes: UInt64 = 1 << 20
    public static let maximumRounds = 6

    public init(pid: Int32, stallMilliseconds: Int = 0, spill: SpillFile? = nil) throws {
        self.pid = pid
        self.spill = spill
        // A seccomp filter may answer userfaultfd(2) with a signal or by killing the thread.
        if let mode = ProcFS.statusField(pid, "Seccomp"), mode.hasPrefix("2") {
            throw SwrefError.notSupported("the target runs under a seccomp filter")
        }
        guard let syscall = InjectionHolder.findSyscallInstruction(try ProcFS.memoryMap(pid), pid: pid) else {
            throw SwrefError.notSupported("no syscall instruction found in the target's code")
        }
        var reportFD: Int32 = -1
        var control: Int32 = -1
        let holder = swref_holder_start(pid, Int32(SWREF_HOLD_USERFAULTFD), syscall, Int32(stallMilliseconds),
                                        &reportFD, &control)
        guard holder > 0 else { throw SwrefError.system("fork", errno: errno, "starting the injection holder") }
        defer {
            close(reportFD)
            close(control) // the holder may go: swref has its own copy of the descriptor, or nothing
            var status: Int32 = 0
            _ = retryingOnInterrupt { waitpid(holder, &status, 0) }
        }
        let report = try InjectionHolder.readReport(reportFD, pid: pid, injected: "create a userfaultfd")
        injectionPauseNanoseconds = report.pause_ns
        tracker = swref_take_descriptor(holder, report.descriptor)
        guard tracker >= 0 else { throw SwrefError.system("pidfd_getfd", errno: errno, "taking the userfaultfd") }
        let enabled = swref_uffd_enable_write_tracking(tracker)
        guard enabled == 0 else {
            endTracking()
            throw SwrefError.notSupported("this kernel has no asynchronous write protection (\(String(cString: strerror(-enabled))))")
        }
        pagemap = open("/proc/\(pid)/pagemap", O_RDONLY | O_CLOEXEC)
        guard pagemap >= 0 else {
            let err = errno
            endTracking()
            throw SwrefError.system("open", errno: err, "/proc/\(pid)/pagemap")
        }
    }

    deinit {
        writeStopWrites(discard: true)
        endTracking()
        for copy in copies.values { munmap(copy.buffer, copy.mappedSize) }
    }

    /// Ends the tracking, window by window (closing the last descriptor alone would do it in one go).
    public func endTracking() {
        if tracker >= 0 { PrecopySnapshot.unregister(copies.values.flatMap(\.registered), tracker: tracker) }
        if pagemap >= 0 { Glibc.close(pagemap) }
        tracker = -1
        pagemap = -1
    }

    /// Ends the tracking on a thread of its own, once the target runs again: unregistering costs
    /// about 25 ms per GiB, which the analysis need not wait for (its first phases use one core).
    /// If swref exits first, closing the descriptor ends what is left at once.
    private func endTrackingInBackground() {
        guard tracker >= 0 else { return endTracking() }
        let ranges = copies.values.flatMap(\.registered), descriptor = tracker
        tracker = -1
        endTracking()
        Parallel.detach { PrecopySnapshot.unregister(ranges, tracker: descriptor) }
    }

    /// Unregisters `ranges` window by window, then closes the descriptor.
    private static func unregister(_ ranges: [Range<UInt64>], tracker: Int32) {
        for range in ranges {
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(range.upperBound, PrecopySnapshot.windowEnd(after: start))
                _ = swref_uffd_unregister(tracker, start, end - start)
                start = end
            }
        }
        Glibc.close(tracker)
    }

    /// `residentLimit`: for a copy spilled to disk, the most of it read back at once.
    public func capture(progress: ProgressReporter? = nil, stallMilliseconds: Int = 0,
                        residentLimit: Int = Int(CaptureEstimate.inPlaceResidentBytes)) throws -> Snapshot {
        try takeIn(ProcFS.memoryMap(pid), progress: progress)
        var previous = UInt64.max
        for _ in 0..<PrecopySnapshot.maximumRounds {
            try takeIn(ProcFS.memoryMap(pid), progress: nil)
            let written = try copyWritten(protect: true)
            roundBytes.append(written)
            // Done when quiet, or when the target writes as fast as we copy.
            if written <= PrecopySnapshot.quietBytes || written >= previous - previous / 8 { break }
            previous = written
        }

        let session = PtraceSession(pid: pid)
        defer { session.detachAll() }
        try session.stopAll()
        if stallMilliseconds > 0 { usleep(UInt32(stallMilliseconds) * 1000) }
        let map = try ProcFS.memoryMap(pid)
        try takeIn(map, progress: nil)
        var last = try copyChangedInStop()
        for copy in copies.values where !copy.tracked {
            last += copy.region.size
            try copyWholeInStop(copy)
        }
        roundBytes.append(last)
        let threads = session.registers()
        if threads.isEmpty { throw SwrefError.processExited(pid) }
        let pause = session.detachAll()
        endTrackingInBackground()
        writeStopWrites()

        let snapshot = Snapshot(memoryMap: map, threads: threads, pid: pid,
                                fallback: LiveProcessReader(pid: pid, memoryMap: map))
        snapshot.pauseNanoseconds = max(pause, injectionPauseNanoseconds)
        if let spill {
            // Read back from the file as the analysis goes, through the same window as a fork read in place.
            let pager = try SpillPager(spill: spill, residentLimit: residentLimit)
            for (index, region) in map.regions.enumerated() {
                guard let copy = copies[region.start], copy.region == region else { continue }
                copies[region.start] = nil
                munmap(copy.buffer, copy.mappedSize)
                let buffer = try Snapshot.allocate(Int(region.size), populate: false)
                snapshot.adoptLazyCopy(index, buffer: buffer, size: Int(region.size), filler: pager)
                try pager.add(buffer, size: Int(region.size), fileOffset: copy.fileOffset)
            }
            try pager.start()
            snapshot.captureMethod = .precopyToDisk
            return snapshot
        }
        for (index, region) in map.regions.enumerated() {
            guard let copy = copies[region.start], copy.region == region else { continue }
            copies[region.start] = nil
            try snapshot.copyRegion(index, prepared: (copy.buffer, copy.mappedSize)) { _, _ in }
        }
        snapshot.captureMethod = .precopy
        return snapshot
    }

    /// Brings `copies` in line with the target's mappings: new ones (and grown parts) are
    /// registered, protected and copied whole; gone ones dropped.
    private func takeIn(_ map: MemoryMap, progress: ProgressReporter?) throws {
        var seen = Set<UInt64>()
        let wanted = map.regions.filter { LiveCapture.shouldCopy($0) }
        let total = wanted.reduce(UInt64(0)) { $0 + $1.size }
        var done: UInt64 = 0
        for region in wanted {
            seen.insert(region.start)
            defer {
                done += region.size
                progress?.update("copying memory (target running)", done: done, total: total, unit: .bytes)
            }
            if var copy = copies[region.start], copy.region.inode == region.inode,
               copy.region.writable == region.writable, copy.region.shared == region.shared {
                if region.end > copy.region.end { // grown in place (VMAs merged): take in the new part
                    let size = Int(region.size)
                    if let spill, size > copy.fileCapacity {
                        // Past the room reserved in the file: a new stretch, the copy taken again whole.
                        munmap(copy.buffer, copy.mappedSize)
                        (copy.fileOffset, copy.fileCapacity) = try spill.reserve(size)
                        copy.buffer = try spill.map(offset: copy.fileOffset, length: size)
                        copy.mappedSize = size
                        copy.region = region
                        copies[region.start] = copy
                        try copyPresent(copy)
                        continue
                    }
                    if size > copy.mappedSize {
                        guard let moved = swref_grow_mapping(copy.buffer, copy.mappedSize, size) else {
                            throw SwrefError.system("mremap", errno: errno, "growing a copy to \(size) bytes")
                        }
                        copy.buffer = moved
                        copy.mappedSize = size
                        copies[region.start] = copy // the old address is gone: whatever follows throws
                    }
                    let added = MemoryRegion(start: copy.region.end, end: region.end, readable: true,
                                             writable: region.writable, executable: region.executable,
                                             shared: region.shared, inode: region.inode, path: region.path)
                    let tracked = copy.tracked && track(added, in: &copy)
                    try copyPresent(added, into: copy.buffer + Int(added.start - region.start))
                    dropMapped(copy)
                    copy.tracked = tracked
                }
                copy.region = region
                copies[region.start] = copy
                continue
            }
            if let old = copies.removeValue(forKey: region.start) { munmap(old.buffer, old.mappedSize) }
            var copy: Copy
            if let spill {
                let (offset, capacity) = try spill.reserve(Int(region.size))
                let buffer = try spill.map(offset: offset, length: Int(region.size))
                copy = Copy(region: region, buffer: buffer, mappedSize: Int(region.size), tracked: false,
                            fileOffset: offset, fileCapacity: capacity)
            } else {
                copy = Copy(region: region, buffer: try Snapshot.allocate(Int(region.size), populate: false),
                            mappedSize: Int(region.size), tracked: false)
            }
            copy.tracked = track(region, in: &copy)
            copies[region.start] = copy
            try copyPresent(copy)
        }
        for (start, copy) in copies where !seen.contains(start) {
            munmap(copy.buffer, copy.mappedSize)
            copies[start] = nil
        }
    }

    /// Registers and protects `region`; false when it cannot be tracked and must be copied again
    /// in the final stop: shared memory and file mappings (another process can change them without
    /// touching the target's page tables: a write to the file, or to a shared page), read-only
    /// data, a mapping the kernel refuses.
    private func track(_ region: MemoryRegion, in copy: inout Copy) -> Bool {
        guard region.writable, !region.shared, !region.isFileBacked,
              swref_uffd_register(tracker, region.start, region.size) == 0 else { return false }
        copy.registered.append(region.start..<region.end)
        var start = region.start
        while start < region.end {
            var walkEnd: UInt64 = 0
            let end = min(region.end, PrecopySnapshot.windowEnd(after: start))
            let n = ranges.withUnsafeMutableBufferPointer {
                swref_pagemap_written(pagemap, start, end, 1, $0.baseAddress, $0.count, &walkEnd)
            }
            guard n >= 0, walkEnd > start else { return false }
            start = walkEnd
        }
        return true
    }

    /// In the final stop: copies what was written since the last round and zeroes the pages the
    /// target no longer has — a page it gave back (MADV_DONTNEED, a heap trimmed, a thread's stack
    /// freed) reads as zeros but is not reported as written when its page table went with it —
    /// with one walk of the page tables per window
    /// for both, the windows shared between two threads — the walks, not the copying, are most of
    /// a stop on a big heap (about 3 ms per GiB each). Returns the bytes copied.
    private func copyChangedInStop() throws -> UInt64 {
        var windows: [(start: UInt64, from: UInt64, end: UInt64)] = []
        for copy in copies.values where copy.tracked {
            var from = copy.region.start
            while from < copy.region.end {
                let end = min(copy.region.end, PrecopySnapshot.windowEnd(after: from))
                windows.append((copy.region.start, from, end))
                from = end
            }
        }
        let lock = SharedLock()
        var failedCopies = Set<UInt64>(), copiedBytes: UInt64 = 0, gone = false
        func work(_ part: Int) {
            var bytes: UInt64 = 0
            var writes: [StopWrite] = []
            defer { lock.locked { copiedBytes += bytes; stopWrites += writes } }
            var ranges = [swref_page_range](repeating: swref_page_range(), count: 1 << 14)
            var toCopy = [swref_page_range]()
            for (index, window) in windows.enumerated() where index % 2 == part {
                guard let copy = copies[window.start] else { continue }
                var from = window.from
                while from < window.end {
                    var walkEnd: UInt64 = 0
                    let n = ranges.withUnsafeMutableBufferPointer {
                        swref_pagemap_changed(pagemap, from, window.end, $0.baseAddress, $0.count, &walkEnd)
                    }
                    guard n >= 0, walkEnd > from else {
                        lock.locked { _ = failedCopies.insert(window.start) }
                        break
                    }
                    toCopy.removeAll(keepingCapacity: true)
                    for range in ranges[0..<Int(n)] {
                        let offset = Int(range.start - copy.region.start), length = Int(range.end - range.start)
                        if range.categories & UInt64(8 | 16) == 0 {
                            if spill != nil { writes.append(StopWrite(fileOffset: copy.fileOffset + UInt64(offset), bytes: nil, length: length)) }
                            else { zero(copy, at: offset, length: length) }
                        } else if range.categories & 2 != 0 {
                            toCopy.append(range)
                            bytes += range.end - range.start
                        }
                    }
                    var read: Int32 = 0
                    if spill != nil {
                        for range in toCopy where read == 0 {
                            let length = Int(range.end - range.start)
                            guard let buffer = malloc(length) else { read = -ENOMEM; break }
                            writes.append(StopWrite(fileOffset: copy.fileOffset + (range.start - copy.region.start), bytes: buffer, length: length))
                            var one = range
                            read = swref_read_ranges(pid, range.start, buffer, &one, 1)
                        }
                    } else {
                        read = toCopy.withUnsafeBufferPointer {
                            swref_read_ranges(pid, copy.region.start, copy.buffer, $0.baseAddress, $0.count)
                        }
                    }
                    if read == -ESRCH { lock.locked { gone = true } }
                    if read != 0 {
                        lock.locked { _ = failedCopies.insert(window.start) }
                        break
                    }
                    from = walkEnd
                }
            }
        }
        Parallel.run({ work(0) }, { work(1) })
        if gone { throw SwrefError.processExited(pid) }
        var bytes = copiedBytes
        for start in failedCopies {
            // No longer tracked, or a read that failed: copy it whole, still in the stop.
            guard let copy = copies[start] else { continue }
            copies[start]?.tracked = false
            bytes += copy.region.size
            try copyWholeInStop(copy)
        }
        for copy in copies.values where copy.tracked { dropMapped(copy) }
        return bytes
    }

    /// Copies the pages of `copy`'s mapping that exist. Spilled, in stretches of the read-back
    /// window's size, each dropped from swref's mappings once written (it stays in the file).
    private func copyPresent(_ copy: Copy) throws {
        guard spill != nil else { return try copyPresent(copy.region, into: copy.buffer) }
        let stretch = CaptureEstimate.inPlaceResidentBytes
        var start = copy.region.start
        while start < copy.region.end {
            let end = min(copy.region.end, start + stretch)
            let part = MemoryRegion(start: start, end: end, readable: true, writable: copy.region.writable,
                                    executable: copy.region.executable, shared: copy.region.shared,
                                    inode: copy.region.inode, path: copy.region.path)
            let offset = Int(start - copy.region.start)
            try copyPresent(part, into: copy.buffer + offset)
            madvise(copy.buffer + offset, Int(end - start), MADV_DONTNEED)
            start = end
        }
    }

    /// Copies a whole mapping again in the final stop. Anonymous pages copied earlier may be gone
    /// since: it starts again from zeros. Spilled, into swref's memory now, into the file once the
    /// target runs.
    private func copyWholeInStop(_ copy: Copy) throws {
        if spill != nil {
            let buffer = try Snapshot.allocate(copy.mappedSize, populate: false)
            stopWrites.append(StopWrite(fileOffset: copy.fileOffset, bytes: buffer, length: copy.mappedSize, whole: true))
            return try copyPresent(copy.region, into: buffer)
        }
        if !copy.region.isFileBacked { zero(copy, at: 0, length: copy.mappedSize) }
        try copyPresent(copy)
    }

    /// Writes what the final stop found into the spilled copy's file, once the target runs again
    /// (in the order found: a whole mapping copied again after pieces of it comes last); with
    /// `discard` (a capture that failed after its stop), only frees them.
    private func writeStopWrites(discard: Bool = false) {
        guard let spill else { return }
        for write in stopWrites {
            if !discard {
                if write.whole || write.bytes == nil { spill.zero(offset: write.fileOffset, length: write.length) }
                if let bytes = write.bytes { spill.write(bytes, length: write.length, at: write.fileOffset) }
            }
            guard let bytes = write.bytes else { continue }
            if write.whole { munmap(bytes, write.length) } else { free(bytes) }
        }
        stopWrites = []
    }

    /// Zeroes part of a copy: pages given back in swref's memory, a hole in the file.
    private func zero(_ copy: Copy, at offset: Int, length: Int) {
        guard let spill else { madvise(copy.buffer + offset, length, MADV_DONTNEED); return }
        spill.zero(offset: copy.fileOffset + UInt64(offset), length: length)
    }

    /// A spilled copy's pages leave swref's mappings (they stay in the file, as page cache the
    /// kernel may write out and drop).
    private func dropMapped(_ copy: Copy) {
        if spill != nil { madvise(copy.buffer, copy.mappedSize, MADV_DONTNEED) }
    }

    /// Copies the pages of `region` that exist (pagemap), into `buffer` (the region's first byte).
    private func copyPresent(_ region: MemoryRegion, into buffer: UnsafeMutableRawPointer) throws {
        var reader = RemoteReader(pid: pid, viaProcMem: false)
        defer { reader.close() }
        try LiveCapture.copyPages(reader, region: region, into: buffer, sparse: true)
    }

    /// Copies every page written since it was last protected; `protect` arms them again.
    /// Returns the bytes copied.
    private func copyWritten(protect: Bool) throws -> UInt64 {
        var bytes: UInt64 = 0
        for (start, copy) in copies where copy.tracked {
            var from = copy.region.start
            while from < copy.region.end {
                var walkEnd: UInt64 = 0
                let end = min(copy.region.end, PrecopySnapshot.windowEnd(after: from))
                let n = ranges.withUnsafeMutableBufferPointer {
                    swref_pagemap_written(pagemap, from, end, protect ? 1 : 0, $0.baseAddress, $0.count, &walkEnd)
                }
                let read = n < 0 ? -EINVAL : ranges.withUnsafeBufferPointer {
                    swref_read_ranges(pid, copy.region.start, copy.buffer, $0.baseAddress, Int(n))
                }
                if read == -ESRCH { throw SwrefError.processExited(pid) }
                if n < 0 || read != 0 || walkEnd <= from {
                    // No longer tracked (replaced by a new mapping at the same place), a read that
                    // failed after the pages were protected again, or a scan that made no progress:
                    // copy it whole now, and again in the final stop.
                    copies[start]?.tracked = false
                    try copyPresent(copy)
                    bytes += copy.region.size
                    break
                }
                for range in ranges[0..<Int(n)] { bytes += range.end - range.start }
                from = walkEnd
            }
            dropMapped(copy)
        }
        return bytes
    }
}
