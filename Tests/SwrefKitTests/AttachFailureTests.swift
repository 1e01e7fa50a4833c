import Foundation
import SwrefKit
import XCTest

/// Bad input: one line on stderr, a non-zero exit, and the target unharmed.
final class AttachFailureTests: XCTestCase {
    func assertOneLineError(_ result: Shell.Result, contains text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(result.status, 0, file: file, line: line)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one line: \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stderr.contains(text), result.stderr, file: file, line: line)
    }

    func testNonexistentPID() throws {
        let pidMax = Int((try? String(contentsOfFile: "/proc/sys/kernel/pid_max", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 4_194_304
        assertOneLineError(try Shell.swref(["attach", "\(pidMax + 1)"]), contains: "no process with PID")
    }

    func testPermissionDenied() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to run swref as an unprivileged user") }
        let program = try RunningProgram(try TestPrograms.binary("census", .optimized), ["10", "10"])
        defer { program.stop() }
        let swref = try TestPrograms.swrefExecutable()
        // Where the unprivileged user may write: the output is checked before the target is touched.
        let out = "/tmp/swref-denied-\(getpid()).out"
        defer { unlink(out) }
        let result = try Shell.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                        swref, "attach", "\(program.pid)", "-o", out])
        assertOneLineError(result, contains: "not permitted to trace PID \(program.pid)")
        XCTAssertTrue(["S", "R"].contains(program.state))
    }

    func testProcessExitsWhileBeingRead() throws {
        let program = try RunningProgram(try TestPrograms.binary("census", .optimized), ["10", "10"])
        let pid = program.pid
        // The test hook keeps the target stopped for a second; it is killed meanwhile.
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { kill(pid, SIGKILL) }
        let result = try Shell.swref(["attach", "\(pid)", "--stop-the-world", "-o",
                                      TestPrograms.buildDirectory.appendingPathComponent("exit.out").path],
                                     environment: ["SWREF_TEST_STALL_MS": "1000"])
        assertOneLineError(result, contains: "exited while it was being read")
        program.stop()
    }

    func testNonSwiftProcess() throws {
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["60"]
        try sleeper.run()
        defer { sleeper.terminate(); sleeper.waitUntilExit() }
        usleep(200_000)
        let result = try Shell.swref(["attach", "\(sleeper.processIdentifier)", "--format", "text"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("no Swift runtime found"), result.stdout)
        XCTAssertTrue(result.stdout.contains("<malloc>"), result.stdout)
        XCTAssertTrue(sleeper.isRunning)
    }

    /// A target that cannot take one more descriptor (its limit lowered to what it has open) cannot
    /// create the userfaultfd: its registers go back, and the world is stopped instead (never a fork
    /// snapshot unless asked: its child would be the target's parent's to reap).
    func testTargetWithoutFreeDescriptorFallsBackToStopTheWorld() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else { throw XCTSkip("no prlimit") }
        let exe = try TestPrograms.binary("census", .optimized)
        let program = try RunningProgram(exe, ["10", "10"])
        defer { program.stop() }
        let lowest = (try FileManager.default.contentsOfDirectory(atPath: "/proc/\(program.pid)/fd")).compactMap { Int($0) }
        var limit = 0
        while lowest.contains(limit) { limit += 1 } // the first free descriptor: the limit stops there
        XCTAssertEqual(try Shell.run("/usr/bin/prlimit", ["--pid", "\(program.pid)", "--nofile=\(limit):4096"]).status, 0)
        let before = LowPauseTests.TargetState(program.pid)
        let result = try Shell.swref(["attach", "\(program.pid)", "--view", "types", "--format", "text"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("could not create a userfaultfd (Too many open files)"), result.stderr)
        XCTAssertTrue(result.stderr.contains("stopped the target for the whole copy instead"), result.stderr)
        XCTAssertFalse(result.stderr.contains("fork"), result.stderr)
        XCTAssertTrue(result.stdout.contains("census.Node"), result.stdout)
        try LowPauseTests.assertUntouched(program, exe: exe, before: before)
    }

    /// A target that cannot fork — the init of a PID namespace may not clone(CLONE_PARENT) — is
    /// put back as it was and captured by stopping the world instead, with a note.
    func testTargetThatCannotForkFallsBackToStopTheWorld() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else { throw XCTSkip("no unshare") }
        let exe = try TestPrograms.binary("census", .optimized)
        let wrapper = try RunningProgram("/usr/bin/unshare", ["--pid", "--fork", exe, "10", "10"])
        defer { wrapper.stop() }
        let children = (try? String(contentsOfFile: "/proc/\(wrapper.pid)/task/\(wrapper.pid)/children", encoding: .utf8)) ?? ""
        guard let pid = children.split(separator: " ").first.flatMap({ Int32($0) }) else {
            throw XCTSkip("no PID namespace here (unshare gave no child)")
        }
        defer { kill(pid, SIGKILL) }
        let result = try Shell.swref(["attach", "\(pid)", "--view", "types", "--format", "text", "--capture", "fork"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("no fork snapshot"), result.stderr)
        XCTAssertTrue(result.stderr.contains("could not fork (Invalid argument)"), result.stderr)
        XCTAssertTrue(result.stdout.contains("census."), result.stdout)
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        XCTAssertTrue(status.contains("TracerPid:\t0"), status)
        XCTAssertTrue(status.contains("State:\tS") || status.contains("State:\tR"), status)
        // Still itself: a second capture finds the same heap.
        let again = try Shell.swref(["attach", "\(pid)", "--view", "types", "--format", "text"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("census."), again.stdout)
    }

    /// Stop-the-world: killed while the target is stopped. Fork snapshot and pre-copy: killed while
    /// the target's main thread holds the injected clone(2) or userfaultfd(2) registers — the holder
    /// process finishes, puts the registers back, and kills the snapshot child or drops the descriptor.
    func testSwrefKilledMidCaptureLeavesTargetRunning() throws {
        let exe = try TestPrograms.binary("census", .optimized)
        let program = try RunningProgram(exe, ["10", "10"])
        defer { program.stop() }
        let before = LowPauseTests.TargetState(program.pid)
        for (mode, signal) in [("--stop-the-world", SIGKILL), ("--stop-the-world", SIGINT), ("--stop-the-world", SIGTERM),
                               ("--capture=fork", SIGKILL), ("--capture=fork", SIGINT), ("", SIGKILL), ("", SIGTERM)] {
            let swref = Process()
            swref.executableURL = URL(fileURLWithPath: try TestPrograms.swrefExecutable())
            swref.arguments = ["attach", "\(program.pid)", "-o", TestPrograms.buildDirectory.appendingPathComponent("killed.out").path]
                + (mode.isEmpty ? [] : [mode])
            swref.environment = ProcessInfo.processInfo.environment.merging(["SWREF_TEST_STALL_MS": "5000"]) { $1 }
            swref.standardError = FileHandle.nullDevice
            try swref.run()
            // Wait until the target is stopped by swref, then kill swref.
            let deadline = Date().addingTimeInterval(10)
            while program.state != "t" && Date() < deadline { usleep(10_000) }
            XCTAssertEqual(program.state, "t", "swref stopped the target")
            kill(swref.processIdentifier, signal)
            swref.waitUntilExit()
            // The holder still has up to the rest of the stall to finish.
            let settled = Date().addingTimeInterval(10)
            while (program.state == "t" || program.tracerPid != "0") && Date() < settled { usleep(20_000) }
            usleep(100_000)
            XCTAssertTrue(["S", "R"].contains(program.state), "\(mode) after signal \(signal) the target runs: \(program.state)")
            try LowPauseTests.assertUntouched(program, exe: exe, before: before)
        }
        // The target survived with its state intact: a full capture still works and finds its objects.
        let census = try Shell.swref(["attach", "\(program.pid)", "--view", "types", "--format", "text"])
        XCTAssertEqual(census.status, 0, census.stderr)
        XCTAssertTrue(census.stdout.contains("census."), census.stdout)
    }
}
