import Foundation

/// Reads a profile with the real pprof (`go tool pprof -raw`), not with swref's own code.
struct PprofReader {
    struct Sample {
        var values: [Int64]
        /// Frame names, root first.
        var frames: [String]
        var labels: [String: String]
    }

    var sampleTypes: [String] = []
    var samples: [Sample] = []

    static var isAvailable: Bool { (try? Shell.run("/usr/bin/env", ["go", "version"]).status) == 0 }

    init(path: String) throws {
        let result = try Shell.run("/usr/bin/env", ["go", "tool", "pprof", "-raw", path])
        guard result.status == 0 else { throw TestFailure("go tool pprof -raw failed: \(result.stderr)") }
        try self.init(raw: result.stdout)
    }

    init(raw: String) throws {
        var section = ""
        var pending: [(values: [Int64], ids: [Int], labels: [String: String])] = []
        var locations: [Int: String] = [:]
        for line in raw.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "Samples:" || line == "Locations" || line == "Mappings" { section = String(line); continue }
            switch section {
            case "Samples:":
                if sampleTypes.isEmpty {
                    sampleTypes = line.split(separator: " ").map { String($0.split(separator: "/")[0]) }
                    continue
                }
                if let colon = line.firstIndex(of: ":"), line.trimmingCharacters(in: .whitespaces).first?.isNumber == true {
                    let values = line[..<colon].split(separator: " ").compactMap { Int64($0) }
                    let ids = line[line.index(after: colon)...].split(separator: " ").compactMap { Int($0) }
                    pending.append((values, ids, [:]))
                } else if line.contains(":["), !pending.isEmpty {
                    // "                kind:[class] pinned_bytes:[2048 bytes]"
                    var rest = line.trimmingCharacters(in: .whitespaces)[...]
                    while let open = rest.range(of: ":["), let close = rest[open.upperBound...].firstIndex(of: "]") {
                        let key = rest[..<open.lowerBound].trimmingCharacters(in: .whitespaces)
                        pending[pending.count - 1].labels[key] = String(rest[open.upperBound..<close])
                        rest = rest[rest.index(after: close)...]
                    }
                }
            case "Locations":
                // "     3: 0x0 M=1 census.Node :0 s=0()"
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard let colon = trimmed.firstIndex(of: ":"), let id = Int(trimmed[..<colon]),
                      let start = trimmed.range(of: " M=1 ")?.upperBound ?? trimmed.range(of: "0x0 ")?.upperBound,
                      let end = trimmed.range(of: " :0 s=", options: .backwards)?.lowerBound else { continue }
                locations[id] = String(trimmed[start..<end])
            default:
                continue
            }
        }
        samples = pending.map { entry in
            Sample(values: entry.values, frames: entry.ids.reversed().map { locations[$0] ?? "?" }, labels: entry.labels)
        }
    }

    func total(_ index: Int) -> Int64 { samples.reduce(0) { $0 + $1.values[index] } }
}
