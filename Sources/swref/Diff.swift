import ArgumentParser
import SwrefKit

extension Swref {
    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare two swref profiles: paths and types that grew, new leaks.",
            discussion: "Text on standard output; --json FILE writes the same as JSON (schema: docs/json-report.md)."
        )

        @Argument(help: "The earlier profile.")
        var base: String

        @Argument(help: "The later profile.")
        var new: String

        @Option(help: "Also write the difference as JSON.")
        var json: String?

        @Option(help: "Rows per section in the text output.")
        var limit: Int = 20

        @Option(help: "Suppressions file (path: and leak: patterns are left out of the comparison).")
        var suppressions: String?

        func run() throws {
            try runReporting {
                let diff = ProfileDiff(base: try PprofDecoder.read(path: base), new: try PprofDecoder.read(path: new),
                                       suppressions: try swrefLoadSuppressions(suppressions))
                print(diff.text(limit: limit), terminator: "")
                if let json { try writeFile(json, Array((diff.json.text() + "\n").utf8)) }
            }
        }
    }
}
