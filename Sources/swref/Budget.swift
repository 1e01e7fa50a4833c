import ArgumentParser
import Glibc
import SwrefKit

/// `--max-memory`, and the checks made before a target is touched: the memory a capture and its
/// analysis would take against what swref may use, and for `dump` the disk the core would take.
/// A check that fails exits 3 (docs/performance.md, "Memory budget").
struct BudgetOptions: ParsableArguments {
    @Option(help: ArgumentHelp("""
    Most memory swref may use (512M, 2G). Before it touches the target, swref estimates what the copy \
    and the analysis need and refuses (exit 3) when that exceeds this, the machine's available memory \
    or what its cgroup's limit leaves.
    """, valueName: "size"))
    var maxMemory: String?

    func validate() throws {
        if let maxMemory, MemoryBudget.parseSize(maxMemory) == nil {
            throw ValidationError("--max-memory: give a size such as 512M or 2G, not \(maxMemory)")
        }
    }

    var maxMemoryBytes: UInt64? { maxMemory.flatMap(MemoryBudget.parseSize) }

    /// A live capture of `pid` by `method`, analysed after when `analysis`.
    func checkLive(pid: Int32, method: CaptureMethod, analysis: Bool) throws {
        let estimate = try CaptureEstimate.live(pid: pid, method: method, analysis: analysis)
        let what = analysis ? "the copy of PID \(pid) and its analysis" : "the copy of PID \(pid)"
        let elsewhere = analysis
            ? "or write a core with `swref dump` and analyse it where there is more memory (`swref core`)"
            : "or leave out --capture: a copy spilled to disk (or a fork read in place) writes the core through a window of \(formatBytes(CaptureEstimate.inPlaceResidentBytes))"
        try require(estimate, what: what, elsewhere: elsewhere, target: pid)
        if estimate.diskBytes > 0 { try checkDisk(pid: pid, copy: estimate.diskBytes) }
    }

    /// A pre-copy to disk: the copy's bytes (resident and swapped, as for a pre-copy) and a tenth
    /// more must be free where its file goes.
    private func checkDisk(pid: Int32, copy: UInt64) throws {
        let directory = SpillFile.defaultDirectory
        let need = copy + copy / 10
        guard let free = SpillFile.freeBytes(directory), free < need else { return }
        throw BudgetExceeded("the copy of PID \(pid) would need about \(formatBytes(need)) on disk in \(directory), more than "
                             + "the \(formatBytes(free)) free there: free disk space, set TMPDIR to a larger filesystem, "
                             + "or use --capture fork-in-place")
    }

    /// Before stop-the-world maps its buffers (the whole size of every copied mapping).
    func checkStopTheWorld(pid: Int32, map: MemoryMap, fallbackNote: String?, analysis: Bool) throws {
        let copy = CaptureEstimate.copyBytes(map: map, method: .stopTheWorld)
        let estimate = MemoryEstimate(copyBytes: copy, analysisBytes: analysis ? CaptureEstimate.analysisBytes(copy: copy) : 0,
                                      basis: "mapped")
        let why = fallbackNote.map { " instead (\($0))" } ?? ""
        try require(estimate, what: "stopping PID \(pid) for the whole copy\(why)",
                    elsewhere: "or write a core with `swref dump` and analyse it elsewhere", target: pid)
    }

    /// A core file: mapped, so only the analysis' arrays count.
    func checkCore(_ core: CoreFile, path: String) throws {
        var info = stat()
        let size = stat(path, &info) == 0 ? UInt64(info.st_size) : UInt64.max
        try require(CaptureEstimate.core(core.memoryMap, fileSize: size), what: "the analysis of \(path)",
                    elsewhere: "or analyse the core on a machine with more memory")
    }

