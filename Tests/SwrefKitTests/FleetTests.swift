import Foundation
import SwrefSupport
import XCTest

/// Issue #22: `swref serve` scraped by a real Prometheus and read by `go tool pprof`, and `swref
/// watch` fitting growth, all against testdata/cacheserver (a plain-socket HTTP server whose
/// `mockCache` grows with every request under `--grow`) under real `wrk` load. Figures the tests see
/// are printed on lines starting with `Fleet:`.
final class FleetTests: XCTestCase {
    // MARK: - Processes

    /// testdata/cacheserver, started; its port from its READY line.
    static func cacheServer(grow: Bool) throws -> (program: RunningProgram, port: Int) {
        let program = try RunningProgram(try TestPrograms.binary("cacheserver", .optimized), grow ? ["--grow"] : [])
        guard let port = program.readyNumbers.first else { throw TestFailure("cacheserver: no port in \(program.readyLine)") }
        return (program, port)
    }

    /// `swref serve …` in the background; its port from the line it prints when it listens.
    final class Serve {
        let process = Process()
        let port: Int
        private let errors = Pipe()
        private let collected = Collected()
        final class Collected: @unchecked Sendable {
            let lock = NSLock()
            var text = ""
        }

        init(_ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: try TestPrograms.swrefExecutable())
            process.arguments = ["serve", "--listen", "127.0.0.1:0"] + arguments
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let handle = errors.fileHandleForReading
            let collected = self.collected
            DispatchQueue.global().async {
                while true {
                    let data = handle.availableData
                    if data.isEmpty { break }
                    collected.lock.lock()
                    collected.text += String(decoding: data, as: UTF8.self)
                    collected.lock.unlock()
                }
            }
            let deadline = Date().addingTimeInterval(30)
            var found: Int? = nil
            while found == nil && Date() < deadline && process.isRunning {
                usleep(50_000)
                collected.lock.lock()
                found = Serve.port(in: collected.text)
                collected.lock.unlock()
            }
            guard let found else {
                process.terminate()
                throw TestFailure("swref serve did not start: \(collected.text)")
            }
            port = found
        }

        var stderr: String {
            collected.lock.lock()
            defer { collected.lock.unlock() }
            return collected.text
        }

        static func port(in text: String) -> Int? {
            guard let line = text.split(separator: "\n").first(where: { $0.contains("swref: serving") }),
                  let range = line.range(of: "http://127.0.0.1:") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }

        func stop() {
            if process.isRunning { process.terminate(); process.waitUntilExit() }
        }

