import Glibc
import SwrefKit

/// One capture of a live process as `serve` and `watch` take it, again and again: the reference
/// profile, the census, the metrics, and what the capture cost — the pause the target saw and
/// swref's CPU time (its own and its injection holder's).
struct TimedCapture {
    var pid: Int32
    /// Wall-clock time of the capture (CLOCK_REALTIME), nanoseconds.
    var timeNanos: Int64
    var paths: PprofProfile
    var types: PprofProfile
    var metrics: HeapMetrics
    var heap: HeapBlocks.Coverage
    var heapDescription: String
    var pauseNanoseconds: UInt64
    var captureNanoseconds: UInt64
    var analysisNanoseconds: UInt64
    var cpuNanoseconds: UInt64
    var notes: [String]

    /// Captures and analyses `pid`; throws what `attach` would (an unreadable heap is `heapUnreadable`).
    static func take(pid: Int32, capture: CaptureOptions, analysis options: AnalysisOptions) throws -> TimedCapture {
        let cpuBefore = cpuTimeNanoseconds()
        let started = monotonicNanoseconds()
        let now = realtimeNanoseconds()
        let snapshot = try capture.capture(pid: pid, progress: nil)
        let captured = monotonicNanoseconds()
        let analysis = analyse(snapshot)
        try analysis.requireReadableHeap()
        let reference = analysis.referencePaths(maxDepth: options.maxDepth,
                                                attribution: options.attribution.mode, framework: options.framework.mode)
        let comments = [analysis.heapComment] + analysis.notes
        var paths = ReferenceReport.profile(reference.attribution, objects: analysis.objects, comments: comments)
        var types = CensusReport.profile(analysis.census, comments: comments)
        let binary = ProcFS.executablePath(pid) ?? "target"
        paths.mainBinary = binary
        types.mainBinary = binary
        paths.timeNanos = now
        types.timeNanos = now
        let finished = monotonicNanoseconds()
        return TimedCapture(pid: pid, timeNanos: now, paths: paths, types: types, metrics: HeapMetrics(profile: paths),
                            heap: analysis.heap.coverage, heapDescription: analysis.heap.description,
                            pauseNanoseconds: snapshot.pauseNanoseconds, captureNanoseconds: captured - started,
                            analysisNanoseconds: finished - captured, cpuNanoseconds: cpuTimeNanoseconds() - cpuBefore,
                            notes: analysis.notes)
    }
}

/// User and system time of swref and its reaped children (the injection holder).
func cpuTimeNanoseconds() -> UInt64 {
    var total: UInt64 = 0
    for who in [RUSAGE_SELF, RUSAGE_CHILDREN] {
        var usage = rusage()
        getrusage(who.rawValue, &usage)
        for time in [usage.ru_utime, usage.ru_stime] { total += UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_usec) * 1000 }
    }
    return total
}

func realtimeNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// `20261204T174002.123Z`: a UTC time that sorts as text.
func utcStamp(_ nanos: Int64) -> String {
    var seconds = time_t(nanos / 1_000_000_000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    let millis = Int(nanos / 1_000_000 % 1000)
    let ms = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
    return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec)).\(ms)Z"
}
