import Foundation
import SwrefSupport
import XCTest

/// The Vapor 4 app of testdata/servers (VaporApp: HBApp's routes on Vapor 4.122.3), debug build on
/// glibc malloc, under `wrk`: every capture method, the census, leaks, top, why, dump and core while
/// it serves; at a quiet moment the cache on its path, the leak verdict and the total against
/// mallinfo2().
extension ServerLoadTests {
    func testVaporDebugGlibcUnderLoad() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else { throw XCTSkip("wrk is not installed") }
        let binary = try ServerLoadTests.binaries(.debugGlibc).appendingPathComponent("VaporApp").path
        let server = try RunningProgram(binary, ["0"], environment: ServerLoadTests.noTcache)
        defer { server.stop() }
        let port = server.readyNumbers[0]
        let name = "vapor-debug-glibc"
        XCTAssertEqual(try ServerLoadTests.http(port, "/").body, "hello\n")
        XCTAssertEqual(try ServerLoadTests.mallocFigure(port).allocator, "glibc")

        // The cache: 1000 keys of 8000-byte bodies, POSTed by wrk, as for Hummingbird.
        let keys = 1000, size = 8000
        try fillCache(port: port, keys: keys, size: size)

        var steps: [Step] = []
        let load = try Load(port: port, connections: 20, seconds: 90)
        usleep(500_000)
        for capture in ["precopy", "fork", "fork-in-place", "precopy-to-disk", "stop-the-world"] {
            let out = profilePath("\(name)-\(capture)")
            try step {
                try swref(["attach", "\(server.pid)", "-o", out, "--capture", capture], load: load, steps: &steps)
                let profile = try readProfile(out)
                print("ServerLoad: \(name) \(capture): \(profile.samples.count) samples, total \(profile.total(1)) B")
                XCTAssertTrue(profile.samples.contains { $0.frames.first == "VaporApp.responseCache" }, "no sample under VaporApp.responseCache")
            }
        }
        let text = try swref(["attach", "\(server.pid)", "--format", "text", "--limit", "40"], load: load, steps: &steps)
        let census = ServerLoadTests.census(text.stdout)
        print("ServerLoad: \(name) census under load: heap: \(census.heap); total \(census.total) B")
        XCTAssertTrue(census.heap.hasPrefix("glibc malloc"), census.heap)
        XCTAssertFalse(census.heap.contains("partial") || census.heap.contains("approximate"), census.heap)
        var results: [String: Shell.Result] = [:]
        for command in [["leaks", "\(server.pid)"], ["top", "\(server.pid)"], ["why", "\(server.pid)", "ServerCache.ResponseCache"]] {
            results[command[0]] = try swref(command, load: load, steps: &steps, allowed: [0, 1])
        }
        let core = TestPrograms.buildDirectory.appendingPathComponent("\(name).core").path
        try swref(["dump", "\(server.pid)", "-o", core], load: load, steps: &steps)
        let fromCore = try swref(["core", core, "--format", "text", "--limit", "40"], load: nil, steps: &steps)
        try? FileManager.default.removeItem(atPath: core)
        finishLoad(load, name: name)
        XCTAssertTrue(steps.filter { $0.command.hasPrefix("attach") }.allSatisfy(\.duringLoad),
                      "wrk ended before the attaches: \(steps.map { ($0.command, $0.duringLoad) })")

        // Still serving, the cache intact, and the cache's dictionary among the types of both the
        // live census and the core's.
        XCTAssertEqual(try ServerLoadTests.http(port, "/").body, "hello\n")
        XCTAssertEqual(try ServerLoadTests.http(port, "/cache").body, "\(keys) \(keys * size)\n")
        let dictionary = "Swift._DictionaryStorage<Swift.String, NIOCore.ByteBuffer>"
        XCTAssertTrue(text.stdout.contains(dictionary), text.stdout)
        XCTAssertTrue(fromCore.stdout.contains(dictionary), fromCore.stdout)
        if let why = results["why"] { XCTAssertTrue(why.stdout.contains("[global] VaporApp.responseCache"), why.stdout) }
        if let leaks = results["leaks"] {
            print("ServerLoad: \(name) leaks under load (exit \(leaks.status)):\n\(leaks.stdout.prefix(3000))")
        }

        // At a quiet moment: no leak in a clean framework.
        let quietLeaks = try swref(["leaks", "\(server.pid)"], load: nil, steps: &steps, allowed: [0, 1])
        print("ServerLoad: \(name) leaks at a quiet moment (exit \(quietLeaks.status)):\n\(quietLeaks.stdout.prefix(3000))")
        XCTAssertEqual(quietLeaks.status, 0, quietLeaks.stdout)

        // The cached bodies on their path, and the total within 2 % of mallinfo2().
        try step {
            let profile = try compareWithAllocator(name: name, pid: server.pid, port: port)
            let cached = profile.samples.filter {
                $0.frames.first == "VaporApp.responseCache" && ($0.frames.last ?? "").contains("ByteBuffer (NIOCore)")
            }
            let bytes = cached.reduce(0) { $0 + $1.values[1] }
            print("ServerLoad: \(name) quiet: \(cached.count) cache samples ending in ByteBuffer, \(bytes) B")
            XCTAssertGreaterThan(cached.count, 0, "no ByteBuffer under VaporApp.responseCache")
            XCTAssertGreaterThanOrEqual(bytes, Int64(keys * size), "the cache holds \(keys) × \(size) B")
        }
    }
}
