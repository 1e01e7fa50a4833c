import ArgumentParser

import SwrefKit

/// A process or a core, analysed: what `leaks`, `top` and `why` start from.
struct LoadedTarget {
    var analysis: HeapAnalysis
    var threads: [ThreadState]
    var name: String
    var binary: String?

    /// - Parameter arguments: `[PID]`, or with `core`: `[EXE] CORE`.
    static func load(core: Bool, arguments: [String], sysroot: String, capture: CaptureOptions,
                     progress: ProgressReporter) throws -> LoadedTarget {
        if core {
            let (file, exe) = try openCore(arguments, sysroot: sysroot)
            let analysis = HeapAnalysis(source: file, sysroot: sysroot, exactPaths: Set(exe.map { [$0] } ?? []), progress: progress)
            try analysis.requireReadableHeap()
            return LoadedTarget(analysis: analysis, threads: file.threads, name: "core of PID \(file.pid) (\(file.commandName))",
                                binary: exe ?? file.executablePath)
        }
        guard arguments.count == 1, let pid = Int32(arguments[0]) else { throw SwrefError.invalidInput("give a PID, or --core [EXE] CORE") }
        let snapshot = try capture.capture(pid: pid, progress: progress)
        let analysis = HeapAnalysis(source: snapshot, progress: progress)
        try analysis.requireReadableHeap()
        return LoadedTarget(analysis: analysis, threads: snapshot.threads,
                            name: "PID \(pid)", binary: ProcFS.executablePath(pid))
    }
}
