import ArgumentParser
import SwrefKit

extension Swref {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fail (exit 1) when a profile grew past a baseline or has new leaks.",
            discussion: """
            A regression is: total in-use bytes grew by more than --max-growth-bytes or \
            --max-growth-percent (when given), or a leak group is new or larger than in the baseline. \
            Exit status: 0 no regression, 1 regression, 2 swref could not work, 125 no regression \
            found but a profile's heap was not read whole (partial or approximate): not passed as clean.
            """
        )

        @Option(help: "The baseline profile.")
        var baseline: String

        @Option(help: "Largest allowed growth of in-use bytes.")
        var maxGrowthBytes: Int64?

        @Option(help: "Largest allowed growth of in-use bytes, in percent of the baseline.")
        var maxGrowthPercent: Double?

        @Option(help: "Suppressions file (path: and leak: patterns are left out of the comparison).")
        var suppressions: String?

        @Option(help: "Also write the comparison and verdict as JSON.")
        var json: String?

        @Argument(help: "The profile to check.")
        var profile: String

        func run() throws {
            var regressions: [String] = []
            try runReporting {
                let base = try PprofDecoder.read(path: baseline), new = try PprofDecoder.read(path: profile)
                let diff = ProfileDiff(base: base, new: new, suppressions: try swrefLoadSuppressions(suppressions))
                // Growth or leaks in a part of the heap that was not read would pass unseen.
                let incomplete = [(profile, new), (baseline, base)].compactMap { path, read in read.incompleteHeap.map { "\(path): \($0)" } }
                if let maxGrowthBytes, diff.growthBytes > maxGrowthBytes {
                    regressions.append("in-use bytes grew by \(diff.growthBytes), more than \(maxGrowthBytes)")
                }
                if let maxGrowthPercent, diff.growthPercent > maxGrowthPercent {
                    regressions.append("in-use bytes grew by \(String(diff.growthPercent, decimals: 1))%, more than \(maxGrowthPercent)%")
                }
                for leak in diff.leaks { regressions.append("leak grew by \(leak.deltaCount) objects, \(leak.deltaBytes) B: \(leak.key)") }
                print(diff.text(), terminator: "")
                let unchecked = regressions.isEmpty && !incomplete.isEmpty
                print(!regressions.isEmpty ? regressions.map { "check: REGRESSION: \($0)" }.joined(separator: "\n")
                      : unchecked ? "check: not passed: a heap was not read whole" : "check: no regression")
                if let json {
                    var members: [(String, JSONValue)] = [("schema", .string("swref-check/1")), ("regression", .bool(!regressions.isEmpty)),
                                                          ("reasons", .array(regressions.map { .string($0) }))]
                    if !incomplete.isEmpty { members.append(("incomplete_heaps", .array(incomplete.map { .string($0) }))) }
                    members.append(("diff", diff.json))
                    try writeFile(json, Array((JSONValue.object(members).text() + "\n").utf8))
                }
                if unchecked {
                    throw SwrefError.heapUnreadable("no regression found, but not every heap was read whole (\(incomplete.joined(separator: "; "))): not passed as clean")
                }
            }
            if !regressions.isEmpty { throw ExitCode(1) }
        }
    }
}
