import ArgumentParser

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case pprof, text
}

/// Where and how results are written; shared by every command that produces a report.
struct OutputOptions: ParsableArguments {
    @Option(name: [.short, .customLong("output")], help: "Profile file to write.")
    var output: String = "swref.out"

    @Option(help: "pprof: gzipped profile to --output; text: a table on standard output.")
    var format: OutputFormat = .pprof

    @Option(help: "With --format text, show at most this many rows.")
    var limit: Int?
}
