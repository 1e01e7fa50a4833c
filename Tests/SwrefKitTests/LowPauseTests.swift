import Foundation
import SwrefKit
import XCTest

/// Fork snapshots (the default): the same profile as a stop-the-world copy, and nothing harmed or
/// left behind when swref is killed mid-capture.
final class LowPauseTests: XCTestCase {
    func normalized(_ path: String) throws -> [String] {
        try PprofReader(path: path).samples.map { "\($0.values) \($0.frames.joined(separator: " | "))" }.sorted()
    }

    func testForkSnapshotGivesTheSameProfileAsStopTheWorld() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        for program in ["paths", "leaks"] {
            let running = try RunningProgram(try TestPrograms.binary(program, .optimized), program == "leaks" ? ["leaky"] : [])
            defer { running.stop() }
            let stopped = TestPrograms.buildDirectory.appendingPathComponent("stw-\(program).pb.gz").path
            let forked = TestPrograms.buildDirectory.appendingPathComponent("fork-\(program).pb.gz").path
            XCTAssertEqual(try Shell.swref(["attach", "\(running.pid)", "--stop-the-world", "-o", stopped]).status, 0)
            let fork = try Shell.swref(["attach", "\(running.pid)", "-o", forked])
            XCTAssertEqual(fork.status, 0, fork.stderr)
            XCTAssertTrue(fork.stderr.contains("(fork snapshot)"), fork.stderr)
            XCTAssertEqual(try normalized(forked), try normalized(stopped), program)
            XCTAssertTrue(["S", "R"].contains(running.state))
            XCTAssertEqual(running.tracerPid, "0")
            XCTAssertEqual(try LowPauseTests.processes(exe: running.process.executableURL!.path, except: running.pid).filter { $0.state != "Z" }.count, 0)
        }
    }

    /// The reference scan on two threads gives the same profile as on one (programs with closures,
    /// dictionaries, framework buffers and leaks; forced, since they are under the size that
    /// turns threads on by itself).
    func testTwoThreadScanGivesTheSameProfileAsOne() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        for (program, arguments) in [("paths", [String]()), ("leaks", ["leaky"]), ("datacache", [])] {
            let running = try RunningProgram(try TestPrograms.binary(program, .optimized), arguments)
            defer { running.stop() }
            var profiles: [[String]] = []
            for threads in ["1", "2"] {
                let out = TestPrograms.buildDirectory.appendingPathComponent("threads\(threads)-\(program).pb.gz").path
                let run = try Shell.swref(["attach", "\(running.pid)", "-o", out], environment: ["SWREF_THREADS": threads])
                XCTAssertEqual(run.status, 0, run.stderr)
                profiles.append(try normalized(out))
            }
            XCTAssertGreaterThan(profiles[0].count, 5)
            XCTAssertEqual(profiles[0], profiles[1], program)
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
        var rng = SplitMix(seed: 7)
        for round in 0..<12 {
            let swref = Process()
            swref.executableURL = URL(fileURLWithPath: try TestPrograms.swrefExecutable())
            swref.arguments = ["attach", "\(program.pid)", "-o", TestPrograms.buildDirectory.appendingPathComponent("killed-fork.out").path]
                + (round % 2 == 0 ? [] : ["--stop-the-world"])
            swref.standardError = FileHandle.nullDevice
            try swref.run()
            usleep(UInt32(rng.next() % 150_000))
            kill(swref.processIdentifier, SIGKILL)
            swref.waitUntilExit()
            // Killed mid-fork, the holder still finishes and then kills the snapshot child.
            let settled = Date().addingTimeInterval(5)
            while (program.state == "t" || program.tracerPid != "0") && Date() < settled { usleep(10_000) }
            usleep(50_000)
            XCTAssertTrue(["S", "R"].contains(program.state), "round \(round): the target runs (\(program.state))")
            XCTAssertEqual(program.tracerPid, "0", "round \(round)")
            let left = try LowPauseTests.processes(exe: exe, except: program.pid).filter { $0.state != "Z" }
            XCTAssertEqual(left.count, 0, "round \(round): snapshot children left: \(left)")
        }
        // The target still answers: a last capture works.
        XCTAssertEqual(try Shell.swref(["attach", "\(program.pid)", "--view", "types", "--format", "text"]).status, 0)
    }
}
