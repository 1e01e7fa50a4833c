import ArgumentParser
import Glibc
import SwrefKit

extension Swref {
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A sidecar HTTP server: /metrics for Prometheus, /debug/pprof/heap for go tool pprof.",
            discussion: """
            Captures the target when a scrape comes and the last capture is older than --min-interval \
            (and its CPU budget allows); scrapes in between get the last capture's figures. One capture \
            at a time. Binds to loopback unless --listen says otherwise, which needs --token-file: \
            every request must then carry `Authorization: Bearer TOKEN`. Serves names and figures, \
            never the heap's bytes. See docs/fleet.md.
            """
        )

        @Option(help: "Process ID of the target.")
        var pid: Int32?

        @Option(help: "Find the target by command or executable name instead, again whenever it has gone (a restart).")
        var match: String?

        @Option(help: "Address and port to listen on (port 0: any free one, printed on stderr).")
        var listen: String = "127.0.0.1:6061"

        @Option(help: "File holding the bearer token requests must carry; required to listen beyond loopback.")
        var tokenFile: String?

        @Option(help: "Least time between two captures (start to start): 500ms, 10s, 5m.")
        var minInterval: DurationArgument = DurationArgument(seconds: 30)

        @Option(help: "Most of one core that captures may take on average, in percent: a capture that took C seconds of CPU is followed by none for C / budget.")
        var cpuBudget: Double = 5

        @Option(help: "Longest pause the target should see: after a capture that paused it longer, the interval doubles (up to 64×), and halves back after one within it.")
        var maxPause: DurationArgument?

        @Option(help: "Series per label in /metrics (types, retainers); the rest are summed under <other>.")
        var top: Int = 20

        @OptionGroup var analysisOptions: AnalysisOptions
        @OptionGroup var captureOptions: CaptureOptions

        func validate() throws {
            guard (pid == nil) != (match == nil) else { throw ValidationError("give --pid PID or --match NAME") }
            guard cpuBudget > 0, cpuBudget <= 100 else { throw ValidationError("--cpu-budget is a percentage above 0") }
            guard top >= 1 else { throw ValidationError("--top must be at least 1") }
        }

        func run() throws {
            try runReporting {
                guard let colon = listen.lastIndex(of: ":"), let port = UInt16(listen[listen.index(after: colon)...]) else {
                    throw SwrefError.invalidInput("--listen \(listen): want ADDRESS:PORT")
                }
                let host = String(listen[..<colon])
                var token: String? = nil
                if let tokenFile {
                    let fd = try FileAccess.openRegular(tokenFile)
                    close(fd)
                    token = String(decoding: ProcFS.readBytes(tokenFile) ?? [], as: UTF8.self).split(whereSeparator: \.isWhitespace).first.map(String.init)
                    guard let token, token.count >= 16 else { throw SwrefError.invalidInput("\(tokenFile): want a token of at least 16 characters") }
                }
                guard HTTPServer.isLoopback(host) || token != nil else {
                    throw SwrefError.invalidInput("listening on \(host) (beyond loopback) needs --token-file")
                }
                let server = try HTTPServer(host: host, port: port)
                server.bearerToken = token
                let sidecar = Sidecar(serve: self)
                printError("swref: serving \(pid.map { "PID \($0)" } ?? "the process named \(match!)") on http://\(host):\(server.port) "
                           + "(/metrics, /debug/pprof/heap, /debug/pprof/types); a capture at most every \(minInterval), CPU budget \(cpuBudget)%")
                server.serve { request in sidecar.respond(request) }
            }
        }
    }
}

/// What `serve` keeps between requests: the last capture (or why there is none) and its costs.
final class Sidecar {
    let serve: Swref.Serve
    var pid: Int32?
    var last: TimedCapture?
    var lastGzipped: (paths: [UInt8], types: [UInt8])?
    /// Why the last attempt gave nothing, and whether it was the heap that could not be read.
    var failure: (reason: String, heapUnreadable: Bool)?
    var nextCapture: UInt64 = 0
    /// The interval now enforced, start to start: the minimum, stretched by the CPU budget and the pause backoff.
    var interval: UInt64 = 0
    var pauseBackoff: UInt64 = 1
    var captures = 0, failures = 0, servedFromLast = 0
    var cpuTotal: UInt64 = 0, pauseMax: UInt64 = 0
    var targetUp = false

