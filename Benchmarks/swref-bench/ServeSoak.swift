import ArgumentParser
import Foundation
import SwrefKit

/// `--serve-soak`: what `swref serve` costs the target over time — a scrape every `every` seconds
/// for `seconds`, each one a capture (--min-interval just under the scrape interval), on the
/// benchmark target. Per capture: the pause swref reports and the longest heartbeat gap the
/// target saw (and, for comparison, the longest between scrapes), swref's CPU time, the analysis
/// time; and swref's resident memory as it goes.
struct ServeSoak {
    var swref: String
    var every: Double
    var seconds: Double

    func run(target: BenchTarget) throws {
        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: swref)
        serve.arguments = ["serve", "--pid", "\(target.pid)", "--listen", "127.0.0.1:0",
                           "--min-interval", "\(max(every - 1, 0.5))s", "--cpu-budget", "100"]
        let errors = Pipe()
        serve.standardError = errors
        serve.standardOutput = FileHandle.nullDevice
        try serve.run()
        defer { if serve.isRunning { serve.terminate(); serve.waitUntilExit() } }
        var firstLine = ""
        let handle = errors.fileHandleForReading
        while !firstLine.contains("\n") {
            let data = handle.availableData
            if data.isEmpty { break }
            firstLine += String(decoding: data, as: UTF8.self)
        }
        guard let portText = firstLine.range(of: "http://127.0.0.1:").map({ firstLine[$0.upperBound...].prefix { $0.isNumber } }),
              let port = Int(portText) else { throw ValidationError("swref serve did not start: \(firstLine)") }
        // Whatever serve prints later (failed captures) must not fill the pipe.
        DispatchQueue.global().async { while !handle.availableData.isEmpty {} }

        var pauses: [Double] = [], gaps: [Double] = [], idleGaps: [Double] = [], cpu: [Double] = [], analysis: [Double] = [], rss: [Double] = []
        var lastTotal = 0.0, failures = 0.0
        let start = Date()
        var next = start
        while Date().timeIntervalSince(start) < seconds {
            // The heartbeat's longest gap since the last scrape, swref idle: the machine's own noise.
            let idle = target.takeMaxGap()
            let page = try httpGet(port: port, path: "/metrics")
            usleep(20_000)
            let gap = target.takeMaxGap()
            func value(_ name: String) -> Double? {
                page.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
            }
            failures = value("swref_capture_failures_total") ?? failures
            if let total = value("swref_captures_total"), total > lastTotal {
                lastTotal = total
                pauses.append(value("swref_capture_pause_seconds") ?? 0)
                cpu.append(value("swref_capture_cpu_seconds") ?? 0)
                analysis.append(value("swref_capture_analysis_seconds") ?? 0)
                gaps.append(gap)
                if total > 1 { idleGaps.append(idle) }
                rss.append(Double(ProcFS.statusBytes(serve.processIdentifier, "VmRSS")))
                print("  capture \(Int(total)): pause \(ms(pauses.last!)), heartbeat gap \(ms(gap)), swref CPU \(String(format: "%.2f", cpu.last!)) s, analysis \(String(format: "%.2f", analysis.last!)) s, swref RSS \(formatBytes(UInt64(rss.last!)))")
            }
            next += every
            let wait = next.timeIntervalSinceNow
            if wait > 0 { usleep(UInt32(wait * 1e6)) } else { next = Date() }
        }
        let elapsed = Date().timeIntervalSince(start)
        let peak = Double(ProcFS.statusBytes(serve.processIdentifier, "VmHWM"))
        print("serve soak: \(pauses.count) captures in \(Int(elapsed)) s (a scrape every \(every) s), \(Int(failures)) failed")
        print("  pause (swref):          median \(ms(median(pauses))), max \(ms(pauses.max() ?? 0))")
        print("  heartbeat gap (target): median \(ms(median(gaps))), max \(ms(gaps.max() ?? 0)); between scrapes, swref idle: median \(ms(median(idleGaps))), max \(ms(idleGaps.max() ?? 0))")
        print("  swref CPU per capture:  median \(String(format: "%.2f", median(cpu))) s, max \(String(format: "%.2f", cpu.max() ?? 0)) s (\(String(format: "%.1f", cpu.reduce(0, +) / elapsed * 100))% of one core over the soak)")
        print("  analysis per capture:   median \(String(format: "%.2f", median(analysis))) s")
        print("  swref RSS after capture: first \(formatBytes(UInt64(rss.first ?? 0))), last \(formatBytes(UInt64(rss.last ?? 0))), peak \(formatBytes(UInt64(peak)))")
    }

    private func ms(_ seconds: Double) -> String { String(format: "%.1f ms", seconds * 1000) }
}

/// One GET on its own connection; the body.
func httpGet(port: Int, path: String) throws -> String {
    try LoopbackHTTP.request(port: port, path: path, timeoutSeconds: 300).body
}
