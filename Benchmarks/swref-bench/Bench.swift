import ArgumentParser
import Foundation
import SwrefKit

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swref-bench",
        abstract: "Measure swref on a generated heap: pause, copy floor, gcore, time, throughput, peak memory.",
        discussion: """
        Builds testdata/bench (a Dictionary of class instances with a heartbeat thread), starts it \
        with the requested heap, and for each run measures the time to copy the target's writable \
        memory (the floor), `swref attach` (as a child process: wall time, peak RSS, the pause the \
        target's heartbeat observed) and `gcore`. Prints medians and ratios from the same run.
        """
    )

    @Option(help: "Number of Record objects in the target's dictionary (each with a payload array: two blocks).")
    var objects: Int = 5_000_000

    @Option(help: "Bytes of [UInt8] payload per record (0: none). The default makes about 1 GiB in 10 million blocks.")
    var payload: Int = 80

    @Option(help: "Runs per measurement; medians are printed.")
    var runs: Int = 3

    @Flag(help: "The target keeps replacing records while it is captured.")
    var write = false

    @Flag(help: "Skip the gcore comparison.")
    var noGcore = false

    @Option(help: "The benchmark program's source.")
    var source: String = "testdata/bench/main.swift"

    @Option(help: "The swref to measure (default: the one built beside this program).")
    var swref: String?

    @Flag(help: "Instead: run `swref serve` on the target and scrape it every --soak-every seconds for --soak-seconds; report pauses, heartbeat gaps, CPU per capture.")
    var serveSoak = false

    @Option(help: "With --serve-soak: seconds between scrapes (each one a capture).")
    var soakEvery: Double = 10

    @Option(help: "With --serve-soak: how long to soak, in seconds.")
    var soakSeconds: Double = 600

    @Option(help: "Capture methods to measure, comma-separated: stop-the-world, precopy, precopy-to-disk (the pre-copy written to an unlinked file and read back as the analysis goes: swref's memory follows the objects, not the bytes), fork, fork-in-place (a fork read the same way). gcore and the copy floor run with stop-the-world; the phases and the scheduling-noise row with precopy, or the first method when precopy is not measured.")
    var captures: String = "stop-the-world,precopy,fork"

    @Option(help: "Allocators to build the target with, measured one after the other in this run: glibc, jemalloc (linked with -ljemalloc, as the Vapor and Hummingbird templates build servers), comma-separated.")
    var allocators: String = "glibc"

    /// What the comparison between allocators needs from one allocator's measurements.
    struct Summary {
        var allocator: String
        var analysisRate: Double
        var pause: Double
    }

    func run() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("swref-bench-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        var summaries: [Summary] = []
        for allocator in allocators.split(separator: ",").map(String.init) {
            let flags: [String]
            switch allocator {
            case "glibc": flags = []
            case "jemalloc": flags = ["-Xlinker", "-ljemalloc"]
            default: throw ValidationError("unknown allocator \(allocator): glibc or jemalloc")
            }
            let binary = work.appendingPathComponent("bench-\(allocator)").path
            let compile = try runProcess("/usr/bin/env", ["swiftc", "-O", "-module-name", "bench", source, "-o", binary] + flags)
            guard compile.status == 0 else { throw ValidationError("could not build \(source): \(compile.stderr)") }
            if serveSoak {
                let target = try BenchTarget(binary: binary, arguments: ["\(objects)", "\(payload)"] + (write ? ["--write"] : []))
                defer { target.stop() }
                print("target (\(allocator)): \(objects) records, payload \(payload) B, resident \(formatBytes(target.residentBytes))\(write ? ", writing" : "")")
                try ServeSoak(swref: swrefPath(), every: soakEvery, seconds: soakSeconds).run(target: target)
                continue
            }
            summaries.append(try measure(binary: binary, allocator: allocator, work: work))
        }
        if let base = summaries.first, summaries.count > 1 {
            print("allocators compared (same run, medians):")
            for other in summaries {
                print("  \(other.allocator): analysis \(Int(other.analysisRate)) objects/s (\(ratio(base.analysisRate, other.analysisRate)) \(base.allocator)'s time), pause \(ms(other.pause)) (\(ratio(other.pause, base.pause)) \(base.allocator)'s)")
            }
        }
    }

    /// The swref measured: a program of its own, so that it does not load Foundation, which only this uses.
    func swrefPath() throws -> String {
        let path = swref ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("swref").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError("no swref at \(path): build it (swift build -c release) or pass --swref PATH")
        }
        return path
    }

    /// Starts the target and measures swref on it; prints the figures, returns what the comparison needs.
    func measure(binary: String, allocator: String, work: URL) throws -> Summary {
        let target = try BenchTarget(binary: binary, arguments: ["\(objects)", "\(payload)"] + (write ? ["--write"] : []))
        defer { target.stop() }
        let rss = target.residentBytes
        print("target (\(allocator)): \(objects) records, payload \(payload) B, resident \(formatBytes(rss))\(write ? ", writing" : "")")

        var floors: [Double] = [], gcores: [Double] = [], gcorePauses: [Double] = []
        let methods = captures.split(separator: ",").map(String.init)
        let flags: [String: [String]] = ["stop-the-world": ["--stop-the-world"], "precopy": [], "fork": ["--capture", "fork"],
                                         "precopy-to-disk": ["--capture", "precopy-to-disk"], "fork-in-place": ["--capture", "fork-in-place"]]
        for method in methods where flags[method] == nil {
            throw ValidationError("unknown capture \(method): stop-the-world, precopy, precopy-to-disk, fork or fork-in-place")
        }
        var measured: [String: AttachRuns] = [:]
        let swref = try swrefPath()
        // Every process_vm_readv-based copy first (pre-copy, the default, included), fork
        // snapshots last: after a fork the target's pages are no longer marked exclusive, and the
        // next pinning read of each page takes a fault to mark it again — a real cost, but one of
        // the fork runs, not of the copy.
        let ordered = ["stop-the-world", "precopy", "precopy-to-disk", "fork", "fork-in-place"].filter(methods.contains)
        let main = methods.contains("precopy") ? "precopy" : ordered[0]
        var idleGaps: [Double] = []
        for method in ordered {
            var runsOfMethod = AttachRuns()
            for run in 1...runs {
                if method == "stop-the-world" { floors.append(try copyFloor(pid: target.pid)) }
                let out = work.appendingPathComponent("run\(run).out").path
                try runsOfMethod.measure(swref, ["attach", "\(target.pid)", "-o", out, "--timings"] + flags[method]!, target: target)
                if method == "stop-the-world" && !noGcore && FileManager.default.isExecutableFile(atPath: "/usr/bin/gcore") {
                    let core = work.appendingPathComponent("core").path
                    let started = Date()
                    _ = try runProcess("/usr/bin/gcore", ["-o", core, "\(target.pid)"])
                    gcores.append(Date().timeIntervalSince(started))
                    usleep(20_000)
                    gcorePauses.append(target.takeMaxGap())
                    try? FileManager.default.removeItem(atPath: "\(core).\(target.pid)")
                }
                if method == main {
                    // The heartbeat's own noise, over as long as a run, with nothing attached but both cores
                    // kept busy as swref keeps them: how late a tick comes when the CPUs are taken.
                    _ = target.takeMaxGap()
                    busyCores(for: min(runsOfMethod.totals.last ?? 1, 10))
                    idleGaps.append(target.takeMaxGap())
                }
            }
            measured[method] = runsOfMethod
        }
        guard target.process.isRunning else { throw ValidationError("the target died during the runs") }
        let chosen = measured[main]!
        let floor = median(floors), total = median(chosen.totals), objectCount = median(chosen.blocks)
        let heapBytes = median(chosen.heap)
        print("runs: \(runs) (medians); the target ran on through all of them (its heartbeat's longest gap is the pause seen)")
        print("  heartbeat's gap, cores busy:     \(ms(median(idleGaps)))  (no swref, two threads spinning as long as a run: the scheduling noise under the pauses below)")
        if !floors.isEmpty { print("  copy floor (process_vm_readv):   \(ms(floor))") }
        if !gcores.isEmpty {
            print("  gcore:                           \(ms(median(gcores)))  (target paused \(ms(median(gcorePauses))); \(ratio(median(gcores), floor)) floor)")
        }
        let known = ["capture", "images", "malloc-heap", "objects", "address-index", "roots", "graph", "attribution", "leaks",
                     "dominators", "dominator-attribution", "census", "profile", "write"]
        var rates: [String: Double] = [:]
        for method in ordered {
            let runs = measured[method]!
            let phases = runs.phases
            let order = known.filter { phases[$0] != nil } + phases.keys.filter { !known.contains($0) }.sorted()
            // Every phase but the capture and the writing of the profile, whatever its name.
            let analysis = order.filter { $0 != "write" && $0 != "capture" }.compactMap { phases[$0].map(median) }.reduce(0, +)
            let blocks = median(runs.blocks), peak = median(runs.peaks)
            rates[method] = blocks / max(analysis, 1e-9)
            print("  \(method):")
            print("    pause seen by the target:      \(ms(median(runs.pauses)))  (swref reports \(ms(median(runs.reported) / 1000))\(floors.isEmpty ? "" : "; \(ratio(median(runs.pauses), floor)) floor"))")
            print("    swref attach total:            \(ms(median(runs.totals)))")
            print("    phases:                        " + order.compactMap { name in phases[name].map { "\(name) \(ms(median($0)))" } }.joined(separator: ", "))
            print("    analysis objects/s:            \(Int(rates[method]!))  (analysis \(ms(analysis)), without capture and process start; \(Int(blocks)) blocks)")
            print("    swref peak RSS:                \(formatBytes(UInt64(peak)))  (\(ratio(peak, median(runs.heap))) heap; \(Int(peak / max(blocks, 1))) B per block)")
            if !runs.inPlace.isEmpty { print("    read in place:                 \(runs.inPlace[runs.inPlace.count / 2])") }
        }
        for method in ["precopy-to-disk", "fork-in-place"] {
            if let precopy = rates["precopy"], let inPlace = rates[method] {
                print("  \(method) analysis against precopy's: \(ratio(precopy, inPlace)) the time")
            }
        }
        print("  objects/s (\(main), whole run):   \(Int(objectCount / total))  (\(Int(objectCount)) blocks)")
        print("  bytes/s:                         \(formatBytes(UInt64(heapBytes / total)))/s  (\(formatBytes(UInt64(heapBytes))) in use)")
        let peak = median(chosen.peaks), snapshot = Double(target.anonymousResidentBytes)
        print("  beyond the snapshot (\(main)):    \(formatBytes(UInt64(max(peak - snapshot, 0))))  (\(ratio(max(peak - snapshot, 0), heapBytes)) heap; the snapshot is the target's anonymous resident memory, \(formatBytes(UInt64(snapshot))))")
        return Summary(allocator: allocator, analysisRate: rates[main] ?? 0, pause: median(chosen.pauses))
    }

    private func ms(_ seconds: Double) -> String { String(format: "%.1f ms", seconds * 1000) }
    private func ratio(_ a: Double, _ b: Double) -> String { b > 0 ? String(format: "%.2f×", a / b) : "n/a" }
}