    init(serve: Swref.Serve) {
        self.serve = serve
        pid = serve.pid
    }

    func respond(_ request: HTTPServer.Request) -> HTTPServer.Response {
        switch request.path {
        case "/metrics":
            refreshIfDue()
            return HTTPServer.Response(status: 200, contentType: PrometheusExposition.contentType, body: Array(metrics().utf8))
        case "/debug/pprof/heap", "/debug/pprof/paths", "/debug/pprof/types":
            refreshIfDue()
            guard let lastGzipped else {
                return .text(503, "no capture: \(failure?.reason ?? "none yet")\n")
            }
            return HTTPServer.Response(status: 200, contentType: "application/octet-stream",
                                       body: request.path == "/debug/pprof/types" ? lastGzipped.types : lastGzipped.paths,
                                       headers: [("Content-Disposition", "attachment; filename=\"swref.pb.gz\"")])
        case "/debug/pprof", "/debug/pprof/":
            return .text(200, """
                swref: the target's heap as gzipped pprof profiles (go tool pprof http://HOST:PORT/debug/pprof/heap)
                /debug/pprof/heap   reference paths from named roots (inuse_space, inuse_objects)
                /debug/pprof/types  one sample per type

                """)
        case "/":
            return .text(200, "swref serve: /metrics, /debug/pprof/\n")
        default:
            return .text(404, "not found\n")
        }
    }

    /// Captures when the interval and the budget allow; otherwise the last capture stands.
    func refreshIfDue() {
        let now = monotonicNanoseconds()
        guard now >= nextCapture else { servedFromLast += 1; return }
        if let match = serve.match, pid.map({ !ProcFS.exists($0) || !ProcessMatch.matches($0, match) }) ?? true {
            pid = ProcessMatch.find(match)
        }
        defer {
            // Start to start: the interval, or longer when the last capture's CPU needs it to stay in budget.
            let cpu = Double(last?.cpuNanoseconds ?? 0) / (serve.cpuBudget / 100)
            if let maxPause = serve.maxPause, let last {
                pauseBackoff = last.pauseNanoseconds > maxPause.nanoseconds ? min(pauseBackoff * 2, 64) : max(pauseBackoff / 2, 1)
            }
            interval = max(serve.minInterval.nanoseconds * pauseBackoff, UInt64(failure == nil ? cpu : 0))
            nextCapture = now + interval
        }
        guard let pid else {
            record(failure: "no process named \(serve.match ?? "?")", heapUnreadable: false, targetUp: false)
            return
        }
        do {
            let capture = try TimedCapture.take(pid: pid, capture: serve.captureOptions, analysis: serve.analysisOptions)
            lastGzipped = (try capture.paths.gzipped(), try capture.types.gzipped())
            last = capture
            failure = nil
            targetUp = true
            captures += 1
            cpuTotal += capture.cpuNanoseconds
            pauseMax = max(pauseMax, capture.pauseNanoseconds)
        } catch let error as SwrefError {
            record(failure: "\(error)", heapUnreadable: error.isHeapUnreadable, targetUp: ProcFS.exists(pid))
        } catch {
            record(failure: "\(error)", heapUnreadable: false, targetUp: ProcFS.exists(pid))
        }
    }

    /// A failed capture drops the last one's figures: stale values must not read as current, and
    /// an unreadable heap must not read as an empty one.
    private func record(failure reason: String, heapUnreadable: Bool, targetUp: Bool) {
        printError("swref: capture failed: \(reason)")
        failure = (reason, heapUnreadable)
        last = nil
        lastGzipped = nil
        failures += 1
        self.targetUp = targetUp
    }

