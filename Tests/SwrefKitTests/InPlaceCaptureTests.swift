import Foundation
import SwrefKit
import XCTest

/// Reading as the analysis goes: swref's copy fills as the analysis reads it, from a pre-copy
/// spilled to an unlinked file (`--capture precopy-to-disk`) or from a frozen fork child
/// (`--capture fork-in-place`). The same profile as a pre-copy, one instant of a heap that keeps
/// changing, chosen by itself when a copy would not fit, and never clean when the child's memory
/// goes away under it.
final class InPlaceCaptureTests: XCTestCase {
    func normalized(_ path: String) throws -> [String] {
        try PprofReader(path: path).samples.map { "\($0.values) \($0.frames.joined(separator: " | "))" }.sorted()
    }

    /// "read in place: 12.0 MiB filled in …" (or "read back from disk: …"): the bytes the pager
    /// placed, from stderr.
    static func filledBytes(_ stderr: String) -> Double? {
        let marker = stderr.contains("read back from disk: ") ? "read back from disk: " : "read in place: "
        guard let line = stderr.split(separator: "\n").first(where: { $0.contains(marker) }) else { return nil }
        let words = line.components(separatedBy: marker)[1].split(separator: " ")
        guard words.count >= 2, let value = Double(words[0]) else { return nil }
        return value * unitBytes(String(words[1]))
    }

    static func unitBytes(_ unit: String) -> Double {
        switch unit {
        case "B": return 1
        case "KiB": return 1024
        case "MiB": return 1024 * 1024
        case "GiB": return 1024 * 1024 * 1024
        default: return 0
        }
    }