/// Medians' raw material for one way of running `swref attach` against the benchmark target.
struct AttachRuns {
    var totals: [Double] = [], pauses: [Double] = [], reported: [Double] = [], peaks: [Double] = []
    var blocks: [Double] = [], heap: [Double] = []
    var phases: [String: [Double]] = [:]
    /// swref's "read in place: …" line, for a fork read in place.
    var inPlace: [String] = []

    /// Runs swref once: wall time, peak RSS, the pause the target saw, what swref printed.
    mutating func measure(_ swref: String, _ arguments: [String], target: BenchTarget) throws {
        _ = target.takeMaxGap()
        let started = Date()
        let result = try runProcess(swref, arguments)
        totals.append(Date().timeIntervalSince(started))
        guard result.status == 0 else { throw ValidationError("swref \(arguments.joined(separator: " ")) failed: \(result.stderr)") }
        usleep(20_000)
        pauses.append(target.takeMaxGap())
        peaks.append(Double(result.maxRSS))
        let lines = result.stderr.split(separator: "\n")
        let summary = lines.last { $0.contains("paused PID") } ?? ""
        reported.append(Double(field(summary, after: "for ", before: " ms")) ?? 0)
        // `…; jemalloc 5.3.0: 3288 blocks, …`: the number before " blocks".
        let beforeBlocks = summary.range(of: " blocks").map { summary[..<$0.lowerBound] } ?? ""
        blocks.append(Double(beforeBlocks.split(separator: " ").last ?? "") ?? 0)
        heap.append(parseBytes(field(summary, after: "blocks, ", before: " in use")))
        if let line = lines.first(where: { $0.hasPrefix("swref: read in place: ") || $0.hasPrefix("swref: read back from disk: ") }) {
            inPlace.append(String(line.drop { $0 != ":" }.dropFirst(2).drop { $0 != ":" }.dropFirst(2)))
        }
        if let line = lines.first(where: { $0.hasPrefix("swref: timings ") }) {
            for item in line.dropFirst("swref: timings ".count).split(separator: " ") {
                let parts = item.split(separator: "=")
                if parts.count == 2, let value = Double(parts[1].dropLast(2)) { phases[String(parts[0]), default: []].append(value / 1000) }
            }
        }
    }
}