    private func require(_ estimate: MemoryEstimate, what: String, elsewhere: String, target: Int32? = nil) throws {
        let budget = MemoryBudget.current(maxMemory: maxMemoryBytes)
        var tightest = budget.tightest
        // A cgroup the target is in too (swref beside it in its pod, or inside its container):
        // the target's own memory is in that usage, and whatever swref takes is taken from both.
        if let target, var limit = tightest, limit.kind == .cgroup,
           let text = ProcFS.readFile("/proc/\(target)/cgroup"), limit.holds(procCgroup: text) {
            limit.source += "; PID \(target) is in it too"
            tightest = limit
        }
        BudgetRecord.last = (estimate, tightest)
        guard let limit = tightest, estimate.total > limit.bytes else { return }
        let advice: String
        switch limit.kind {
        case .machine: advice = "free memory"
        case .cgroup: advice = "raise that cgroup's limit or run swref outside it"
        case .option: advice = "raise --max-memory"
        }
        throw BudgetExceeded("\(what) would need about \(formatBytes(estimate.total)) (\(BudgetRecord.parts(estimate))), "
                             + "more than the \(formatBytes(limit.bytes)) available (\(limit.source)): \(advice), \(elsewhere)")
    }
}

/// The last check's figures, for `--timings`.
enum BudgetRecord {
    static var last: (estimate: MemoryEstimate, limit: MemoryBudget.Limit?)? = nil

    /// Half of what a cgroup's limit or --max-memory leaves, when one of them is tighter than the
    /// machine's available memory (which the analysis reads by itself, and which knows nothing of
    /// cgroups): the dominator tree is skipped, with a note, when it would need more.
    static var dominatorBudget: UInt64? {
        guard let limit = last?.limit, limit.kind != .machine else { return nil }
        return limit.bytes / 2
    }

    /// "1.0 GiB resident to copy + 288.0 MiB for the analysis"
    static func parts(_ estimate: MemoryEstimate) -> String {
        var parts: [String] = []
        if estimate.copyBytes > 0 {
            switch estimate.basis {
            case "in place": parts.append("\(formatBytes(estimate.copyBytes)) of the frozen child read in place at most")
            case "resident": parts.append("\(formatBytes(estimate.copyBytes)) resident to copy")
            default: parts.append("\(formatBytes(estimate.copyBytes)) mapped to copy")
            }
        }
        if estimate.analysisBytes > 0 {
            parts.append("\(formatBytes(estimate.analysisBytes)) for the analysis" + (estimate.basis == "core" ? "; the core itself is mapped, not copied" : ""))
        }
        return parts.joined(separator: " + ")
    }

    /// `--timings`: "memory estimated 1.3 GiB (…) of 20.1 GiB available (MemAvailable)".
    static var timingsLine: String? {
        guard let (estimate, limit) = last else { return nil }
        let against = limit.map { "of \(formatBytes($0.bytes)) available (\($0.source))" } ?? "(no limit could be read)"
        return "memory estimated \(formatBytes(estimate.total)) (\(parts(estimate))) \(against)"
    }
}

/// `swref dump`: the core takes every mapping's whole size on disk; refused (exit 3) when the
/// output's file system has less free space than that.
func checkDiskForCore(pid: Int32, output: String, readOnlyFiles: Bool) throws {
    guard pid > 0, ProcFS.exists(pid) else { throw SwrefError.noSuchProcess(pid) }
    let size = CoreWriter.estimatedSize(try ProcFS.memoryMap(pid), threads: ProcFS.threadIDs(pid).count, readOnlyFiles: readOnlyFiles)
    let directory = output.contains("/") ? String(output[..<output.lastIndex(of: "/")!]) : "."
    var fs = statvfs()
    guard statvfs(directory.isEmpty ? "/" : directory, &fs) == 0 else { return }
    var existing = stat()
    // An existing core there is replaced: its blocks come back.
    let replaced = stat(output, &existing) == 0 && (existing.st_mode & S_IFMT) == S_IFREG ? UInt64(existing.st_blocks) * 512 : 0
    let free = UInt64(fs.f_bavail) * UInt64(fs.f_frsize) + replaced
    guard size > free else { return }
    throw BudgetExceeded("the core of PID \(pid) would take about \(formatBytes(size)) on disk, more than the "
                         + "\(formatBytes(free)) free where \(output) goes: free space there or write it elsewhere (-o)")
}