    /// The same profile as a pre-copy on programs with closures, dictionaries, framework
    /// buffers and leaks — with the default window, and with a window of 1 MiB, where every stretch
    /// is given back and read again many times over (more is filled than the heap holds).
    func testReadInPlaceGivesTheSameProfileAsPrecopy() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        for (program, arguments) in [("paths", [String]()), ("leaks", ["leaky"]), ("datacache", []),
                                      ("census", ["20000", "1000"]), ("bench", ["20000", "16", "--no-heartbeat"])] {
            let running = try RunningProgram(try TestPrograms.binary(program, .optimized), arguments)
            defer { running.stop() }
            let before = LowPauseTests.TargetState(running.pid)
            var profiles: [[String]] = []
            let window = ["SWREF_IN_PLACE_LIMIT": "1048576", "SWREF_THREADS": "2"]
            let variants: [(capture: String?, environment: [String: String])] = [
                (nil, [:]), ("fork-in-place", [:]), ("fork-in-place", window), ("precopy-to-disk", [:]), ("precopy-to-disk", window)]
            for (index, variant) in variants.enumerated() {
                let out = TestPrograms.buildDirectory.appendingPathComponent("inplace\(index)-\(program).pb.gz").path
                let flags = variant.capture.map { ["--capture", $0] } ?? []
                let run = try Shell.swref(["attach", "\(running.pid)", "-o", out] + flags, environment: variant.environment)
                XCTAssertEqual(run.status, 0, run.stderr)
                if let capture = variant.capture {
                    let method = capture == "fork-in-place" ? "(fork snapshot, read in place)" : "(pre-copy, spilled to disk)"
                    XCTAssertTrue(run.stderr.contains(method), run.stderr)
                    XCTAssertNotNil(InPlaceCaptureTests.filledBytes(run.stderr), run.stderr)
                }
                if variant.environment == window, program == "census" {
                    // A test of the test: the small window did make the pager give back and read again.
                    let first = TestPrograms.buildDirectory.appendingPathComponent("inplace0-\(program).pb.gz").path
                    let heap = Double(try PprofReader(path: first).samples.reduce(Int64(0)) { $0 + $1.values[0] })
                    XCTAssertGreaterThan(InPlaceCaptureTests.filledBytes(run.stderr) ?? 0, heap, run.stderr)
                }
                profiles.append(try normalized(out))
            }
            XCTAssertGreaterThan(profiles[0].count, 5)
            for (index, variant) in variants.enumerated().dropFirst() {
                XCTAssertEqual(profiles[index], profiles[0], "\(program): \(variant.capture ?? "")\(variant.environment.isEmpty ? "" : " through a 1 MiB window")")
            }
            try LowPauseTests.assertUntouched(running, exe: running.process.executableURL!.path, before: before)
        }
    }

    /// A thread moves objects around a ring of arrays without pause while swref reads the frozen
    /// child, or its pre-copy back from disk: every object is found exactly once, none leaked;
    /// for the fork, the pages the target wrote meanwhile are the ones it duplicated (reported, and
    /// more than nothing).
    func testChangingHeapReadInPlaceIsOneInstant() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let count = 50_000
        let running = try RunningProgram(try TestPrograms.binary("churn", .optimized), ["\(count)"])
        defer { running.stop() }
        let before = LowPauseTests.TargetState(running.pid)
        for round in 0..<6 {
            let spilled = round >= 4
            let out = TestPrograms.buildDirectory.appendingPathComponent("churn-inplace\(round).pb.gz").path
            let run = try Shell.swref(["attach", "\(running.pid)", "-o", out, "--capture", spilled ? "precopy-to-disk" : "fork-in-place", "--timings"],
                                      environment: round % 2 == 1 ? ["SWREF_IN_PLACE_LIMIT": "1048576"] : [:])
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertTrue(run.stderr.contains(spilled ? "(pre-copy, spilled to disk)" : "(fork snapshot, read in place)"), run.stderr)
            if !spilled {
                let duplicated = run.stderr.components(separatedBy: "the target duplicated ").last?.split(separator: " ").first.flatMap { Double($0) }
                XCTAssertNotNil(duplicated, run.stderr)
                XCTAssertGreaterThan(duplicated ?? 0, 0, "the mover writes all the time: some of its pages were duplicated\n\(run.stderr)")
            }
            let payloads = try PprofReader(path: out).samples.filter { $0.frames.last?.hasSuffix("(churn.Payload)") == true }
            let leaked = payloads.filter { $0.labels["root"] == "leaked" }.reduce(Int64(0)) { $0 + $1.values[0] }
            let held = payloads.filter { $0.labels["root"] != "leaked" }.reduce(Int64(0)) { $0 + $1.values[0] }
            XCTAssertEqual(leaked, 0, "round \(round): objects seen in neither array")
            XCTAssertEqual(held, Int64(count), "round \(round)")
        }
        try LowPauseTests.assertUntouched(running, exe: running.process.executableURL!.path, before: before)
    }

    /// A heap larger than swref may hold: the default pre-copy would be refused (as
    /// MemoryBudgetTests shows), so swref reads a fork in place instead, says so, stays under the
    /// limit, and gives the profile a pre-copy gives. Asked for by name, a pre-copy is still refused.
    func testHeapLargerThanTheBudgetIsReadInPlace() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        // 40 000 nodes and leaves, and a 200 MiB array: the array's bytes are never read.
        let running = try RunningProgram(try TestPrograms.binary("census", .optimized), ["20000", "20000", "200"])
        defer { running.stop() }
        let reference = TestPrograms.buildDirectory.appendingPathComponent("budget-precopy.pb.gz").path
        let copied = try Shell.swref(["attach", "\(running.pid)", "-o", reference])
        XCTAssertEqual(copied.status, 0, copied.stderr)
        let out = TestPrograms.buildDirectory.appendingPathComponent("budget-inplace.pb.gz").path
        let run = try Shell.swref(["attach", "\(running.pid)", "-o", out, "--max-memory", "160M", "--timings"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("more than the 160.0 MiB available (--max-memory 160.0 MiB): copying it to an unlinked file in"), run.stderr)
        XCTAssertTrue(run.stderr.contains("(pre-copy, spilled to disk)"), run.stderr)
        XCTAssertEqual(try normalized(out), try normalized(reference))
        let filled = InPlaceCaptureTests.filledBytes(run.stderr) ?? .infinity
        XCTAssertLessThan(filled, 100 * 1048576, "the big array's pages were read\n\(run.stderr)")
        let peak = (run.stderr.components(separatedBy: "; peak ").last ?? "").split(separator: " ")
        let peakBytes = peak.count >= 2 ? (Double(peak[0]) ?? 0) * InPlaceCaptureTests.unitBytes(String(peak[1].prefix { $0.isLetter })) : 0
        XCTAssertGreaterThan(peakBytes, 0, run.stderr)
        XCTAssertLessThan(peakBytes, 160 * 1048576, run.stderr)
        let named = try Shell.swref(["attach", "\(running.pid)", "-o", out, "--max-memory", "160M", "--capture", "precopy"])
        XCTAssertEqual(named.status, 3, named.stderr)
    }

    /// Where the temporary directory has no room for the copy (a 16 MiB tmpfs as TMPDIR), the
    /// same heap over the same limit is read from a fork in place instead, with a note saying why;
    /// a pre-copy to disk asked for by name is refused (exit 3) before the target is touched.
    func testNoRoomOnDiskReadsAForkInPlace() throws {
        let directory = try TestPrograms.smallFilesystem("small-tmp")
        defer { TestPrograms.unmount(directory) }
        let running = try RunningProgram(try TestPrograms.binary("census", .optimized), ["20000", "20000", "200"])
        defer { running.stop() }
        let out = TestPrograms.buildDirectory.appendingPathComponent("nodisk.pb.gz").path
        let run = try Shell.swref(["attach", "\(running.pid)", "-o", out, "--max-memory", "160M"], environment: ["TMPDIR": directory])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("and \(directory) has no room for a copy: reading a fork of it in place instead"), run.stderr)
        XCTAssertTrue(run.stderr.contains("(fork snapshot, read in place)"), run.stderr)
        let named = try Shell.swref(["attach", "\(running.pid)", "-o", out, "--capture", "precopy-to-disk"], environment: ["TMPDIR": directory])
        XCTAssertEqual(named.status, 3, named.stderr)
        XCTAssertTrue(named.stderr.contains("on disk in \(directory), more than the"), named.stderr)
    }

    /// The frozen child killed while swref reads it: what swref had not read yet cannot be read,
    /// and the heap is never reported as clean — exit 125 with the reason, or (if the analysis had
    /// read all it needed first) a normal result. The target runs on.
    func testChildKilledDuringTheAnalysisIsNeverClean() throws {
        let running = try RunningProgram(try TestPrograms.binary("census", .optimized), ["200000", "200000"])
        defer { running.stop() }
        let exe = running.process.executableURL!.path
        var outcomes: [Int32] = []
        for round in 0..<3 {
            let swref = Process()
            swref.executableURL = URL(fileURLWithPath: try TestPrograms.swrefExecutable())
            swref.arguments = ["leaks", "\(running.pid)", "--capture", "fork-in-place"]
            // A window of 1 MiB: the analysis keeps reading the child until its very end.
            swref.environment = ProcessInfo.processInfo.environment.merging(["SWREF_IN_PLACE_LIMIT": "1048576"]) { $1 }
            let errors = Pipe()
            swref.standardError = errors
            swref.standardOutput = FileHandle.nullDevice
            try swref.run()
            var killed = false
            let deadline = Date().addingTimeInterval(30)
            while !killed && swref.isRunning && Date() < deadline {
                if let child = try LowPauseTests.processes(exe: exe, except: running.pid).first(where: { $0.state != "Z" }) {
                    usleep(UInt32(20_000 * round))
                    kill(child.pid, SIGKILL)
                    killed = true
                }
                usleep(1000)
            }
            let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            swref.waitUntilExit()
            XCTAssertTrue(killed, "no frozen child seen\n\(stderr)")
            XCTAssertTrue([0, 1, 125].contains(swref.terminationStatus), "status \(swref.terminationStatus)\n\(stderr)")
            if swref.terminationStatus == 125 {
                XCTAssertTrue(stderr.contains("could not be read") || stderr.contains("heap"), stderr)
                XCTAssertFalse(stderr.contains("no leak"), stderr)
            }
            outcomes.append(swref.terminationStatus)
            XCTAssertTrue(["S", "R"].contains(running.state), "state \(running.state)")
        }
        XCTAssertTrue(outcomes.contains(125), "no kill landed before the end of the reading: \(outcomes)")
    }
}