func field(_ line: Substring, after: String, before: String) -> String {
    guard let start = line.range(of: after)?.upperBound, let end = line[start...].range(of: before)?.lowerBound else { return "" }
    return String(line[start..<end])
}

func parseBytes(_ text: String) -> Double {
    let parts = text.split(separator: " ")
    guard parts.count == 2, let value = Double(parts[0]) else { return 0 }
    let scale: [Substring: Double] = ["B": 1, "KiB": 1024, "MiB": 1_048_576, "GiB": 1_073_741_824, "TiB": 1_099_511_627_776]
    return value * (scale[parts[1]] ?? 1)
}

/// Spins two threads for `seconds`.
func busyCores(for seconds: Double) {
    let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
    let group = DispatchGroup()
    for _ in 0..<2 {
        group.enter()
        Thread.detachNewThread {
            while monotonicNanoseconds() < deadline {}
            group.leave()
        }
    }
    group.wait()
}

/// The time to copy every writable mapping of `pid` once: the stop-the-world floor.
func copyFloor(pid: Int32) throws -> Double {
    let map = try ProcFS.memoryMap(pid)
    var buffer = [UInt8](repeating: 0, count: 16 << 20)
    let started = Date()
    for region in map.regions where region.readable && (region.writable || !region.isFileBacked) && region.path != "[vvar]" {
        var offset: UInt64 = 0
        while offset < region.size {
            let length = Int(min(UInt64(buffer.count), region.size - offset))
            _ = buffer.withUnsafeMutableBytes { LiveCapture.readRemote(pid: pid, into: $0.baseAddress!, at: region.start + offset, count: length) }
            offset += UInt64(length)
        }
    }
    return Date().timeIntervalSince(started)
}

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

