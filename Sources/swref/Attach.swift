import ArgumentParser
import Glibc
import SwrefKit

extension Swref {
    struct Attach: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop a live process briefly, copy its memory, and report who holds its heap.",
            discussion: "Needs root or CAP_SYS_PTRACE. swref copies the target's memory while it runs, tracking the pages it writes, and stops it only to copy those again (--capture says how else)."
        )

        @Argument(help: "Process ID of the target.")
        var pid: Int32

        @OptionGroup var outputOptions: OutputOptions
        @OptionGroup var analysisOptions: AnalysisOptions
        @OptionGroup var captureOptions: CaptureOptions

        func run() throws {
            try runReporting {
                if outputOptions.format == .pprof { try FileAccess.checkWritable(outputOptions.output) }
                let progress = ProgressReporter()
                let snapshot = try captureOptions.capture(pid: pid, progress: progress)
                let analysis = analyse(snapshot, progress: progress)
                let summary = pauseSummary(snapshot, pid: pid)
                try report(analysis, summary: summary, output: outputOptions,
                           analysisOptions: analysisOptions, progress: progress, mainBinary: ProcFS.executablePath(pid))
            }
        }
    }
}
