import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// Known leaks and known growth to ignore, in the spirit of LeakSanitizer's suppression files:
///
///     # a comment
///     leak:MyModule.Cache          (a leak whose shape or types match)
///     type:*.Delegate              (same as leak:)
///     path:app.registry*           (growth under matching frames, for `swref check`/`diff`)
///
/// Patterns use `*` and `?` and match anywhere in the text (as if surrounded by `*`).
public struct Suppressions {
    public var leakPatterns: [String] = []
    public var pathPatterns: [String] = []

    public init() {}

    public init(text: String) throws {
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: " \t\r")
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw SwrefError.invalidInput("suppressions line \(number + 1): expected leak:, type: or path:, got \"\(line)\"")
            }
            let kind = line[..<colon], pattern = String(line[line.index(after: colon)...]).trimmingCharacters(in: " ")
            guard !pattern.isEmpty else { throw SwrefError.invalidInput("suppressions line \(number + 1): empty pattern") }
            switch kind {
            case "leak", "type": leakPatterns.append(pattern)
            case "path": pathPatterns.append(pattern)
            default: throw SwrefError.invalidInput("suppressions line \(number + 1): unknown kind \"\(kind)\" (use leak:, type: or path:)")
            }
        }
    }

    /// The first leak pattern matching any of `texts`.
    public func leakPattern(matching texts: [String]) -> String? {
        leakPatterns.first { pattern in texts.contains { Suppressions.matches(pattern, $0) } }
    }

    public func pathPattern(matching frames: [String]) -> String? {
        pathPatterns.first { pattern in frames.contains { Suppressions.matches(pattern, $0) } }
    }

    /// Glob match of `*pattern*` against `text`.
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(("*" + pattern + "*").utf8), t = Array(text.utf8)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == t[ti]) { pi += 1; ti += 1 }
            else if pi < p.count && p[pi] == UInt8(ascii: "*") { star = pi; mark = ti; pi += 1 }
            else if star >= 0 { pi = star + 1; mark += 1; ti = mark }
            else { return false }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
