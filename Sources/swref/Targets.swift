import ArgumentParser
import SwrefKit

/// A process or a core, analysed: what `leaks`, `top` and `why` start from.
struct LoadedTarget {
    var analysis: HeapAnalysis
    var name: String { analysis.target.identity.name }
    /// The program's file: the EXE given for a core, else the one the target names.
    var binary: String?

    /// - Parameter arguments: `[PID]`, or with `core`: `[EXE] CORE`.
    static func load(core: Bool, arguments: [String], sysroot: String, capture: CaptureOptions,
                     progress: ProgressReporter) throws -> LoadedTarget {
        let (target, exe) = try openTarget(core: core, arguments: arguments, sysroot: sysroot, capture: capture, progress: progress)
        let analysis = analyse(target, progress: progress)
        try analysis.requireReadableHeap()
        return LoadedTarget(analysis: analysis, binary: exe ?? target.identity.executablePath)
    }
}

/// A live process captured as `capture` says, or with `core` a core file and its EXE if given.
/// - Parameter arguments: `[PID]`, or with `core`: `[EXE] CORE`.
func openTarget(core: Bool, arguments: [String], sysroot: String, capture: CaptureOptions,
                progress: ProgressReporter? = nil) throws -> (Target, exe: String?) {
    if core {
        guard (1...2).contains(arguments.count) else { throw SwrefError.invalidInput("give CORE, or EXE and CORE") }
        let (file, exe) = try openCore(arguments, sysroot: sysroot)
        try capture.budget.checkCore(file, path: arguments.last!)
        return (file, exe)
    }
    guard arguments.count == 1, let pid = Int32(arguments[0]) else { throw SwrefError.invalidInput("give a PID, or --core [EXE] CORE") }
    return (try capture.capture(pid: pid, progress: progress ?? ProgressReporter()), nil)
}
