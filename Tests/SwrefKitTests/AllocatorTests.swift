import Foundation
import XCTest

/// One program (testdata/allocators) under every allocator Swift servers run on: glibc, jemalloc
/// linked, linked with a static Swift stdlib (the Vapor and Hummingbird templates' build), linked
/// statically from libjemalloc.a, and preloaded; mimalloc and tcmalloc preloaded; and an allocator
/// swref does not know (testdata/allocators/bump.c). Each must give the same exact class counts, a
/// total within 2% of the allocator's own figure, and the same retain cycles.
final class AllocatorTests: XCTestCase {
    struct Configuration {
        var name: String
        var key: String
        var flags: [String]
        var preload: String?
        /// What the summary's `heap:` line names.
        var allocator: String
    }

    static let libraries = "/usr/lib/x86_64-linux-gnu"
    static let configurations: [Configuration] = [
        .init(name: "glibc", key: "allocators-glibc", flags: [], preload: nil, allocator: "glibc malloc"),
        .init(name: "jemalloc linked", key: "allocators-jemalloc", flags: ["-Xlinker", "-ljemalloc"], preload: nil, allocator: "jemalloc"),
        .init(name: "jemalloc, static Swift stdlib", key: "allocators-jemalloc-static-stdlib",
              flags: ["-static-stdlib", "-Xlinker", "-ljemalloc"], preload: nil, allocator: "jemalloc"),
        .init(name: "jemalloc from libjemalloc.a", key: "allocators-jemalloc-archive",
              flags: ["-Xlinker", "\(libraries)/libjemalloc.a"], preload: nil, allocator: "jemalloc"),
        .init(name: "jemalloc preloaded", key: "allocators-glibc", flags: [], preload: "\(libraries)/libjemalloc.so.2", allocator: "jemalloc"),
        .init(name: "mimalloc preloaded", key: "allocators-glibc", flags: [], preload: "\(libraries)/libmimalloc.so.2", allocator: "mimalloc"),
        .init(name: "tcmalloc preloaded", key: "allocators-glibc", flags: [], preload: "\(libraries)/libtcmalloc_minimal.so.4",
              allocator: "tcmalloc"),
    ]

    /// The program's own classes and how many of each it keeps (Freed: made and dropped by the 100 000).
    static let expectedCounts: [String: Int] = [
        "allocators.Item": 16000, "allocators.Session": 2000, "allocators.Worker": 1000,
        "allocators.CycleA": 40, "allocators.CycleB": 40, "Swift._ContiguousArrayStorage<Swift.UInt8>": 16000,
    ]

    struct Census {
        var counts: [String: Int] = [:]
        var total: Int = 0
        var heap = ""
    }

