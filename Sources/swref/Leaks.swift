import ArgumentParser
import Glibc
import SwrefKit

/// Options of the commands that report leaks.
struct LeakOptions: ParsableArguments {
    @Option(help: "Also write the leak report as JSON (schema: docs/json-report.md).")
    var json: String?

    @Option(help: "File of known leaks to ignore: lines leak:PATTERN, type:PATTERN (docs/leaks-and-ci.md).")
    var suppressions: String?

    @Flag(help: "Count leak roots made only of system objects (Foundation, XCTest, Dispatch, the standard library, untyped malloc blocks), which test harnesses and runtimes leave at exit; suppressed by default.")
    var includeSystemLeaks = false

    func loadSuppressions() throws -> Suppressions { try swrefLoadSuppressions(suppressions) }
}

func swrefLoadSuppressions(_ path: String?) throws -> Suppressions {
    guard let path else { return Suppressions() }
    guard let text = ProcFS.readFile(path) else {
        throw SwrefError.system("open", errno: errno, "reading suppressions \(path)")
    }
    return try Suppressions(text: text)
}

extension Swref {
    struct Leaks: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find objects no root reaches — retain cycles and lost references — in a process or a core.",
            discussion: """
            Exit status: 0 no leaks, 1 leaks found (unsuppressed), 2 swref could not work.
            Examples: swref leaks 4242    swref leaks --core ./server core.4242
            """
        )

        @Argument(help: ArgumentHelp("PID, or with --core: [EXE] CORE.", valueName: "target"))
        var target: [String]


        @Option(name: [.short, .customLong("output")], help: "Also write the reference-path profile (leaks under <leaked>).")
        var output: String?

        @OptionGroup var leakOptions: LeakOptions
        @OptionGroup var analysisOptions: AnalysisOptions
        @OptionGroup var targetOptions: TargetOptions

        func validate() throws {
            if targetOptions.core {
                guard (1...2).contains(target.count) else { throw ValidationError("with --core give [EXE] CORE") }
            } else {
                guard target.count == 1, Int32(target[0]) != nil else { throw ValidationError("give a PID, or --core [EXE] CORE") }
            }
        }

        func run() throws {
            var leaked = false
            try runReporting {
                for path in [output, leakOptions.json].compactMap({ $0 }) { try FileAccess.checkWritable(path) }
                let suppressions = try leakOptions.loadSuppressions()
                let progress = ProgressReporter()
                let loaded = try targetOptions.load(target, progress: progress)
                let summary = try reportLeaks(loaded.analysis, name: loaded.name, mainBinary: loaded.binary,
                                              suppressions: suppressions,
                                              profile: output, json: leakOptions.json, program: nil, analysisOptions: analysisOptions,
                                              progress: progress, includeSystem: leakOptions.includeSystemLeaks)
                leaked = summary.hasLeaks
            }
            if leaked { throw ExitCode(1) }
        }
    }
}

/// Walks the references, prints the leak report, and writes the profile and JSON when asked.
func reportLeaks(_ analysis: HeapAnalysis, name: String, mainBinary: String?,
                 suppressions: Suppressions, profile: String?, json: String?, program: JSONValue?,
                 analysisOptions: AnalysisOptions, progress: ProgressReporter, toStandardError: Bool = false,
                 includeSystem: Bool) throws -> LeakSummary {
    try analysis.requireReadableHeap()
    let paths = analysis.referencePaths(maxDepth: analysisOptions.maxDepth, attribution: analysisOptions.attribution.mode,
                                                framework: analysisOptions.framework.mode, progress: progress)
    progress.finish()
    try analysis.requireWholeRead()
    let summary = LeakSummary(paths.leaks, objects: analysis.objects, suppressions: suppressions,
                              includeSystem: includeSystem)
    // No leak found in a heap read only by its Swift headers is no clean verdict: 125, not 0.
    if case .approximate(let why) = analysis.heap.coverage, !summary.hasLeaks {
        for note in analysis.notes { printError("swref: note: \(note)") }
        throw SwrefError.heapUnreadable("no leak found, but the heap was read only approximately (\(why)): not reported as clean")
    }
    let text = summary.text(target: name, heap: analysis.heap.description)
    if toStandardError { printError(String(text.dropLast())) } else { print(text, terminator: "") }
    for note in analysis.notes { printError("swref: note: \(note)") }
    if let profile {
        var pprof = ReferenceReport.profile(paths.attribution, objects: analysis.objects, comments: [analysis.heapComment] + analysis.notes)
        if let mainBinary { pprof.mainBinary = mainBinary }
        try writeFile(profile, try pprof.gzipped())
    }
    if let json {
        var members: [(String, JSONValue)] = [("schema", .string("swref-leaks/1")), ("target", .string(name))]
        if let program { members.append(("program", program)) }
        members.append(("heap", analysis.heap.json))
        members.append(("leaks", summary.json))
        members.append(("notes", .array(analysis.notes.map { .string($0) })))
        try writeFile(json, Array((JSONValue.object(members).text() + "\n").utf8))
    }
    if analysisOptions.timings { printTimings(analysis) }
    return summary
}
