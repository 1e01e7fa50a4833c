import Foundation
import SwrefKit
import XCTest

/// testdata/atomics: objects held only through `Mutex` and `Atomic` storage, which reflection
/// cannot lay out, are reached through the holder's field, not reported as leaks.
final class AtomicsTests: XCTestCase {
    func testObjectsHeldThroughAtomicsAreNotLeaks() throws {
        let program = try RunningProgram(try TestPrograms.binary("atomics", .debug))
        defer { program.stop() }
        let profile = TestPrograms.buildDirectory.appendingPathComponent("atomics.pb.gz").path
        let result = try Shell.swref(["leaks", "\(program.pid)", "-o", profile])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("no leaks"), result.stdout)

        guard PprofReader.isAvailable else { return }
        let read = try PprofReader(path: profile)
        func count(_ frame: String) -> Int64 {
            read.samples.filter { $0.frames.last == frame }.reduce(0) { $0 + $1.values[0] }
        }
        XCTAssertEqual(count("lock. (atomics.Held)"), 3)
        XCTAssertEqual(count("current. (atomics.Cached)"), 3)
    }
}
