import ArgumentParser
import SwrefKit

extension Swref {
    struct Why: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Why is an object alive: the shortest reference paths from roots to it.",
            discussion: """
            QUERY is an address (0x…, any address inside the block), a type name pattern \
            (paths.Session, *Session*), or a path pattern over first-path frames (contains ›). \
            For a type or path, the objects that retain most are shown.
            Examples: swref why 4242 0x55d3564909f0    swref why 4242 'paths.Session'    swref why --core app core 'app.cache*'
            """
        )

        @Argument(help: ArgumentHelp("PID QUERY, or with --core: [EXE] CORE QUERY.", valueName: "target"))
        var arguments: [String]

        @Option(name: .short, help: "Paths per object (one per kind of root first).")
        var k: Int = 5

        @Option(help: "Objects shown for a type or path query.")
        var objects: Int = 3

        @OptionGroup var targetOptions: TargetOptions


        func validate() throws {
            guard arguments.count >= 2 else { throw ValidationError("give PID QUERY, or --core [EXE] CORE QUERY") }
        }

        func run() throws {
            var found = false
            try runReporting {
                let query = arguments.last!
                let progress = ProgressReporter()
                let loaded = try targetOptions.load(Array(arguments.dropLast()), progress: progress)
                let analysis = loaded.analysis
                let paths = analysis.referencePaths(attribution: .firstPathWithRetained, progress: progress)
                progress.finish()
                let table = analysis.objects
                var selected: [Int] = []
                if query.hasPrefix("0x"), let address = UInt64(query.dropFirst(2), radix: 16) {
                    guard let object = table.object(containing: address) else {
                        throw SwrefError.invalidInput("\(query) is not inside an in-use heap block of \(loaded.name)")
                    }
                    selected = [object]
                } else {
                    let byPath = query.contains("›")
                    let matches = (0..<table.count).filter { object in
                        if byPath {
                            let node = paths.attribution.nodeOf[object]
                            return node >= 0 && Suppressions.matches(query, paths.attribution.frames(of: node).joined(separator: " › "))
                        }
                        let name = table.types[Int(table.typeIndices[object])].name
                        return query.contains("*") || query.contains("?") ? Suppressions.matches(query, name) : name == query
                    }
                    guard !matches.isEmpty else { throw SwrefError.invalidInput("no object of \(loaded.name) matches \(query)") }
                    print("\(matches.count) objects match \(query)")
                    let retained = paths.retained
                    selected = Array(matches.sorted {
                        (retained?.retainedBytes(ofObject: $0) ?? table.sizes[$0], $1) > (retained?.retainedBytes(ofObject: $1) ?? table.sizes[$1], $0)
                    }.prefix(objects))
                }
                for object in selected {
                    print(describe(object, analysis: analysis, paths: paths))
                    let routes = WhyAlive.paths(to: object, objects: table, graph: paths.graph, attribution: paths.attribution, limit: k)
                    if routes.isEmpty { print("  no root reaches it: leaked (see swref leaks)") }
                    for (index, route) in routes.enumerated() {
                        let root = paths.attribution.roots[route.root]
                        print("  path \(index + 1) [\(root.kind.rawValue)] \(root.name)")
                        for (depth, step) in route.steps.enumerated() {
                            let via = step.label.isEmpty ? "" : "\(step.label) "
                            print(String(repeating: "  ", count: depth + 2) + "└ \(via)→ \(short(step.object, analysis))")
                        }
                    }
                    print("")
                }
                found = true
            }
            if !found { throw ExitCode(2) }
        }

        private func short(_ object: Int, _ analysis: HeapAnalysis) -> String {
            let table = analysis.objects
            return "\(table.types[Int(table.typeIndices[object])].name) 0x\(String(table.addresses[object], radix: 16)) (\(formatBytes(table.sizes[object])))"
        }

        private func describe(_ object: Int, analysis: HeapAnalysis, paths: ReferencePaths) -> String {
            var text = short(object, analysis)
            if let retained = paths.retained {
                text += ", retains \(formatBytes(retained.retainedBytes(ofObject: object))) in \(retained.retainedCount(ofObject: object)) objects"
            }
            return text
        }
    }
}
