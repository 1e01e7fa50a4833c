import ArgumentParser
import Glibc
import SwrefKit

extension Swref {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a program, capture its heap as it exits, and report leaks (for CI).",
            discussion: """
            The program runs under ptrace and is stopped as it exits (PTRACE_O_TRACEEXIT), while its \
            memory is intact; its heap is copied, it is let go, and the copy is analysed. Programs it \
            starts are not followed.

            Exit status: the program's own status when it failed (128+N for signal N); otherwise 1 when \
            --fail-on-leaks and unsuppressed leaks were found; 0 when clean; 125 when swref itself \
            could not work; 127 when the program could not be started. The report goes to stderr.

            Example: swift build --build-tests && swref run --fail-on-leaks --json leaks.json -- .build/debug/AppPackageTests.xctest
            """
        )

        @Flag(help: "Exit with status 1 when unsuppressed leaks are found.")
        var failOnLeaks = false

        @Option(name: [.short, .customLong("output")], help: "Also write the reference-path profile of the heap at exit.")
        var output: String?

        @OptionGroup var leakOptions: LeakOptions
        @OptionGroup var analysisOptions: AnalysisOptions

        @Argument(parsing: .postTerminator, help: "The program and its arguments, after --.")
        var command: [String]

        static let swrefFailed: Int32 = 125

        func validate() throws {
            guard !command.isEmpty else { throw ValidationError("give the program to run after --") }
        }

        func run() throws {
            var status: Int32 = 0
            CrashContext.install(exitStatus: Run.swrefFailed)
            do {
                let suppressions = try leakOptions.loadSuppressions()
                for path in [output, leakOptions.json].compactMap({ $0 }) { try FileAccess.checkWritable(path) }
                let launch = try TracedLaunch(arguments: command)
                CrashContext.launched(launch.pid)
                guard let ending = launch.runUntilExit() else {
                    throw SwrefError.invalidInput("\(command[0]) vanished without an exit stop")
                }
                guard launch.execed else {
                    _ = launch.finish()
                    printError("swref: cannot run \(command[0]): not found or not executable")
                    throw ExitCode(127)
                }
                let snapshot: Snapshot
                do {
                    snapshot = try LiveCapture.copyStopped(pid: launch.pid, threads: launch.registers(), everything: true)
                } catch {
                    _ = launch.finish()
                    throw error
                }
                let finalEnding = launch.finish() ?? ending
                // A crash from here on keeps the program's own failure, as the normal path does.
                if finalEnding != .exited(0) { CrashContext.install(exitStatus: finalEnding.shellStatus) }
                let progress = ProgressReporter()
                let analysis = analyse(snapshot, progress: progress)
                let program: JSONValue = .object([
                    ("command", .array(command.map { .string($0) })),
                    ("pid", .int(Int64(launch.pid))),
                    ("exitStatus", .int(Int64(finalEnding.shellStatus))),
                ])
                let summary = try reportLeaks(analysis, name: "\(command[0]) (PID \(launch.pid)) at exit",
                                              mainBinary: ProcFS.executablePath(launch.pid) ?? command[0],
                                              suppressions: suppressions, profile: output, json: leakOptions.json, program: program,
                                              analysisOptions: analysisOptions, progress: progress, toStandardError: true,
                                              includeSystem: leakOptions.includeSystemLeaks)
                if finalEnding != .exited(0) {
                    status = finalEnding.shellStatus
                } else if failOnLeaks && summary.hasLeaks {
                    status = 1
                }
            } catch let error as SwrefError {
                printError("swref: \(error)")
                status = Run.swrefFailed
            }
            if status != 0 { throw ExitCode(status) }
        }
    }
}
