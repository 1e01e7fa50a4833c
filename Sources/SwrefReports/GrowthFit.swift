import SwrefGraph
import SwrefSupport

/// Growth over time: a least-squares line through (time, bytes) per retainer and per type, its slope
/// in bytes per hour and R² (how much of the variation the line explains: near 1 for steady growth,
/// near 0 for noise). The basis of `swref watch` and `--fail-on-growth`.
public struct GrowthFit {
    public struct Line: Equatable {
        public var key: String
        /// Bytes per hour.
        public var slope: Double
        /// 1 for a perfectly straight series, 0 when the line explains nothing; 0 for a flat one.
        public var rSquared: Double
        public var points: Int
        public var firstBytes: Int64
        public var lastBytes: Int64
    }

    /// The least-squares line through `points` (seconds, bytes); nil with fewer than two distinct times.
    public static func fit(_ points: [(seconds: Double, bytes: Double)]) -> (slopePerSecond: Double, rSquared: Double)? {
        let n = Double(points.count)
        guard points.count >= 2 else { return nil }
        let meanX = points.reduce(0) { $0 + $1.seconds } / n, meanY = points.reduce(0) { $0 + $1.bytes } / n
        var sxx = 0.0, sxy = 0.0, syy = 0.0
        for point in points {
            let dx = point.seconds - meanX, dy = point.bytes - meanY
            sxx += dx * dx
            sxy += dx * dy
            syy += dy * dy
        }
        guard sxx > 0 else { return nil }
        let slope = sxy / sxx
        return (slope, syy > 0 ? (sxy * sxy) / (sxx * syy) : 0)
    }

    public var retainers: [Line] = []
    public var types: [Line] = []
    public var captures: Int
    public var seconds: Double

    /// `captures`: each capture's time (seconds, any origin) and metrics, oldest first. A key missing
    /// from a capture held nothing then (a profile lists everything it found).
    public init(_ captures: [(seconds: Double, metrics: HeapMetrics)]) {
        self.captures = captures.count
        seconds = (captures.last?.seconds ?? 0) - (captures.first?.seconds ?? 0)
        func lines(_ rows: (HeapMetrics) -> [HeapMetrics.Row]) -> [Line] {
            var series: [String: [Double]] = [:]
            for (index, capture) in captures.enumerated() {
                for row in rows(capture.metrics) {
                    series[row.name, default: [Double](repeating: 0, count: captures.count)][index] = Double(row.bytes)
                }
            }
            return series.compactMap { key, values in
                let points = zip(captures, values).map { (seconds: $0.0.seconds, bytes: $0.1) }
                guard let (slope, r2) = GrowthFit.fit(points) else { return nil }
                return Line(key: key, slope: slope * 3600, rSquared: r2, points: values.count,
                            firstBytes: Int64(values.first ?? 0), lastBytes: Int64(values.last ?? 0))
            }.sorted { ($0.slope, $1.key) > ($1.slope, $0.key) }
        }
        retainers = lines(\.retainers)
        types = lines(\.types)
    }

    /// Lines growing at least `rate` bytes/hour with R² at least `minFit`: what counts as growth.
    public static func growing(_ lines: [Line], rate: Double, minFit: Double) -> [Line] {
        lines.filter { $0.slope > 0 && $0.slope >= rate && $0.rSquared >= minFit }
    }

    /// `app.mockCache  +12.3 MiB/h over 6 captures (R² 0.98)`
    public static func describe(_ line: Line, width: Int = 0) -> String {
        let padded = line.key.count >= width ? line.key : line.key + String(repeating: " ", count: width - line.key.count)
        return "\(padded)  \(formatRate(line.slope)) over \(line.points) captures (R² \(String(format2: line.rSquared)))"
    }

    /// `+12.3 MiB/h`, `-512 B/h`
    public static func formatRate(_ bytesPerHour: Double) -> String {
        let magnitude = abs(bytesPerHour)
        return (bytesPerHour < 0 ? "-" : "+") + formatBytes(UInt64(magnitude.isFinite ? min(magnitude, 9e18) : 0)) + "/h"
    }

    /// A rate as given on the command line: `10MiB/h`, `1.5 GiB/h`, `200KiB/min`, `4096B/s`, `1e6/h`
    /// (bytes, units of 1024, per s, min or h); returns bytes per hour.
    public static func parseRate(_ text: String) -> Double? {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let per: Double
        switch parts[1].lowercased() {
        case "s", "sec": per = 3600
        case "m", "min": per = 60
        case "h", "hour": per = 1
        default: return nil
        }
        let amount = parts[0].filter { $0 != " " }
        let units: [(String, Double)] = [("TiB", 1_099_511_627_776), ("GiB", 1_073_741_824), ("MiB", 1_048_576), ("KiB", 1024), ("B", 1), ("", 1)]
        for (suffix, scale) in units where amount.hasSuffix(suffix) {
            guard let value = Double(amount.dropLast(suffix.count)), value >= 0 else { return nil }
            return value * scale * per
        }
        return nil
    }
}

extension String {
    /// Two decimal places, without Foundation.
    init(format2 value: Double) {
        let hundredths = Int((value * 100).rounded())
        let fraction = abs(hundredths % 100)
        self = "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
