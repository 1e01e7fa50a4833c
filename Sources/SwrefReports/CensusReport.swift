import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// The census as a pprof profile and as a text table.
public enum CensusReport {
    /// One sample per type; blocks that are not Swift objects sit in the visible `<malloc>` bucket
    /// so that the totals equal what malloc has in use.
    public static func profile(_ census: HeapCensus, comments: [String] = []) -> PprofProfile {
        var profile = PprofProfile()
        profile.comments = comments
        for row in census.rows {
            profile.samples.append(.init(frames: [row.type], values: [Int64(row.count), Int64(row.bytes)],
                                         labels: ["kind": row.kind.rawValue]))
        }
        return profile
    }

    /// A table like macOS `heap`: largest first, with totals.
    public static func text(_ census: HeapCensus, limit: Int? = nil, heap: String? = nil, notes: [String] = []) -> String {
        var lines: [String] = []
        let header = [pad("COUNT", 10), pad("BYTES", 14), pad("AVG", 10), pad("KIND", 8), " TYPE"]
        lines.append(header.joined())
        let rows = limit.map { Array(census.rows.prefix($0)) } ?? census.rows
        for row in rows {
            let average = row.count > 0 ? row.bytes / UInt64(row.count) : 0
            lines.append([pad("\(row.count)", 10), pad("\(row.bytes)", 14), pad("\(average)", 10),
                          pad(row.kind.rawValue, 8), " \(row.type)"].joined())
        }
        if rows.count < census.rows.count {
            lines.append("  … \(census.rows.count - rows.count) more types")
        }
        lines.append([pad("\(census.totalCount)", 10), pad("\(census.totalBytes)", 14), pad("", 10), pad("", 8),
                      " TOTAL (\(formatBytes(census.totalBytes)); \(census.swiftCount) Swift objects)"].joined())
        if let heap { lines.append("heap: \(heap)") }
        for note in notes { lines.append("note: \(note)") }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? " " + text : String(repeating: " ", count: width - text.count) + text
    }
}
