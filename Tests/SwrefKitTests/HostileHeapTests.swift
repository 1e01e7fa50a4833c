import Foundation
import XCTest

/// Cores of real programs with their heaps corrupted in structured ways (scripts/fuzz-heaps.py:
/// metadata swapped or garbage, reference counts, array counts and capacities, dictionary scales,
/// generic metadata on the heap, interior and self pointers), analysed by every verb: no crash
/// (a signal or swref's "internal error" report), no hang. The script runs at scale outside the suite.
final class HostileHeapTests: XCTestCase {
    func testMutatedHeapsNeverCrashOrHang() throws {
        let swref = try TestPrograms.swrefExecutable()
        let script = TestPrograms.packageRoot.appendingPathComponent("scripts/fuzz-heaps.py").path
        let result = try Shell.run("/usr/bin/env", ["python3", script, "--swref", swref, "--heaps", "120", "--jobs", "2",
                                                    "--timeout", "120", "--keep", TestPrograms.buildDirectory.appendingPathComponent("fuzz").path],
                                   timeout: 1800)
        print(result.stdout.split(separator: "\n").suffix(13).joined(separator: "\n"))
        XCTAssertEqual(result.status, 0, "crashes or hangs:\n\(result.stdout)\n\(result.stderr)")
        XCTAssertTrue(result.stdout.contains("all                           120      0     0"), result.stdout)
    }
}
