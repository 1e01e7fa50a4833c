import Foundation
import XCTest

/// A crash inside swref (here a SIGSEGV sent while it analyses) prints what swref was doing and
/// exits with the command's documented status — 2 for `leaks`, 125 for `run`, the program's own
/// status when it failed — never a bare "Illegal instruction"; the target goes on untraced.
final class CrashReportTests: XCTestCase {
    /// Starts swref, waits until its progress reaches the analysis, and sends it SIGSEGV.
    func crash(_ arguments: [String], after seconds: Double) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try TestPrograms.swrefExecutable())
        process.arguments = arguments
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        usleep(useconds_t(seconds * 1e6))
        kill(process.processIdentifier, SIGSEGV)
        let data = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testCrashIsReportedWithThePhaseAndTheDocumentedStatus() throws {
        let program = try RunningProgram(try TestPrograms.binary("census", .optimized), ["400000", "200000"])
        defer { program.stop() }
        let leaks = try crash(["leaks", "\(program.pid)"], after: 1.0)
        if leaks.status == 0 || leaks.status == 1 { throw XCTSkip("swref finished before the signal: \(leaks.stderr)") }
        XCTAssertEqual(leaks.status, 2, leaks.stderr)
        XCTAssertTrue(leaks.stderr.contains("swref: internal error (Segmentation fault)"), leaks.stderr)
        XCTAssertTrue(leaks.stderr.contains(" while "), "the phase is named: \(leaks.stderr)")
        usleep(200_000)
        XCTAssertEqual(program.tracerPid, "0", "the target is not left traced")
        XCTAssertNotEqual(program.state, "t", "the target is not left stopped")
    }

    func testCrashInRunExits125() throws {
        // Builds a heap of about 80 MiB, then exits 0: `run` analyses it as it exits.
        let program = try TestPrograms.binary("allocators", key: "allocators-glibc", flags: [], header: "allocator_stats.h")
        let run = try crash(["run", "--", program, "20000", "exit"], after: 2.5)
        if run.status == 0 { throw XCTSkip("swref finished before the signal: \(run.stderr)") }
        XCTAssertEqual(run.status, 125, run.stderr)
        XCTAssertTrue(run.stderr.contains("swref: internal error (Segmentation fault)"), run.stderr)
    }
}
