import Foundation
import XCTest

/// `swref check` does not pass a profile whose heap was not read whole: a core with one damaged
/// chunk header gives a partial heap (its profile's `heap:` comment says so), and a check against
/// it exits 125 with the reason, where the same check of the intact heap passes.
final class CheckCoverageTests: XCTestCase {
    var scratch: URL { TestPrograms.buildDirectory }

    func testCheckRefusesAProfileOfAPartlyReadHeap() throws {
        let (exe, core, address) = try DamagedCores.census(named: "check-coverage.core")
        let intact = scratch.appendingPathComponent("check-coverage-intact.pb.gz").path
        XCTAssertEqual(try Shell.swref(["core", exe, core, "-o", intact]).status, 0)

        // The chunk header of one census.Node grows by 16: glibc's walk skips the damage (partial).
        try DamagedCores.growChunkHeader(of: address, inCore: core)
        let partial = scratch.appendingPathComponent("check-coverage-partial.pb.gz").path
        let written = try Shell.swref(["core", exe, core, "-o", partial])
        XCTAssertEqual(written.status, 0, written.stderr)

        // The same heap read whole passes; read in part, it is not passed, as profile or as baseline.
        XCTAssertEqual(try Shell.swref(["check", "--baseline", intact, intact]).status, 0)
        let json = scratch.appendingPathComponent("check-coverage.json").path
        let checked = try Shell.swref(["check", "--baseline", intact, "--max-growth-percent", "50", "--json", json, partial])
        XCTAssertEqual(checked.status, 125, checked.stdout + checked.stderr)
        XCTAssertTrue(checked.stderr.contains("\(partial): glibc malloc (partial: "), checked.stderr)
        XCTAssertTrue(checked.stderr.contains("not passed as clean"), checked.stderr)
        XCTAssertFalse(checked.stdout.contains("check: no regression"), checked.stdout)
        let verdict = String(decoding: try Data(contentsOf: URL(fileURLWithPath: json)), as: UTF8.self)
        XCTAssertTrue(verdict.contains("\"incomplete_heaps\""), verdict)
        let asBaseline = try Shell.swref(["check", "--baseline", partial, intact])
        XCTAssertEqual(asBaseline.status, 125, asBaseline.stderr)
        XCTAssertTrue(asBaseline.stderr.contains("\(partial): glibc malloc (partial: "), asBaseline.stderr)
    }
}
