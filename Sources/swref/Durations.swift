import ArgumentParser
import SwrefKit

/// A duration on the command line: `500ms`, `10s`, `5m`, `1h`, or plain seconds (`2.5`).
struct DurationArgument: ExpressibleByArgument, CustomStringConvertible {
    var seconds: Double

    init(seconds: Double) { self.seconds = seconds }

    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("", 1)]
        for (suffix, scale) in units where argument.hasSuffix(suffix) {
            guard let value = Double(argument.dropLast(suffix.count)), value >= 0, value.isFinite else { return nil }
            seconds = value * scale
            return
        }
        return nil
    }

    var nanoseconds: UInt64 { UInt64(seconds * 1e9) }
    var description: String { seconds < 1 ? "\(Int((seconds * 1000).rounded()))ms" : "\(seconds)s" }
    var defaultValueDescription: String { description }
}

/// A growth rate on the command line: `10MiB/h`, `200KiB/min`, `4096B/s`.
struct RateArgument: ExpressibleByArgument {
    var bytesPerHour: Double

    init?(argument: String) {
        guard let value = GrowthFit.parseRate(argument) else { return nil }
        bytesPerHour = value
    }
}
