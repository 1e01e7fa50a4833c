import ArgumentParser
import Glibc
import SwrefKit

/// Runs a command body, turning swref's errors into one line on stderr and exit status 2.
func runReporting(_ body: () throws -> Void) throws {
    CrashContext.install(exitStatus: 2)
    do {
        try body()
    } catch let error as BudgetExceeded {
        // Refused before the target was touched: 3, so that a script can tell it from a failure.
        printError("swref: \(error)")
        throw ExitCode(3)
    } catch let error as SwrefError {
        printError("swref: \(error)")
        // A heap swref could not read is never reported as clean: 125, as `swref run` does.
        throw ExitCode(error.isHeapUnreadable ? 125 : 2)
    }
}

func printError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

func formatMilliseconds(_ nanoseconds: UInt64) -> String {
    String(Double(nanoseconds) / 1e6, decimals: 1) + " ms"
}

extension String {
    init(_ value: Double, decimals: Int) {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int((value * scale).rounded())
        let whole = scaled / Int(scale)
        let fraction = abs(scaled % Int(scale))
        let digits = String(fraction)
        self = decimals == 0 ? "\(whole)" : "\(whole)." + String(repeating: "0", count: decimals - digits.count) + digits
    }
}

/// Writes the analysis in the chosen format and view; notes and the summary go to stderr.
func report(_ analysis: HeapAnalysis, summary: String, output: OutputOptions,
            analysisOptions: AnalysisOptions, progress: ProgressReporter, mainBinary: String?,
            extraNotes: [String] = []) throws {
    // The census only where it is shown: the paths view needs the totals alone.
    var censusMade: HeapCensus? = nil
    func census() -> HeapCensus {
        if let censusMade { return censusMade }
        let made = analysis.measure("census") { analysis.census }
        censusMade = made
        return made
    }
    try analysis.requireReadableHeap()
    // Read when written: the reference scan adds notes of its own (types read conservatively,
    // faults inside the reflection library).
    var notes: [String] { analysis.notes + extraNotes }
    var comments: [String] { [analysis.heapComment] + notes }
    switch output.format {
    case .text:
        let framework = analysisOptions.framework == .nio || (analysisOptions.framework == .auto && analysis.hasFrameworkBuffers)
        let paths = framework ? analysis.referencePaths(maxDepth: analysisOptions.maxDepth,
                                                        attribution: analysisOptions.attribution.mode,
                                                        framework: analysisOptions.framework.mode, progress: progress) : nil
        progress.finish()
        try analysis.requireWholeRead()
        print(CensusReport.text(census(), limit: output.limit, heap: analysis.heap.description, notes: notes), terminator: "")
        if let paths { print("\n" + FrameworkCharges(paths.attribution, objects: analysis.objects).text(), terminator: "") }
        if analysisOptions.timings { printTimings(analysis) }
    case .pprof:
        var profile: PprofProfile
        switch output.view {
        case .types:
            profile = CensusReport.profile(census(), comments: comments)
        case .paths:
            let paths = analysis.referencePaths(maxDepth: analysisOptions.maxDepth, attribution: analysisOptions.attribution.mode,
                                                framework: analysisOptions.framework.mode, progress: progress)
            profile = analysis.measure("profile") { ReferenceReport.profile(paths.attribution, objects: analysis.objects, comments: comments) }
        }
        progress.finish()
        try analysis.requireWholeRead()
        if let mainBinary { profile.mainBinary = mainBinary }
        let writeStart = monotonicNanoseconds()
        try writeFile(output.output, try profile.gzipped())
        if analysisOptions.timings { printTimings(analysis, write: monotonicNanoseconds() - writeStart) }
        for note in notes { printError("swref: note: \(note)") }
        printError("swref: \(summary); \(analysis.heap.description): \(analysis.objects.count) blocks, \(formatBytes(analysis.heap.totalBytes)) in use; wrote \(output.output)")
        if !analysisOptions.timings, let line = inPlaceLine(analysis.target as? Snapshot) { printError("swref: \(line)") }
    }
}

/// `--timings`: each phase's time, swref's resident memory after it, and its page faults, on stderr.
func printTimings(_ analysis: HeapAnalysis, write: UInt64? = nil) {
    let capture = (analysis.target as? Snapshot).map { $0.captureNanoseconds } ?? 0
    let phases = (capture > 0 ? [("capture", capture)] : []) + analysis.timings + (write.map { [("write", $0)] } ?? [])
    printError("swref: timings " + phases.map { "\($0.phase.replacingOccurrences(" ", "-"))=\(formatMilliseconds($0.nanoseconds).replacingOccurrences(" ", ""))" }.joined(separator: " "))
    printError("swref: resident after " + analysis.residentAfter.map { "\($0.phase): \(formatBytes($0.bytes))" }.joined(separator: ", ")
               + "; peak \(formatBytes(ProcFS.statusBytes(getpid(), "VmHWM")))")
    if let line = BudgetRecord.timingsLine { printError("swref: \(line)") }
    if let line = inPlaceLine(analysis.target as? Snapshot) { printError("swref: \(line)") }
    printError("swref: page faults " + analysis.faults.map { "\($0.phase): \($0.count)" }.joined(separator: ", "))
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let fd = try FileAccess.create(path, mode: 0o644)
    defer { close(fd) }
    try bytes.withUnsafeBytes { try FileAccess.writeAll(fd, $0, path: path) }
}

/// What a fork read in place cost, for `--timings` and the summary: "read in place: 1.2 GiB
/// filled in 4 800 faults, 32.3 MiB held at most; the target duplicated 3.1 MiB while the child
/// lived (2.3 s)".
/// A pre-copy to disk: "read back from disk: 1.2 GiB filled in 4 800 faults, 32.3 MiB held at
/// most, of 968.0 MiB copied to an unlinked file in /tmp".
func inPlaceLine(_ snapshot: Snapshot?) -> String? {
    guard let reading = snapshot?.inPlace else { return nil }
    if reading.spilledBytes > 0 {
        return "read back from disk: \(formatBytes(reading.filledBytes)) filled in \(reading.faults) faults, "
            + "\(formatBytes(reading.peakResidentBytes)) held at most, of \(formatBytes(reading.spilledBytes)) copied to an unlinked file in \(reading.spillDirectory)"
    }
    return "read in place: \(formatBytes(reading.filledBytes)) filled in \(reading.faults) faults, "
        + "\(formatBytes(reading.peakResidentBytes)) held at most; the target duplicated \(formatBytes(reading.copyOnWriteBytes)) "
        + "while the child lived (\(formatMilliseconds(reading.childNanoseconds)))"
}

