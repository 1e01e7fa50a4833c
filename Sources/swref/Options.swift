import ArgumentParser
import Glibc
import SwrefKit

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case pprof, text
}

enum ProfileView: String, ExpressibleByArgument, CaseIterable {
    /// One sample per reference path from a root (goref's view).
    case paths
    /// One sample per type (a census, like `heap`).
    case types
}

/// Where and how results are written; shared by every command that produces a report.
struct OutputOptions: ParsableArguments {
    @Option(name: [.short, .customLong("output")], help: "Profile file to write.")
    var output: String = "swref.out"

    @Option(help: "pprof: gzipped profile to --output; text: a table on standard output.")
    var format: OutputFormat = .pprof

    @Option(help: "paths: a sample per reference path from a root; types: a sample per type.")
    var view: ProfileView = .paths

    @Option(help: "With --format text, show at most this many rows.")
    var limit: Int?
}

enum FrameworkChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, nio, none
    var mode: FrameworkMode { FrameworkMode(rawValue: rawValue)! }
}

enum AttributionChoice: String, ExpressibleByArgument, CaseIterable {
    case dominator
    case firstPath = "first-path"

    var mode: AttributionMode { self == .dominator ? .dominator : .firstPath }
}

/// How the reference walk attributes objects.
struct AnalysisOptions: ParsableArguments {
    @Option(help: "dominator: each object under its immediate-dominator chain (a frame's total is what freeing it frees); first-path: on the first shortest path from a root, as goref does.")
    var attribution: AttributionChoice = .dominator

    @Option(help: "Longest reference path shown; deeper objects are folded into their ancestor at this depth.")
    var maxDepth: Int = 256

    @Flag(help: "Print the time each phase took on stderr.")
    var timings = false

    @Option(help: "Name framework buffers (SwiftNIO ByteBuffer) by the bytes they pin and show, charged to the user code that holds them. auto: on when the heap has them.")
    var framework: FrameworkChoice = .auto

    func validate() throws {
        guard maxDepth >= 1 else { throw ValidationError("--max-depth must be at least 1") }
    }
}

extension String {
    func replacingOccurrences(_ target: Character, _ replacement: String) -> String {
        var out = ""
        for character in self { if character == target { out += replacement } else { out.append(character) } }
        return out
    }
}

/// How a live process is captured.
struct CaptureOptions: ParsableArguments {
    enum Method: String, ExpressibleByArgument, CaseIterable {
        case precopy, precopyToDisk = "precopy-to-disk", fork, forkInPlace = "fork-in-place", stopTheWorld = "stop-the-world"
    }

    @Option(help: """
    How to take the snapshot: precopy (default: copy while the target runs, tracking its writes, \
    then stop it only to copy what changed since), precopy-to-disk (the same, the copy written to an \
    unlinked file in $TMPDIR or /tmp and read back as the analysis goes: swref's memory follows the \
    objects, not the heap's bytes; chosen by itself when a copy would not fit the memory swref may \
    use and the disk has room), fork (stop it while it forks, about 20 ms per GiB, \
    and copy the frozen child; the child is the target's parent's, which gets a SIGCHLD and a zombie \
    to reap), fork-in-place (the same fork, read as the analysis goes instead of copied: swref's \
    memory follows the objects; the target duplicates the pages it writes until the scan is done; \
    chosen by itself when neither memory nor disk holds a copy) \
    or stop-the-world (stopped for the whole copy). A way the target or kernel does not allow falls \
    back to stop-the-world. See docs/performance.md.
    """)
    var capture: Method?

    @Flag(help: "Same as --capture stop-the-world.")
    var stopTheWorld = false

    @OptionGroup var budget: BudgetOptions

