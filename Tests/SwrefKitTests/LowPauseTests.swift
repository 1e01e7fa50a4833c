import Foundation
import SwrefKit
import XCTest

/// Pre-copy (the default) and fork snapshots: the same profile as a stop-the-world copy, one
/// instant of a heap that keeps changing, and nothing harmed or left behind when swref is killed
/// mid-capture.
final class LowPauseTests: XCTestCase {
    func normalized(_ path: String) throws -> [String] {
        try PprofReader(path: path).samples.map { "\($0.values) \($0.frames.joined(separator: " | "))" }.sorted()
    }

    func testEveryCaptureMethodGivesTheSameProfile() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        for program in ["paths", "leaks"] {
            let running = try RunningProgram(try TestPrograms.binary(program, .optimized), program == "leaks" ? ["leaky"] : [])
            defer { running.stop() }
            let before = LowPauseTests.TargetState(running.pid)
            var profiles: [[String]] = []
            for (flags, method) in [(["--stop-the-world"], "stop-the-world"), ([], "pre-copy"), (["--capture", "fork"], "fork snapshot")] {
                let out = TestPrograms.buildDirectory.appendingPathComponent("\(method)-\(program).pb.gz").path
                let run = try Shell.swref(["attach", "\(running.pid)", "-o", out] + flags)
                XCTAssertEqual(run.status, 0, run.stderr)
                XCTAssertTrue(run.stderr.contains("(\(method))"), run.stderr)
                profiles.append(try normalized(out))
            }
            XCTAssertGreaterThan(profiles[0].count, 5)
            XCTAssertEqual(profiles[1], profiles[0], "\(program): pre-copy")
            XCTAssertEqual(profiles[2], profiles[0], "\(program): fork snapshot")
            try LowPauseTests.assertUntouched(running, exe: running.process.executableURL!.path, before: before)
        }
    }

    /// A thread moves objects around a ring of arrays without pause. A copy made of pages from
    /// different moments would find an object in no array (and report it leaked) or in two; the
    /// pre-copy's last stop copies every page written since its rounds, so each capture is one instant.
    /// The program splits its main heap's mapping in three, as the kernel may once a write-tracked
    /// heap is written to: read piece by piece, the main arena was not found and no object was.
    func testPrecopyOfAChangingHeapIsOneInstant() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let count = 50_000
        let running = try RunningProgram(try TestPrograms.binary("churn", .optimized), ["\(count)"])
        defer { running.stop() }
        for round in 0..<6 {
            let out = TestPrograms.buildDirectory.appendingPathComponent("churn\(round).pb.gz").path
            let run = try Shell.swref(["attach", "\(running.pid)", "-o", out])
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertTrue(run.stderr.contains("(pre-copy)"), run.stderr)
            let payloads = try PprofReader(path: out).samples.filter { $0.frames.last?.hasSuffix("(churn.Payload)") == true }
            let leaked = payloads.filter { $0.labels["root"] == "leaked" }.reduce(Int64(0)) { $0 + $1.values[0] }
            let held = payloads.filter { $0.labels["root"] != "leaked" }.reduce(Int64(0)) { $0 + $1.values[0] }
            XCTAssertEqual(leaked, 0, "round \(round): objects seen in neither array")
            XCTAssertEqual(held, Int64(count), "round \(round)")
        }
        // Still moving: the mover thread was not left stopped or write-protected.
        XCTAssertTrue(["S", "R"].contains(running.state))
        XCTAssertEqual(LowPauseTests.writeTrackedMappings(running.pid), 0)
    }

    /// Pre-copy copies only the pages the target has. Write protection fills a registered range
    /// with markers (pagemap reports them as swapped out), and taken at their word they made swref
    /// copy every page of each thread's 8 MiB stack. The copy of a mostly untouched stack stays as
    /// small as its resident part, capture after capture.
    func testPrecopyCopiesOnlyPagesTheTargetHas() throws {
        let running = try RunningProgram(try TestPrograms.binary("census", .optimized), ["2000", "100"])
        defer { running.stop() }
        for round in 0..<3 {
            usleep(200_000) // the previous capture's tracking ends on a thread of its own
            let snapshot = try LiveCapture.capture(pid: running.pid, options: .init(method: .precopy))
            XCTAssertEqual(snapshot.captureMethod, .precopy)
            var checked = 0
            for region in snapshot.memoryMap.regions where region.isAnonymous && region.writable && region.size >= 4 << 20 {
                guard let copy = snapshot.copiedBytes(of: region), let base = copy.baseAddress else { continue }
                let pages = (copy.count + 4095) / 4096
                var flags = [UInt8](repeating: 0, count: pages)
                XCTAssertEqual(mincore(UnsafeMutableRawPointer(mutating: base), copy.count, &flags), 0)
                let copied = flags.filter { $0 & 1 != 0 }.count * 4
                let resident = LowPauseTests.residentKiB(running.pid, region.start)
                XCTAssertLessThanOrEqual(copied, resident + 64, "round \(round): \(copied) KiB copied of \(region), \(resident) KiB resident")
                checked += 1
            }
            XCTAssertGreaterThan(checked, 0, "no large anonymous mapping (a thread's stack) in the program")
        }
    }

    /// The Rss of the target's mapping that starts at `start`, in KiB.
    static func residentKiB(_ pid: Int32, _ start: UInt64) -> Int {
        let smaps = (try? String(contentsOfFile: "/proc/\(pid)/smaps", encoding: .utf8)) ?? ""
        var inside = false
        for line in smaps.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), let address = UInt64(line[..<dash], radix: 16), line.contains(" ") {
                inside = address == start
            } else if inside && line.hasPrefix("Rss:") {
                return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
            }
        }
        return 0
    }

    /// What a capture must leave as it was: no userfaultfd among the target's descriptors (the one
    /// the pre-copy makes it create is closed in it at once), and its signal dispositions (blocked,
    /// ignored, caught — an injection that let a forced signal meet a blocked mask would reset a
    /// handler). The count of descriptors is no measure: a program may open one of its own later.
    struct TargetState: Equatable {
        var userfaultfds: Int
        var signals: [String]

        init(_ pid: Int32) {
            userfaultfds = LowPauseTests.userfaultfdCount(pid)
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            signals = status.split(separator: "\n").filter { $0.hasPrefix("SigBlk") || $0.hasPrefix("SigIgn") || $0.hasPrefix("SigCgt") }
                .map(String.init)
        }
    }

    /// The target after a capture: running, untraced, no snapshot child, no mapping still
    /// write-tracked, no descriptor of ours left in it, its signal handlers as they were.
    static func assertUntouched(_ running: RunningProgram, exe: String, before: TargetState,
                                file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(["S", "R"].contains(running.state), "state \(running.state)", file: file, line: line)
        XCTAssertEqual(running.tracerPid, "0", file: file, line: line)
        let children = try processes(exe: exe, except: running.pid).filter { $0.state != "Z" }
        XCTAssertEqual(children.count, 0, "snapshot children left: \(children)", file: file, line: line)
        XCTAssertEqual(writeTrackedMappings(running.pid), 0, "mappings still write-tracked", file: file, line: line)
        XCTAssertEqual(TargetState(running.pid), before, "userfaultfds and signal dispositions of the target", file: file, line: line)
    }

    /// Mappings of `pid` with userfaultfd write protection registered ("uw" in smaps' VmFlags).
    static func writeTrackedMappings(_ pid: Int32) -> Int {
        let smaps = (try? String(contentsOfFile: "/proc/\(pid)/smaps", encoding: .utf8)) ?? ""
        return smaps.split(separator: "\n").filter { $0.hasPrefix("VmFlags:") && $0.split(separator: " ").contains("uw") }.count
    }

    static func userfaultfdCount(_ pid: Int32) -> Int {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return descriptors.filter {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == "anon_inode:[userfaultfd]"
        }.count
    }

    /// The reference scan on two threads gives the same profile as on one, and giving the copy back
    /// as the scan goes (the default) the same as keeping it (programs with closures, dictionaries,
    /// tasks, framework buffers and leaks, and one whose last block carries most of the work; threads
    /// forced, since they are under the size that turns them on by itself).
    func testScanVariantsGiveTheSameProfile() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let variants: [(name: String, environment: [String: String])] = [
            ("one thread, copy kept", ["SWREF_THREADS": "1", "SWREF_KEEP_COPY": "1"]),
            ("one thread, streaming", ["SWREF_THREADS": "1"]),
            ("two threads, streaming", ["SWREF_THREADS": "2"]),
        ]
        for (program, arguments) in [("paths", [String]()), ("leaks", ["leaky"]), ("datacache", []), ("tasks", ["8"]), ("census", ["20000", "1000"]),
                                       ("census", ["2000", "100", "64"]),
                                       // One dictionary holds most of the work: two threads scan it in pieces.
                                       ("bench", ["20000", "16", "--no-heartbeat"])] {
            let running = try RunningProgram(try TestPrograms.binary(program, .optimized), arguments)
            defer { running.stop() }
            var profiles: [[String]] = []
            for (index, variant) in variants.enumerated() {
                let out = TestPrograms.buildDirectory.appendingPathComponent("variant\(index)-\(program).pb.gz").path
                let run = try Shell.swref(["attach", "\(running.pid)", "-o", out], environment: variant.environment)
                XCTAssertEqual(run.status, 0, run.stderr)
                profiles.append(try normalized(out))
            }
            XCTAssertGreaterThan(profiles[0].count, 5)
            for index in 1..<variants.count { XCTAssertEqual(profiles[index], profiles[0], "\(program): \(variants[index].name)") }
        }
    }

    /// Other processes running `exe` (the forked snapshots), with their states.
    static func processes(exe: String, except pid: Int32) throws -> [(pid: Int32, state: String)] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap { Int32($0) }.filter { $0 != pid }.compactMap { other in
            guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(other)/exe"), path == exe,
                  let stat = try? String(contentsOfFile: "/proc/\(other)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            return (other, String(stat[stat.index(close, offsetBy: 2)]))
        }
    }

    func testSwrefKilledAtRandomMomentsLeavesTargetRunningAndNoChild() throws {
        let exe = try TestPrograms.binary("census", .optimized)
        let program = try RunningProgram(exe, ["200000", "1000"])
        defer { program.stop() }
        let before = LowPauseTests.TargetState(program.pid)
        let modes = [[], ["--capture", "fork"], ["--stop-the-world"]]
        var rng = SplitMix(seed: 7)
        for round in 0..<15 {
            let swref = Process()
            swref.executableURL = URL(fileURLWithPath: try TestPrograms.swrefExecutable())
            swref.arguments = ["attach", "\(program.pid)", "-o", TestPrograms.buildDirectory.appendingPathComponent("killed-random.out").path]
                + modes[round % modes.count]
            swref.standardError = FileHandle.nullDevice
            try swref.run()
            usleep(UInt32(rng.next() % 150_000))
            kill(swref.processIdentifier, SIGKILL)
            swref.waitUntilExit()
            // Killed mid-injection, the holder still finishes (and kills a snapshot child); killed
            // while tracking writes, the kernel unregisters with swref's last descriptor.
            let settled = Date().addingTimeInterval(5)
            while (program.state == "t" || program.tracerPid != "0" || LowPauseTests.writeTrackedMappings(program.pid) > 0)
                    && Date() < settled { usleep(10_000) }
            usleep(50_000)
            try LowPauseTests.assertUntouched(program, exe: exe, before: before)
        }
        // The target still answers: a last capture works.
        XCTAssertEqual(try Shell.swref(["attach", "\(program.pid)", "--view", "types", "--format", "text"]).status, 0)
    }
}
