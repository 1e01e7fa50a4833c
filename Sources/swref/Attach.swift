import ArgumentParser
import Glibc
import SwrefKit

extension Swref {
    struct Attach: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop a live process briefly, copy its memory, and report who holds its heap.",
            discussion: "Needs root or CAP_SYS_PTRACE. The target is stopped only while its memory is copied."
        )

        @Argument(help: "Process ID of the target.")
        var pid: Int32

        @OptionGroup var outputOptions: OutputOptions
        @OptionGroup var analysisOptions: AnalysisOptions
        @OptionGroup var captureOptions: CaptureOptions

        func run() throws {
            try runReporting {
                let progress = ProgressReporter()
                let stall = Int(getenv("SWREF_TEST_STALL_MS").flatMap { Int(String(cString: $0)) } ?? 0)
                let snapshot = try LiveCapture.capture(pid: pid, options: .init(progress: progress, stallMilliseconds: stall,
                                                                                fork: captureOptions.fork))
                let analysis = HeapAnalysis(source: snapshot, progress: progress)
                let summary = "paused PID \(pid) for \(formatMilliseconds(snapshot.pauseNanoseconds))"
                try report(analysis, threads: snapshot.threads, summary: summary, output: outputOptions,
                           analysisOptions: analysisOptions, progress: progress, mainBinary: ProcFS.executablePath(pid))
            }
        }
    }
}