struct ProcessResult { var status: Int32; var stdout: String; var stderr: String; var maxRSS: Int }

/// Runs a program to completion; its peak RSS comes from wait4's rusage.
func runProcess(_ path: String, _ arguments: [String]) throws -> ProcessResult {
    let outPipe = Pipe(), errPipe = Pipe()
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, outPipe.fileHandleForWriting.fileDescriptor, 1)
    posix_spawn_file_actions_adddup2(&actions, errPipe.fileHandleForWriting.fileDescriptor, 2)
    var pid: pid_t = 0
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
    guard rc == 0 else { throw ValidationError("cannot run \(path): \(String(cString: strerror(rc)))") }
    try outPipe.fileHandleForWriting.close()
    try errPipe.fileHandleForWriting.close()
    final class Collected: @unchecked Sendable { var data = Data() }
    let err = Collected()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { err.data = errPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let out = outPipe.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
    let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return ProcessResult(status: exit, stdout: String(decoding: out, as: UTF8.self),
                         stderr: String(decoding: err.data, as: UTF8.self), maxRSS: usage.ru_maxrss * 1024)
}

/// The benchmark program, running; its heartbeat's GAP lines are collected as they come.
final class BenchTarget: @unchecked Sendable {
    let process = Process()
    private let output = Pipe()
    private let lock = NSLock()
    private var maxGap = 0.0
    private var ready = false

    var pid: Int32 { process.processIdentifier }

    init(binary: String, arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = output
        try process.run()
        let handle = output.fileHandleForReading
        let semaphore = DispatchSemaphore(value: 0)
        Thread.detachNewThread { [self] in
            var pending = ""
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                pending += String(decoding: data, as: UTF8.self)
                while let newline = pending.firstIndex(of: "\n") {
                    let line = pending[..<newline]
                    if line.hasPrefix("READY") { semaphore.signal() }
                    if line.hasPrefix("GAP "), let micros = Double(line.dropFirst(4)) {
                        lock.lock(); maxGap = max(maxGap, micros / 1e6); lock.unlock()
                    }
                    pending = String(pending[pending.index(after: newline)...])
                }
            }
            semaphore.signal()
        }
        semaphore.wait()
        guard process.isRunning else { throw ValidationError("the benchmark program exited early") }
        usleep(200_000)
    }

    /// The longest heartbeat gap since the last call, in seconds (1 ms when none was late).
    func takeMaxGap() -> Double {
        lock.lock()
        defer { lock.unlock() }
        let gap = max(maxGap, 0.001)
        maxGap = 0
        return gap
    }

    var residentBytes: UInt64 { ProcFS.statusBytes(pid, "VmRSS") }
    /// What a snapshot copies, near enough: the writable private pages that exist.
    var anonymousResidentBytes: UInt64 { ProcFS.statusBytes(pid, "RssAnon") }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }
}