    /// Takes the snapshot, saying on stderr when the chosen way was not possible; refuses first
    /// (exit 3) when the copy, and the analysis when `analysis`, would not fit the memory budget.
    func capture(pid: Int32, progress: ProgressReporter?, analysis: Bool = true) throws -> Snapshot {
        // Test hook: hold the target stopped (or mid-injection) this long.
        let stall = Int(getenv("SWREF_TEST_STALL_MS").flatMap { Int(String(cString: $0)) } ?? 0)
        var method: CaptureMethod
        switch stopTheWorld ? .stopTheWorld : capture ?? .precopy {
        case .precopy: method = .precopy
        case .fork: method = .forkSnapshot
        case .precopyToDisk: method = .precopyToDisk
        case .forkInPlace: method = .forkInPlace
        case .stopTheWorld: method = .stopTheWorld
        }
        do {
            try budget.checkLive(pid: pid, method: method, analysis: analysis)
        } catch let refusal as BudgetExceeded where capture == nil && !stopTheWorld {
            // The copy would not fit: a pre-copy to disk, else a fork read in place, needs memory
            // for the objects (and for `dump`, none but its window), not the bytes. Chosen by
            // themselves only here, where the other answer is a refusal.
            let short = refusal.description.prefix { $0 != ":" }
            // Both need the same memory: the second is taken only when the disk is short.
            if (try? budget.checkLive(pid: pid, method: .precopyToDisk, analysis: analysis)) != nil {
                method = .precopyToDisk
                printError("swref: note: \(short): copying it to an unlinked file in \(SpillFile.defaultDirectory) instead "
                           + "(the same pause; the file is gone when swref exits)")
            } else {
                guard (try? budget.checkLive(pid: pid, method: .forkInPlace, analysis: analysis)) != nil else { throw refusal }
                method = .forkInPlace
                printError("swref: note: \(short), and \(SpillFile.defaultDirectory) has no room for a copy: reading a fork of it in place instead "
                           + "(its parent gets a SIGCHLD and a zombie to reap; pages it writes meanwhile are duplicated)")
            }
        }
        var options = LiveCapture.Options(progress: progress, stallMilliseconds: stall, method: method)
        // Test hook: a smaller window for a fork read in place, so that stretches are given back and read again.
        if let limit = getenv("SWREF_IN_PLACE_LIMIT").flatMap({ Int(String(cString: $0)) }), limit > 0 {
            options.inPlaceResidentLimit = limit
        }
        options.beforeStopTheWorld = { [budget] map, note in
            try budget.checkStopTheWorld(pid: pid, map: map, fallbackNote: note, analysis: analysis)
        }
        let snapshot = try LiveCapture.capture(pid: pid, options: options)
        if let note = snapshot.captureNote { printError("swref: note: \(note)") }
        return snapshot
    }
}

/// What `leaks`, `top` and `why` read: a live process, captured as CaptureOptions says, or with
/// `--core` a core file.
struct TargetOptions: ParsableArguments {
    @Flag(help: "Read a core file: the target is [EXE] CORE instead of a PID.")
    var core = false

    @Option(help: "Directory that stands for / when opening the files a core names.")
    var sysroot: String = ""

    @OptionGroup var capture: CaptureOptions

    /// `arguments`: `[PID]`, or with `--core`: `[EXE] CORE`.
    func load(_ arguments: [String], progress: ProgressReporter) throws -> LoadedTarget {
        try LoadedTarget.load(core: core, arguments: arguments, sysroot: sysroot, capture: capture, progress: progress)
    }
}

/// "paused PID 42 for 8.1 ms (fork snapshot)"
func pauseSummary(_ snapshot: Snapshot, pid: Int32) -> String {
    "paused PID \(pid) for \(formatMilliseconds(snapshot.pauseNanoseconds)) (\(snapshot.captureMethod.rawValue))"
}

/// The analysis of a target with the settings the environment gives: the SWREF_* switches the
/// tests and comparisons use are read here, and nowhere below the CLI.
func analyse(_ target: Target, progress: ProgressReporter? = nil) -> HeapAnalysis {
    HeapAnalysis(target: target, settings: environmentSettings(), progress: progress)
}

func environmentSettings() -> AnalysisSettings {
    func value(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
    return AnalysisSettings(scanThreads: value("SWREF_THREADS").flatMap { Int($0) },
                            dominatorBudget: value("SWREF_DOMINATOR_BUDGET").flatMap { UInt64($0) } ?? BudgetRecord.dominatorBudget,
                            keepCopy: value("SWREF_KEEP_COPY") == "1",
                            pagePoolLimit: value("SWREF_PAGE_POOL").flatMap { Int($0) })
}
