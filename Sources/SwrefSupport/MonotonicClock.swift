import Glibc

/// Nanoseconds on CLOCK_MONOTONIC: phase times and pauses, never wall-clock dates.
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
