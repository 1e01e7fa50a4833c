import ArgumentParser
import Glibc
import SwrefKit

extension Swref {
    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write an ELF core of a live process (readable by gdb and `swref core`).",
            discussion: "The target is stopped only to copy the pages it wrote during the copy (see --capture); the core is written after it resumes."
        )

        @Argument(help: "Process ID of the target.")
        var pid: Int32

        @Option(name: [.short, .customLong("output")], help: "Core file to write.")
        var output: String = "core.swref"

        @OptionGroup var captureOptions: CaptureOptions

        @Flag(help: "Write read-only file mappings only as their first page, like a kernel core (smaller; the files must be present when the core is read).")
        var skipReadOnlyFiles = false

        func run() throws {
            try runReporting {
                try FileAccess.checkWritable(output)
                try checkDiskForCore(pid: pid, output: output, readOnlyFiles: !skipReadOnlyFiles)
                let progress = ProgressReporter()
                let snapshot = try captureOptions.capture(pid: pid, progress: progress, analysis: false)
                try CoreWriter.write(snapshot, process: .live(pid), to: output, readOnlyFiles: !skipReadOnlyFiles, progress: progress)
                progress.finish()
                // A fork read in place whose child went away while it was written: zeros in the
                // core where the heap was. No core rather than that one.
                if let failure = snapshot.readFailure {
                    unlink(output)
                    throw SwrefError.heapUnreadable(failure + "; no core written")
                }
                printError("swref: \(pauseSummary(snapshot, pid: pid)); wrote \(output)")
            }
        }
    }
}
