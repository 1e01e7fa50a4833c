import SwrefGraph
import SwrefSupport

/// The Prometheus text exposition format (version 0.0.4): `# HELP`, `# TYPE`, then one line per
/// series. Label values are escaped as the format says, so a type name with a quote or a backslash
/// cannot break the page.
public struct PrometheusExposition {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public enum Kind: String { case gauge, counter }

    public private(set) var text = ""

    public init() {}

    /// One metric family: its help and type once, then every series given.
    public mutating func add(_ name: String, _ kind: Kind, help: String, _ series: [(labels: [(String, String)], value: Double)]) {
        text += "# HELP \(name) \(PrometheusExposition.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
        for (labels, value) in series {
            text += name
            if !labels.isEmpty {
                text += "{" + labels.map { "\($0.0)=\"\(PrometheusExposition.escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
            }
            text += " " + PrometheusExposition.number(value) + "\n"
        }
    }

    /// A family of one unlabelled series.
    public mutating func add(_ name: String, _ kind: Kind, help: String, _ value: Double) {
        add(name, kind, help: help, [([], value)])
    }

    static func escapeLabel(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// Help text escapes only backslashes and newlines.
    static func escapeHelp(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// Integers exactly, other values as Swift prints a Double (which Prometheus parses).
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 9e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
