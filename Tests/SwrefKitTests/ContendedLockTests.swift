import Foundation
import SwrefKit
import XCTest

/// A target whose threads contend Swift's `Mutex`: a priority-inheritance futex, like the locks of
/// the concurrency runtime and libdispatch, whose word the kernel writes when a thread waits. A
/// capture that write-protects the target so that such a write fails — synchronous userfaultfd
/// write protection does: the kernel's write cannot wait for a handler and fails with EFAULT, and
/// `Mutex` traps — would crash it (tried in the tenth session, and it did). Every capture method,
/// twice: the target runs on, and its lock keeps changing hands.
final class ContendedLockTests: XCTestCase {
    func testContendedMutexesSurviveEveryCapture() throws {
        let running = try RunningProgram(try TestPrograms.binary("mutexes", .optimized))
        defer { running.stop() }
        for capture in ["precopy", "fork", "fork-in-place", "stop-the-world"] {
            for round in 0..<2 {
                let out = TestPrograms.buildDirectory.appendingPathComponent("mutexes-\(capture)-\(round).pb.gz").path
                let run = try Shell.swref(["attach", "\(running.pid)", "-o", out, "--capture", capture])
                XCTAssertEqual(run.status, 0, "\(capture): \(run.stderr)")
                usleep(300_000) // long enough for the lock to change hands a few times after the capture
                XCTAssertTrue(running.process.isRunning, "the target died after a \(capture) capture")
                XCTAssertTrue(["S", "R"].contains(running.state), "\(capture): state \(running.state)")
            }
        }
        let leaks = try Shell.swref(["leaks", "\(running.pid)"])
        XCTAssertEqual(leaks.status, 0, leaks.stderr)
        XCTAssertTrue(running.process.isRunning)
    }
}