        deinit { stop() }
    }

    /// A port free now (the kernel's pick), for Prometheus's own listener.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw TestFailure("no free port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// One GET with optional headers on its own connection: (status, body).
    static func get(_ port: Int, _ path: String, headers: [String: String] = [:]) throws -> (status: Int, body: String) {
        try LoopbackHTTP.request(port: port, path: path, headers: headers)
    }

    /// The value of an unlabelled series, or of `name{label="value"}`, in an exposition page.
    static func metric(_ page: String, _ series: String) -> Double? {
        page.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    // MARK: - Prometheus

    /// /usr/bin/prometheus on loopback with its own storage, scraping one target; killed by `stop`.
    final class Prometheus {
        let process = Process()
        let port: Int
        let directory: URL

        init(target: Int, interval: Int) throws {
            port = try FleetTests.freePort()
            directory = TestPrograms.buildDirectory.appendingPathComponent("prometheus-\(port)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let config = directory.appendingPathComponent("prometheus.yml")
            // The scrape configuration docs/fleet.md gives, with the test's intervals.
            try """
                global:
                  scrape_interval: \(interval)s
                  scrape_timeout: \(interval)s
                scrape_configs:
                  - job_name: swref
                    static_configs:
                      - targets: ['127.0.0.1:\(target)']
                """.write(to: config, atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
            process.arguments = ["--config.file=\(config.path)", "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)",
                                 "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                if let ready = try? FleetTests.get(port, "/-/ready"), ready.status == 200 { return }
                guard process.isRunning else { break }
                usleep(200_000)
            }
            stop()
            throw TestFailure("prometheus did not become ready on \(port)")
        }

        /// `/api/v1/query`: each result's labels and values ((time, value) pairs for a range vector).
        func query(_ promql: String) throws -> [(labels: [String: String], values: [Double])] {
            var allowed = CharacterSet.urlQueryAllowed
            allowed.remove(charactersIn: "+&=[]{}\"")
            let reply = try FleetTests.get(port, "/api/v1/query?query=" + promql.addingPercentEncoding(withAllowedCharacters: allowed)!)
            guard reply.status == 200, let json = try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any],
                  let data = json["data"] as? [String: Any], let results = data["result"] as? [[String: Any]] else {
                throw TestFailure("query \(promql): \(reply)")
            }
            return results.map { result in
                let labels = result["metric"] as? [String: String] ?? [:]
                let pairs = (result["values"] as? [[Any]]) ?? ((result["value"] as? [Any]).map { [$0] } ?? [])
                return (labels, pairs.compactMap { ($0.last as? String).flatMap(Double.init) })
            }
        }

        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        }

        deinit {
            stop()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    // MARK: - Tests

    /// A real Prometheus scrapes `swref serve` on cacheserver --grow under wrk: the growing
    /// retainer's series rises scrape after scrape, the stable one stays flat, and the docs' PromQL
    /// for the fastest-growing retainers names the cache.
    func testPrometheusScrapesServeAndSeesTheCacheGrow() throws {
        let started = Date()
        let (server, port) = try FleetTests.cacheServer(grow: true)
        defer { server.stop() }
        let serve = try Serve(["--pid", "\(server.pid)", "--min-interval", "1s", "--cpu-budget", "100"])
        defer { serve.stop() }
        // A scrape every 5 s (a debug swref's capture of this heap takes a second or two, longer on
        // a loaded machine); one connection adds about 250 entries a second.
        let prometheus = try Prometheus(target: serve.port, interval: 5)
        defer { prometheus.stop() }
        let load = try ServerLoadTests.Load(port: port, connections: 1, seconds: 35)
        while load.isRunning && Date().timeIntervalSince(started) < 120 { usleep(500_000) }
        let report = load.finish()
        XCTAssertGreaterThan(report.requests, 1000, report.text)
        usleep(5_500_000)

        let up = try prometheus.query("up{job=\"swref\"}")
        XCTAssertEqual(up.first?.values.last, 1, "the scrape of swref serve failed: \(up); serve said: \(serve.stderr)")
        let growing = try prometheus.query("swref_retainer_bytes{retainer=\"cacheserver.mockCache\"}[2m]").first?.values ?? []
        let stable = try prometheus.query("swref_retainer_bytes{retainer=\"cacheserver.stableTable\"}[2m]").first?.values ?? []
        print("Fleet: prometheus saw mockCache \(growing.map { Int($0) }), stableTable \(stable.map { Int($0) })")
        XCTAssertGreaterThanOrEqual(growing.count, 4, "scrapes of the growing cache: \(growing); serve said: \(serve.stderr)")
        XCTAssertEqual(growing, growing.sorted(), "the cache only grows")
        XCTAssertGreaterThan((growing.last ?? 0) - (growing.first ?? 0), 1_048_576, "mockCache rose by less than 1 MiB: \(growing)")
        XCTAssertGreaterThanOrEqual(stable.count, 4)
        XCTAssertEqual(stable.min(), stable.max(), "stableTable moved: \(stable)")
        XCTAssertGreaterThan(stable.first ?? 0, 500_000, "stableTable holds 2000 entries of 256 bytes")

        // docs/fleet.md's query, over this test's short window.
        let fastest = try prometheus.query("topk(1, deriv(swref_retainer_bytes[1m]))")
        XCTAssertEqual(fastest.first?.labels["retainer"], "cacheserver.mockCache", "\(fastest)")
        XCTAssertGreaterThan(fastest.first?.values.last ?? 0, 0)
        let coverage = try prometheus.query("swref_heap_coverage{coverage=\"complete\"}")
        XCTAssertEqual(coverage.first?.values.last, 1, "\(coverage)")
        let pause = try prometheus.query("swref_capture_pause_max_seconds")
        XCTAssertGreaterThan(pause.first?.values.last ?? 0, 0, "the pause is reported")
        XCTAssertTrue(serve.process.isRunning, "swref serve exited: \(serve.stderr)")
        print("Fleet: prometheus test took \(Int(Date().timeIntervalSince(started))) s")
    }

    /// `go tool pprof -top` reads the served profile unchanged; a scrape within --min-interval
    /// gets the last capture; beyond loopback a bearer token is required.
    func testGoToolPprofReadsServedProfileAndTokenGuardsRemoteListening() throws {
        let (server, _) = try FleetTests.cacheServer(grow: false)
        defer { server.stop() }
        let serve = try Serve(["--pid", "\(server.pid)", "--min-interval", "1h"])
        defer { serve.stop() }
        let pprofDirectory = TestPrograms.buildDirectory.appendingPathComponent("pprof-\(serve.port)")
        try FileManager.default.createDirectory(at: pprofDirectory, withIntermediateDirectories: true)
        let top = try Shell.run("/usr/bin/env", ["go", "tool", "pprof", "-top", "http://127.0.0.1:\(serve.port)/debug/pprof/heap"],
                                environment: ["PPROF_TMPDIR": pprofDirectory.path], timeout: 180)
        XCTAssertEqual(top.status, 0, top.stderr)
        XCTAssertTrue(top.stdout.contains("rows. (Dictionary<Int, cacheserver.Entry>)"), top.stdout)
        XCTAssertTrue(top.stdout.contains("payload. ([UInt8])"), top.stdout)
        XCTAssertTrue(top.stdout.contains("heap: glibc malloc"), top.stdout)

        let first = try FleetTests.get(serve.port, "/metrics")
        let second = try FleetTests.get(serve.port, "/metrics")
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(FleetTests.metric(second.body, "swref_captures_total"), 1, "one capture within --min-interval: \(second.body)")
        XCTAssertEqual(FleetTests.metric(second.body, "swref_scrapes_from_last_capture_total"), 2, second.body)
        XCTAssertEqual(FleetTests.metric(first.body, "swref_heap_bytes"), FleetTests.metric(second.body, "swref_heap_bytes"))
        XCTAssertEqual(FleetTests.metric(second.body, "swref_retainer_objects{retainer=\"cacheserver.stableTable\"}"), 4002, second.body)
        XCTAssertEqual(try FleetTests.get(serve.port, "/nothing").status, 404)

        // A pause over --max-pause doubles the interval (a budget no capture can meet here: 1 µs).
        let strict = try Serve(["--pid", "\(server.pid)", "--min-interval", "100ms", "--cpu-budget", "100", "--max-pause", "0.000001"])
        defer { strict.stop() }
        var intervals: [Double] = []
        for _ in 0..<3 {
            let page = try FleetTests.get(strict.port, "/metrics").body
            XCTAssertGreaterThan(FleetTests.metric(page, "swref_capture_pause_seconds") ?? 0, 0.000001, page)
            intervals.append(FleetTests.metric(page, "swref_capture_interval_seconds") ?? 0)
            usleep(UInt32(intervals.last! * 1e6) + 50_000)
        }
        // 100 ms × 2, 4, 8 (or longer where a capture's CPU time, at a 100 % budget, is longer still).
        for (index, least) in [0.2, 0.4, 0.8].enumerated() {
            XCTAssertGreaterThanOrEqual(intervals[index], least, "the interval doubles after each pause over the budget: \(intervals)")
        }

        // Beyond loopback: refused without a token file; with one, a request without the token is 401.
        let refused = try Shell.swref(["serve", "--pid", "\(server.pid)", "--listen", "0.0.0.0:0"], timeout: 30)
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("needs --token-file"), refused.stderr)
        let tokenFile = TestPrograms.buildDirectory.appendingPathComponent("token-\(serve.port)").path
        let token = "fleet-test-token-0123456789"
        try token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let guarded = try Serve(["--pid", "\(server.pid)", "--token-file", tokenFile, "--min-interval", "1h"])
        defer { guarded.stop() }
        XCTAssertEqual(try FleetTests.get(guarded.port, "/metrics").status, 401)
        XCTAssertEqual(try FleetTests.get(guarded.port, "/metrics", headers: ["Authorization": "Bearer wrong-token-0123456789x"]).status, 401)
        let allowed = try FleetTests.get(guarded.port, "/metrics", headers: ["Authorization": "Bearer \(token)"])
        XCTAssertEqual(allowed.status, 200)
        XCTAssertEqual(FleetTests.metric(allowed.body, "swref_heap_readable"), 1, allowed.body)
    }

    /// `--match NAME`: before the process exists there are no heap figures (never zeros); it is
    /// found once started, and found again after it restarts under another PID.
    func testServeMatchFindsTheProcessAgainAfterARestart() throws {
        let name = URL(fileURLWithPath: try TestPrograms.binary("cacheserver", .optimized)).lastPathComponent
        let serve = try Serve(["--match", name, "--min-interval", "200ms", "--cpu-budget", "100"])
        defer { serve.stop() }
        let absent = try FleetTests.get(serve.port, "/metrics").body
        XCTAssertEqual(FleetTests.metric(absent, "swref_target_up"), 0, absent)
        XCTAssertEqual(FleetTests.metric(absent, "swref_heap_readable"), 0, absent)
        XCTAssertNil(FleetTests.metric(absent, "swref_heap_bytes"), "no heap figures without a heap: \(absent)")
        XCTAssertFalse(absent.contains("swref_retainer_bytes{"), absent)
        XCTAssertEqual(try FleetTests.get(serve.port, "/debug/pprof/heap").status, 503)

        var pids: [Double] = []
        for _ in 0..<2 {
            let (server, _) = try FleetTests.cacheServer(grow: false)
            usleep(300_000)
            let page = try FleetTests.get(serve.port, "/metrics").body
            XCTAssertEqual(FleetTests.metric(page, "swref_target_pid"), Double(server.pid), page)
            XCTAssertEqual(FleetTests.metric(page, "swref_heap_readable"), 1, page)
            XCTAssertEqual(FleetTests.metric(page, "swref_retainer_objects{retainer=\"cacheserver.stableTable\"}"), 4002, page)
            pids.append(Double(server.pid))
            server.stop()
        }
        XCTAssertNotEqual(pids[0], pids[1])
    }

    /// A sidecar sees the target's files only through /proc/PID/root: the server runs from a tmpfs
    /// mounted in its own mount namespace, invisible to swref's; its globals are still found.
    func testServeReadsATargetInAnotherMountNamespace() throws {
        let binary = try TestPrograms.binary("cacheserver", .optimized)
        let mountPoint = TestPrograms.buildDirectory.appendingPathComponent("other-namespace").path
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let hidden = mountPoint + "/cacheserver"
        let program = try RunningProgram("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c",
                                                              "mount -t tmpfs tmpfs \(mountPoint) && cp \(binary) \(hidden) && exec \(hidden)"])
        defer { program.stop() }
        XCTAssertFalse(FileManager.default.fileExists(atPath: hidden), "the executable is visible outside its namespace")
        XCTAssertEqual(try String(contentsOfFile: "/proc/\(program.pid)/comm", encoding: .utf8), "cacheserver\n")
        let serve = try Serve(["--pid", "\(program.pid)", "--min-interval", "1h"])
        defer { serve.stop() }
        let page = try FleetTests.get(serve.port, "/metrics").body
        XCTAssertEqual(FleetTests.metric(page, "swref_retainer_objects{retainer=\"cacheserver.stableTable\"}"), 4002, page)
        XCTAssertEqual(FleetTests.metric(page, "swref_leaked_objects"), 0, page)
    }

    /// Under an allocator swref cannot walk (a bump allocator preloaded), the figures come from the
    /// Swift header scan: /metrics says the coverage is approximate, never complete.
    func testServeReportsAnApproximateHeapAsApproximate() throws {
        let bump = try TestPrograms.sharedLibrary("allocators", "bump.c")
        let binary = try TestPrograms.binary("allocators", key: "allocators-glibc", flags: [], header: "allocator_stats.h")
        let program = try RunningProgram(binary, [], environment: ["LD_PRELOAD": bump])
        defer { program.stop() }
        let serve = try Serve(["--pid", "\(program.pid)", "--min-interval", "1h"])
        defer { serve.stop() }
        let page = try FleetTests.get(serve.port, "/metrics").body
        XCTAssertEqual(FleetTests.metric(page, "swref_heap_coverage{coverage=\"approximate\"}"), 1, page)
        XCTAssertEqual(FleetTests.metric(page, "swref_heap_coverage{coverage=\"complete\"}"), 0, page)
        XCTAssertEqual(FleetTests.metric(page, "swref_heap_readable"), 1, page)
    }

    /// `swref watch` on cacheserver --grow under wrk names the cache with a positive slope and fails
    /// with --fail-on-growth; the kept profiles compare with `swref diff`.
    func testWatchNamesTheGrowingCacheAndFailsOnGrowth() throws {
        let (server, port) = try FleetTests.cacheServer(grow: true)
        defer { server.stop() }
        let load = try ServerLoadTests.Load(port: port, connections: 2, seconds: 30)
        defer { _ = load.finish() }
        let dir = TestPrograms.buildDirectory.appendingPathComponent("watch-grow").path
        let watch = try Shell.swref(["watch", "\(server.pid)", "--every", "1s", "--count", "6", "--keep", "5", "--dir", dir,
                                     "--fail-on-growth", "50MiB/h"], timeout: 120)
        print("Fleet: watch (growing):\n\(watch.stdout)")
        XCTAssertEqual(watch.status, 1, watch.stderr)
        XCTAssertTrue(load.isRunning, "wrk ended before the watch did")
        let line = watch.stdout.split(separator: "\n").last { $0.contains("cacheserver.mockCache  +") }
        XCTAssertNotNil(line, watch.stdout)
        XCTAssertTrue(line?.contains("over 5 captures (R² ") ?? false, "\(line ?? "")")
        XCTAssertTrue(watch.stdout.contains("watch: GROWTH above +50.0 MiB/h: cacheserver.mockCache +"), watch.stdout)
        XCTAssertFalse(watch.stdout.contains("cacheserver.stableTable  +"), watch.stdout)
        XCTAssertEqual(watch.stderr.components(separatedBy: "swref: capture ").count - 1, 6, watch.stderr)

        let kept = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("swref-") }.sorted()
        XCTAssertEqual(kept.count, 5, "rotation keeps --keep profiles: \(kept)")
        let diff = try Shell.swref(["diff", "\(dir)/\(kept.first!)", "\(dir)/\(kept.last!)"])
        XCTAssertEqual(diff.status, 0, diff.stderr)
        let grew = diff.stdout.components(separatedBy: "paths that grew:").last ?? ""
        XCTAssertTrue(grew.contains("cacheserver.mockCache › entries."), diff.stdout)
    }

    /// The same server without --grow, under the same load: no growth, exit 0.
    func testWatchReportsNoGrowthForAStableServer() throws {
        let (server, port) = try FleetTests.cacheServer(grow: false)
        defer { server.stop() }
        let load = try ServerLoadTests.Load(port: port, connections: 2, seconds: 30)
        defer { _ = load.finish() }
        let dir = TestPrograms.buildDirectory.appendingPathComponent("watch-stable").path
        let watch = try Shell.swref(["watch", "\(server.pid)", "--every", "1s", "--count", "6", "--dir", dir,
                                     "--fail-on-growth", "50MiB/h"], timeout: 120)
        print("Fleet: watch (stable):\n\(watch.stdout)")
        XCTAssertEqual(watch.status, 0, watch.stderr + watch.stdout)
        XCTAssertTrue(load.isRunning, "wrk ended before the watch did")
        let final = watch.stdout.components(separatedBy: "growth over 6 captures").last ?? ""
        XCTAssertTrue(final.contains("retainers: no growth"), watch.stdout)
        XCTAssertTrue(final.contains("types: no growth"), watch.stdout)
        XCTAssertFalse(watch.stdout.contains("GROWTH"), watch.stdout)
    }
}
