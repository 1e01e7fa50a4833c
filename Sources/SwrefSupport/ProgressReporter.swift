import Glibc

/// A single progress line on stderr, redrawn in place; silent when stderr is not a terminal.
public final class ProgressReporter {
    public enum Unit { case bytes, items }
    private let enabled: Bool
    private var lastDraw: UInt64 = 0
    private var drawn = false

    public init(enabled: Bool = isatty(2) != 0) { self.enabled = enabled }

    public func update(_ phase: String, done: UInt64, total: UInt64, unit: Unit) {
        guard enabled else { return }
        let now = monotonicNanoseconds()
        guard done == total || now - lastDraw > 100_000_000 else { return }
        lastDraw = now
        let amount = unit == .bytes ? "\(formatBytes(done)) / \(formatBytes(total))" : "\(done) / \(total)"
        let percent = total > 0 ? " (\(done * 100 / total)%)" : ""
        write("\r\u{1B}[Kswref: \(phase) \(amount)\(percent)")
        drawn = true
    }

    public func finish() {
        guard enabled, drawn else { return }
        write("\r\u{1B}[K")
        drawn = false
    }

    private func write(_ text: String) {
        var text = text
        text.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

/// Bytes as a short human figure: 512 B, 1.5 KiB, 12.0 MiB.
public func formatBytes<T: BinaryInteger>(_ value: T) -> String {
    let v = Double(value)
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var scaled = v
    var unit = 0
    while abs(scaled) >= 1024 && unit < units.count - 1 { scaled /= 1024; unit += 1 }
    if unit == 0 { return "\(value) B" }
    return String(format1: scaled) + " " + units[unit]
}

extension String {
    /// One decimal place, without Foundation.
    public init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