    func metrics() -> String {
        var page = PrometheusExposition()
        page.add("swref_target_up", .gauge, help: "Whether the target process was there at the last capture attempt.", targetUp ? 1 : 0)
        if let pid { page.add("swref_target_pid", .gauge, help: "The target's process ID.", Double(pid)) }
        page.add("swref_heap_readable", .gauge,
                 help: "1 when the last capture read the heap; 0 when it could not (no heap figures are given then, never zeros).",
                 last != nil ? 1 : 0)
        let coverage: String
        switch last?.heap {
        case .complete?: coverage = "complete"
        case .partial?: coverage = "partial"
        case .approximate?: coverage = "approximate"
        case .unread?: coverage = "unread"
        case nil: coverage = failure?.heapUnreadable == true ? "unread" : "none"
        }
        page.add("swref_heap_coverage", .gauge, help: "How much of the heap the last capture read: complete, partial, approximate, unread (1 for the one that holds).",
                 ["complete", "partial", "approximate", "unread", "none"].map { ([("coverage", $0)], $0 == coverage ? 1 : 0) })
        if let last {
            let metrics = last.metrics
            page.add("swref_heap_bytes", .gauge, help: "Bytes in use in the heap (as the allocator counts them).", Double(metrics.bytes))
            page.add("swref_heap_objects", .gauge, help: "Blocks in use in the heap.", Double(metrics.objects))
            let types = HeapMetrics.top(metrics.types, serve.top)
            page.add("swref_type_bytes", .gauge, help: "Bytes in use by type (the largest; the rest under <other>).",
                     types.map { ([("type", $0.name)], Double($0.bytes)) })
            page.add("swref_type_objects", .gauge, help: "Objects in use by type (the same types as swref_type_bytes).",
                     types.map { ([("type", $0.name)], Double($0.objects)) })
            let retainers = HeapMetrics.top(metrics.retainers, serve.top)
            page.add("swref_retainer_bytes", .gauge, help: "Bytes each root retains (dominator attribution: what freeing it would free); the largest, the rest under <other>.",
                     retainers.map { ([("retainer", $0.name)], Double($0.bytes)) })
            page.add("swref_retainer_objects", .gauge, help: "Objects each root retains (the same retainers as swref_retainer_bytes).",
                     retainers.map { ([("retainer", $0.name)], Double($0.objects)) })
            page.add("swref_leaked_objects", .gauge, help: "Objects no root reaches.", Double(metrics.leakedObjects))
            page.add("swref_leaked_bytes", .gauge, help: "Bytes of objects no root reaches.", Double(metrics.leakedBytes))
            page.add("swref_capture_pause_seconds", .gauge, help: "How long the last capture stopped the target.", Double(last.pauseNanoseconds) / 1e9)
            page.add("swref_capture_seconds", .gauge, help: "Wall time of the last capture (copying the target's memory).", Double(last.captureNanoseconds) / 1e9)
            page.add("swref_capture_analysis_seconds", .gauge, help: "Wall time of the last capture's analysis.", Double(last.analysisNanoseconds) / 1e9)
            page.add("swref_capture_cpu_seconds", .gauge, help: "swref's CPU time for the last capture and its analysis.", Double(last.cpuNanoseconds) / 1e9)
            page.add("swref_capture_timestamp_seconds", .gauge, help: "When the last capture was taken (Unix time).", Double(last.timeNanos) / 1e9)
        }
        page.add("swref_capture_pause_max_seconds", .gauge, help: "The longest pause of any capture so far.", Double(pauseMax) / 1e9)
        page.add("swref_capture_cpu_seconds_total", .counter, help: "swref's CPU time for all captures.", Double(cpuTotal) / 1e9)
        page.add("swref_captures_total", .counter, help: "Captures taken.", Double(captures))
        page.add("swref_capture_failures_total", .counter, help: "Captures that failed (target gone, heap unreadable, …).", Double(failures))
        page.add("swref_scrapes_from_last_capture_total", .counter, help: "Requests answered from the last capture (too soon for a new one).", Double(servedFromLast))
        page.add("swref_capture_min_interval_seconds", .gauge, help: "Least time between captures (--min-interval).", serve.minInterval.seconds)
        page.add("swref_capture_interval_seconds", .gauge, help: "Time from the last capture's start to the next one's, as enforced now: --min-interval stretched by the CPU budget and by --max-pause's backoff.",
                 Double(interval) / 1e9)
        if let maxPause = serve.maxPause {
            page.add("swref_capture_max_pause_seconds", .gauge, help: "The pause budget (--max-pause).", maxPause.seconds)
        }
        page.add("swref_capture_cpu_budget_ratio", .gauge, help: "Most of one core captures may take on average (--cpu-budget).", serve.cpuBudget / 100)
        return page.text
    }
}
