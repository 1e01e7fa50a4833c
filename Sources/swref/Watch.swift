import ArgumentParser
import Glibc
import SwrefKit

extension Swref {
    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Capture a live process periodically, keep the profiles, and report what grows (bytes/hour, least squares).",
            discussion: """
            Each capture is written to --dir as swref-TIME.pb.gz (UTC, sortable; the oldest beyond --keep \
            are removed); any two can be compared with swref diff. After each capture, the captures of this \
            run still kept are fitted per retainer and per type: `app.cache  +12.3 MiB/h over 6 captures \
            (R² 0.98)`. Growth is a slope of at least --min-growth with R² at least --min-fit. \
            Exit status: 0; 1 with --fail-on-growth when something grew faster (checked after the last \
            capture with --count, else after each one from the third); 125 the heap could not be read; \
            2 swref could not work.
            """
        )

        @Argument(help: "Process ID of the target.")
        var pid: Int32

        @Option(help: "Time between captures, start to start: 500ms, 60s, 5m, 1h.")
        var every: DurationArgument = DurationArgument(seconds: 60)

        @Option(help: "Directory for the profiles (created if missing).")
        var dir: String = "swref-watch"

        @Option(help: "Profiles kept in --dir (the oldest removed first); the fit uses this run's kept ones.")
        var keep: Int = 48

        @Option(help: "Stop after this many captures (0: until interrupted).")
        var count: Int = 0

        @Option(help: "Smallest slope reported as growth: 1MiB/h, 200KiB/min, 4096B/s.")
        var minGrowth: RateArgument = RateArgument(argument: "1MiB/h")!

        @Option(help: "Smallest R² (0…1) for a slope to count as growth rather than noise.")
        var minFit: Double = 0.8

        @Option(help: "Exit 1 when a retainer or type grows faster than this (with R² ≥ --min-fit): 10MiB/h.")
        var failOnGrowth: RateArgument?

        @Option(help: "Rows per section of the growth report.")
        var limit: Int = 10

        @OptionGroup var analysisOptions: AnalysisOptions
        @OptionGroup var captureOptions: CaptureOptions

        func validate() throws {
            guard every.seconds > 0 else { throw ValidationError("--every must be above 0") }
            guard keep >= 2 else { throw ValidationError("--keep must be at least 2 (a slope needs two captures)") }
            guard count >= 0 else { throw ValidationError("--count must be 0 or more") }
            guard (0...1).contains(minFit) else { throw ValidationError("--min-fit is between 0 and 1") }
        }

        func run() throws {
            var failed = false
            try runReporting {
                if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw SwrefError.system("mkdir", errno: errno, "creating \(dir)") }
                var kept: [(seconds: Double, metrics: HeapMetrics)] = []
                var taken = 0
                var start = monotonicNanoseconds()
                while count == 0 || taken < count {
                    let capture = try TimedCapture.take(pid: pid, capture: captureOptions, analysis: analysisOptions)
                    taken += 1
                    let path = "\(dir)/swref-\(utcStamp(capture.timeNanos)).pb.gz"
                    try writeFile(path, try capture.paths.gzipped())
                    try rotate()
                    kept.append((Double(capture.timeNanos) / 1e9, capture.metrics))
                    if kept.count > keep { kept.removeFirst(kept.count - keep) }
                    for note in capture.notes { printError("swref: note: \(note)") }
                    printError("swref: capture \(taken): paused PID \(pid) for \(formatMilliseconds(capture.pauseNanoseconds)), "
                               + "\(capture.heapDescription): \(formatBytes(UInt64(max(capture.metrics.bytes, 0)))) in use; wrote \(path)")
                    let last = count > 0 && taken == count
                    if kept.count >= 2 && (last || count == 0 || taken % 5 == 0) {
                        let fit = GrowthFit(kept)
                        print(report(fit), terminator: "")
                        if let failOnGrowth, kept.count >= 3, last || count == 0 {
                            let over = (GrowthFit.growing(fit.retainers, rate: failOnGrowth.bytesPerHour, minFit: minFit)
                                        + GrowthFit.growing(fit.types, rate: failOnGrowth.bytesPerHour, minFit: minFit))
                            if !over.isEmpty {
                                print("watch: GROWTH above \(GrowthFit.formatRate(failOnGrowth.bytesPerHour)): "
                                      + over.map { "\($0.key) \(GrowthFit.formatRate($0.slope))" }.joined(separator: ", "))
                                failed = true
                                return
                            }
                        }
                    }
                    if last { break }
                    // Start to start; a capture that took longer than --every is followed at once.
                    start += every.nanoseconds
                    let now = monotonicNanoseconds()
                    if start > now { sleepNanoseconds(start - now) } else { start = now }
                }
            }
            if failed { throw ExitCode(1) }
        }

        func report(_ fit: GrowthFit) -> String {
            let rate = minGrowth.bytesPerHour
            var lines = ["growth over \(fit.captures) captures (\(String(fit.seconds, decimals: 1)) s), slope ≥ \(GrowthFit.formatRate(rate)) and R² ≥ \(String(minFit, decimals: 2)):"]
            for (title, all) in [("retainers", fit.retainers), ("types", fit.types)] {
                let growing = GrowthFit.growing(all, rate: rate, minFit: minFit).prefix(limit)
                if growing.isEmpty {
                    lines.append("  \(title): no growth")
                    continue
                }
                lines.append("  \(title):")
                let width = growing.map(\.key.count).max() ?? 0
                for line in growing { lines.append("    " + GrowthFit.describe(line, width: width)) }
            }
            return lines.joined(separator: "\n") + "\n"
        }

        /// Removes the oldest of swref's profiles in --dir beyond --keep (names sort by time).
        func rotate() throws {
            guard let handle = opendir(dir) else { throw SwrefError.system("opendir", errno: errno, "reading \(dir)") }
            var names: [String] = []
            while let entry = readdir(handle) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name.hasPrefix("swref-") && name.hasSuffix(".pb.gz") { names.append(name) }
            }
            closedir(handle)
            for name in names.sorted().dropLast(keep) { unlink("\(dir)/\(name)") }
        }
    }
}

func sleepNanoseconds(_ nanoseconds: UInt64) {
    var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}
