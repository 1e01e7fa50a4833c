import ArgumentParser
import Glibc
import SwrefKit

extension Swref {
    struct Top: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The largest retainers, a type histogram (count, shallow and retained bytes), the biggest objects.",
            discussion: """
            TARGET is a PID, a profile written by swref (then: types and frames from its samples), or with \
            --core: [EXE] CORE.
            """
        )

        @Argument(help: ArgumentHelp("PID, PROFILE, or with --core: [EXE] CORE.", valueName: "target"))
        var target: [String]

        @Option(help: "Rows per section.")
        var limit: Int = 15

        @OptionGroup var targetOptions: TargetOptions


        func run() throws {
            try runReporting {
                if !targetOptions.core, target.count == 1, Int32(target[0]) == nil || !ProcFS.exists(Int32(target[0]) ?? -1) {
                    print(ProfileTop.text(try PprofDecoder.read(path: target[0]), limit: limit), terminator: "")
                    return
                }
                let progress = ProgressReporter()
                let loaded = try targetOptions.load(target, progress: progress)
                let paths = loaded.analysis.referencePaths(attribution: .dominator, progress: progress)
                progress.finish()
                let report = TopReport(objects: loaded.analysis.objects, paths: paths, limit: limit)
                print("\(loaded.name): \(loaded.analysis.objects.count) blocks, \(formatBytes(loaded.analysis.objects.sizes.reduce(0, +))) in use\n")
                print(report.text(objects: loaded.analysis.objects, paths: paths, limit: limit), terminator: "")
                for note in loaded.analysis.notes { printError("swref: note: \(note)") }
            }
        }
    }
}

/// `top` on a profile: what its samples tell without the heap (in a dominator-attributed profile a
/// frame's cumulative value is what it retains).
enum ProfileTop {
    static func text(_ profile: PprofProfile, limit: Int) -> String {
        let bytesIndex = profile.sampleTypes.firstIndex { $0.type == "inuse_space" } ?? 0
        let countIndex = profile.sampleTypes.firstIndex { $0.type == "inuse_objects" } ?? 0
        var frames: [String: (Int64, Int64)] = [:]
        var types: [String: (Int64, Int64)] = [:]
        for sample in profile.samples {
            var seen: Set<String> = []
            for (depth, frame) in sample.frames.enumerated() {
                let key = sample.frames[0...depth].joined(separator: " › ")
                guard seen.insert(key).inserted else { continue }
                _ = frame
                let current = frames[key] ?? (0, 0)
                frames[key] = (current.0 + sample.values[countIndex], current.1 + sample.values[bytesIndex])
            }
            let type = sample.frames.last ?? "?"
            let current = types[type] ?? (0, 0)
            types[type] = (current.0 + sample.values[countIndex], current.1 + sample.values[bytesIndex])
        }
        func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : String(repeating: " ", count: width - s.count) + s }
        var lines = ["Largest paths (cumulative):"]
        for (key, value) in frames.sorted(by: { ($0.value.1, $1.key) > ($1.value.1, $0.key) }).prefix(limit) {
            lines.append("  \(pad(formatBytes(value.1), 10)) \(pad("\(value.0)", 9)) objects  \(key)")
        }
        lines.append("")
        lines.append("Leaf frames (flat):")
        for (key, value) in types.sorted(by: { ($0.value.1, $1.key) > ($1.value.1, $0.key) }).prefix(limit) {
            lines.append("  \(pad(formatBytes(value.1), 10)) \(pad("\(value.0)", 9)) objects  \(key)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
