import Foundation
import XCTest

/// A refused attach names its real cause with the one hint that fits: a kernel thread, a zombie,
/// a process another tracer holds — not "allow ptrace in a container" for everything.
final class AttachMessageTests: XCTestCase {
    func testEachRefusalNamesItsCause() throws {
        let kernelThread = try Shell.swref(["attach", "2"])
        XCTAssertEqual(kernelThread.status, 2)
        XCTAssertTrue(kernelThread.stderr.contains("kernel thread"), kernelThread.stderr)

        // A zombie: the child of a process that never reaps it.
        let parent = Process()
        parent.executableURL = URL(fileURLWithPath: "/bin/sh")
        parent.arguments = ["-c", "sleep 0.1 & exec sleep 20"]
        try parent.run()
        defer { parent.terminate(); parent.waitUntilExit() }
        usleep(600_000)
        let children = (try? String(contentsOfFile: "/proc/\(parent.processIdentifier)/task/\(parent.processIdentifier)/children", encoding: .utf8)) ?? ""
        let zombie = try XCTUnwrap(children.split(separator: " ").first.map(String.init), "no child: \(children)")
        let refused = try Shell.swref(["attach", zombie])
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("zombie"), refused.stderr)
        XCTAssertFalse(refused.stderr.contains("container"), refused.stderr)

        // Held by another tracer (gdb, for a few seconds).
        let program = try RunningProgram(try TestPrograms.binary("census", .optimized), ["10", "5"])
        defer { program.stop() }
        let gdb = Process()
        gdb.executableURL = URL(fileURLWithPath: "/usr/bin/gdb")
        gdb.arguments = ["-p", "\(program.pid)", "-batch", "-ex", "shell sleep 4"]
        gdb.standardOutput = FileHandle.nullDevice
        gdb.standardError = FileHandle.nullDevice
        try gdb.run()
        defer { gdb.waitUntilExit() }
        var traced = false
        for _ in 0..<50 where !traced { usleep(100_000); traced = program.tracerPid != "0" }
        XCTAssertTrue(traced, "gdb did not attach")
        let held = try Shell.swref(["attach", "\(program.pid)"])
        XCTAssertEqual(held.status, 2)
        XCTAssertTrue(held.stderr.contains("already traced by PID"), held.stderr)
    }
}