    static func census(_ text: String) -> Census {
        var census = Census()
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if line.hasPrefix("heap: ") { census.heap = String(line.dropFirst(6)) }
            if fields.count >= 3, fields[2] == "TOTAL", let bytes = Int(fields[1]) { census.total = bytes }
            if fields.count >= 5, let count = Int(fields[0]), Int(fields[1]) != nil {
                census.counts[fields[4...].joined(separator: " ")] = count
            }
        }
        return census
    }

    func program(_ configuration: Configuration) throws -> String {
        try TestPrograms.binary("allocators", key: configuration.key, flags: configuration.flags, header: "allocator_stats.h")
    }

    func start(_ configuration: Configuration, _ arguments: [String] = []) throws -> RunningProgram {
        let environment = configuration.preload.map { ["LD_PRELOAD": $0] }
        return try RunningProgram(try program(configuration), arguments, environment: environment)
    }

    func checkCensus(_ configuration: Configuration, _ text: String, figure: Int?) {
        let census = AllocatorTests.census(text)
        let name = configuration.name
        XCTAssertTrue(census.heap.hasPrefix(configuration.allocator), "\(name): heap line '\(census.heap)'")
        XCTAssertFalse(census.heap.contains("partial") || census.heap.contains("approximate"), "\(name): \(census.heap)")
        for (type, count) in AllocatorTests.expectedCounts {
            XCTAssertEqual(census.counts[type], count, "\(name): \(type)")
        }
        XCTAssertNil(census.counts["allocators.Freed"], "\(name): freed objects counted")
        if let figure, figure > 0 {
            let ratio = Double(census.total) / Double(figure)
            print("AllocatorTests: \(name): heap: \(census.heap); swref \(census.total) B, the allocator \(figure) B, ratio \(ratio)")
            XCTAssertEqual(ratio, 1, accuracy: 0.02, "\(name): swref \(census.total) B, the allocator \(figure) B")
        }
    }

    func testEveryAllocatorGivesTheSameExactCensusAndCycles() throws {
        for configuration in AllocatorTests.configurations {
            let running = try start(configuration)
            defer { running.stop() }
            let parts = running.readyLine.split(separator: " ")
            let figure = parts.count >= 3 ? Int(parts[2]) : nil
            let attach = try Shell.swref(["attach", "\(running.pid)", "--format", "text", "--limit", "100"])
            XCTAssertEqual(attach.status, 0, "\(configuration.name): \(attach.stderr)")
            checkCensus(configuration, attach.stdout, figure: figure)
            let leaks = try Shell.swref(["leaks", "\(running.pid)"])
            XCTAssertEqual(leaks.status, 1, "\(configuration.name): \(leaks.stdout) \(leaks.stderr)")
            XCTAssertTrue(leaks.stdout.contains("40 × ROOT CYCLE: allocators.CycleA.other → allocators.CycleB.other → allocators.CycleA"),
                          "\(configuration.name): \(leaks.stdout)")
            XCTAssertTrue(leaks.stdout.contains(configuration.allocator), "\(configuration.name): \(leaks.stdout)")
        }
    }

    /// testdata/jemalloc: 8-byte blocks two to a 16-byte granule beside the objects, and freed
    /// objects parked in live threads' tcaches (they must not count): exact counts, no false leak.
    func testEightByteBlocksAndParkedTcachesUnderJemalloc() throws {
        let binary = try TestPrograms.binary("jemalloc", key: "jemalloc-linked", flags: ["-Xlinker", "-ljemalloc"], header: "../mallinfo.h")
        let running = try RunningProgram(binary, ["1000"])
        defer { running.stop() }
        let attach = try Shell.swref(["attach", "\(running.pid)", "--format", "text", "--limit", "100"])
        XCTAssertEqual(attach.status, 0, attach.stderr)
        let census = AllocatorTests.census(attach.stdout)
        XCTAssertTrue(census.heap.hasPrefix("jemalloc"), census.heap)
        XCTAssertEqual(census.counts["jemalloc.Node"], 1000)
        XCTAssertEqual(census.counts["jemalloc.Parked"], 200, "the freed half sits in the threads' tcaches")
        let leaks = try Shell.swref(["leaks", "\(running.pid)"])
        XCTAssertEqual(leaks.status, 0, leaks.stdout + leaks.stderr)
    }

    /// The Hummingbird template's build, read from a core instead of the live process.
    func testJemallocCoreGivesTheSameCensus() throws {
        let configuration = AllocatorTests.configurations[2]
        let running = try start(configuration)
        defer { running.stop() }
        let core = TestPrograms.buildDirectory.appendingPathComponent("allocators-jemalloc.core").path
        let dump = try Shell.swref(["dump", "\(running.pid)", "-o", core])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let read = try Shell.swref(["core", core, "--format", "text", "--limit", "100"])
        XCTAssertEqual(read.status, 0, read.stderr)
        checkCensus(configuration, read.stdout, figure: nil)
        try? FileManager.default.removeItem(atPath: core)
    }

    /// `swref run --fail-on-leaks` fails a leaking jemalloc program (1) and passes a clean one (0).
    func testRunJudgesJemallocPrograms() throws {
        let binary = try program(AllocatorTests.configurations[2])
        let leaking = try Shell.swref(["run", "--fail-on-leaks", "--", binary, "200", "exit"])
        XCTAssertEqual(leaking.status, 1, leaking.stderr)
        XCTAssertTrue(leaking.stderr.contains("ROOT CYCLE: allocators.CycleA"), leaking.stderr)
        let clean = try Shell.swref(["run", "--fail-on-leaks", "--", binary, "200", "exit", "clean"])
        XCTAssertEqual(clean.status, 0, clean.stderr)
        XCTAssertTrue(clean.stderr.contains("no leaks (jemalloc"), clean.stderr)
    }

    /// An allocator swref does not know: Swift objects are found by their headers, counted exactly,
    /// and the output says the census is approximate; a clean verdict is never given (125).
    func testUnknownAllocatorIsApproximateAndNeverClean() throws {
        let bump = try TestPrograms.sharedLibrary("allocators", "bump.c")
        let configuration = Configuration(name: "bump", key: "allocators-glibc", flags: [], preload: bump, allocator: "no allocator walk")
        let running = try start(configuration)
        defer { running.stop() }
        let attach = try Shell.swref(["attach", "\(running.pid)", "--format", "text", "--limit", "100"])
        XCTAssertEqual(attach.status, 0, attach.stderr)
        let census = AllocatorTests.census(attach.stdout)
        XCTAssertTrue(census.heap.contains("approximate"), census.heap)
        // The program's own classes exactly. A freed block keeps its header under this allocator, and
        // the runtime frees some storage without marking it deinited (a temporary [UInt8] seen once
        // in CI): the header scan is approximate there, as it says.
        for (type, count) in AllocatorTests.expectedCounts {
            if type.hasPrefix("allocators.") {
                XCTAssertEqual(census.counts[type], count, "bump: \(type)")
            } else {
                XCTAssertTrue((count...(count + 16)).contains(census.counts[type] ?? 0), "bump: \(type): \(census.counts[type] ?? 0)")
            }
        }
        XCTAssertNil(census.counts["allocators.Freed"], "freed objects counted")

        let binary = try program(configuration)
        let clean = try Shell.swref(["run", "--fail-on-leaks", "--", "/usr/bin/env", "LD_PRELOAD=\(bump)", binary, "200", "exit", "clean"])
        XCTAssertEqual(clean.status, 125, "never a clean verdict from a heap read by headers: \(clean.stderr)")
        XCTAssertTrue(clean.stderr.contains("approximately"), clean.stderr)
        let leaking = try Shell.swref(["run", "--fail-on-leaks", "--", "/usr/bin/env", "LD_PRELOAD=\(bump)", binary, "200", "exit"])
        XCTAssertEqual(leaking.status, 1, leaking.stderr)
    }
}
