import Foundation
import XCTest

/// SIGTERM to `swref run` ends the program it runs too (it used to go on as an orphan, and swref
/// exited 143 without a word).
final class RunSignalTests: XCTestCase {
    func testSigtermIsPassedOnToTheProgram() throws {
        let marker = "swref-run-signal-\(getpid())"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try TestPrograms.swrefExecutable())
        process.arguments = ["run", "--", "/bin/bash", "-c", "exec -a \(marker) sleep 60"]
        let err = Pipe()
        process.standardError = err
        try process.run()
        usleep(700_000)
        process.terminate()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)
        XCTAssertTrue(text.contains("interrupted"), text)
        usleep(300_000)
        let left = try Shell.run("/usr/bin/pgrep", ["-f", marker])
        XCTAssertNotEqual(left.status, 0, "the program swref ran is still there: \(left.stdout)")
    }
}
