import Foundation
import SwrefKit
import XCTest

/// `swref top` and `swref why` on testdata/paths, against the figures the program measured.
final class TopAndWhyTests: XCTestCase {
    func testTopShowsRetainedSizes() throws {
        let program = try RunningProgram(try TestPrograms.binary("paths", .optimized))
        defer { program.stop() }
        let expectations = ReferencePathTests.expectations(program.outputBeforeReady)
        let registryBytes = expectations.filter { $0.frames.first == "paths.registry" }.reduce(0) { $0 + $1.bytes }
        let sessionBytes = expectations.filter { $0.frames.count >= 2 && $0.frames[0] == "paths.registry" && $0.frames[1].contains("paths.Session") }
            .reduce(0) { $0 + $1.bytes }
        let top = try Shell.swref(["top", "\(program.pid)", "--limit", "40"])
        XCTAssertEqual(top.status, 0, top.stderr)
        XCTAssertTrue(top.stdout.contains("\(formatBytes(UInt64(registryBytes))) ") && top.stdout.contains("paths.registry [global]"), top.stdout)
        let sessionRow = top.stdout.split(separator: "\n").first { $0.hasSuffix("  paths.Session") && $0.contains("20") }
        XCTAssertNotNil(sessionRow, top.stdout)
        XCTAssertTrue(sessionRow?.contains(formatBytes(UInt64(sessionBytes))) == true, "\(sessionRow ?? "") vs \(sessionBytes)")

        // On a profile: frames and their cumulative values.
        let out = TestPrograms.buildDirectory.appendingPathComponent("top.pb.gz").path
        XCTAssertEqual(try Shell.swref(["attach", "\(program.pid)", "-o", out]).status, 0)
        let fromProfile = try Shell.swref(["top", out])
        XCTAssertEqual(fromProfile.status, 0, fromProfile.stderr)
        XCTAssertTrue(fromProfile.stdout.contains("\(formatBytes(UInt64(registryBytes))) ") && fromProfile.stdout.contains("  paths.registry\n"),
                      fromProfile.stdout)
    }

    func testWhyFindsEveryKindOfRoot() throws {
        let program = try RunningProgram(try TestPrograms.binary("paths", .optimized))
        defer { program.stop() }
        // Captured is held by its global and by the closure stored in another global.
        let why = try Shell.swref(["why", "\(program.pid)", "paths.Captured"])
        XCTAssertEqual(why.status, 0, why.stderr)
        XCTAssertTrue(why.stdout.contains("[global] paths.captured"), why.stdout)
        XCTAssertTrue(why.stdout.contains("[global] paths.callback"), why.stdout)
        XCTAssertTrue(why.stdout.contains("closure #2 () -> Swift.Int in paths"), why.stdout)
        // By address (any address inside the block), down a three-step path.
        let wildcard = try Shell.swref(["why", "\(program.pid)", "*Session*", "--objects", "1"])
        XCTAssertTrue(wildcard.stdout.contains("21 objects match"), "20 sessions and the dictionary: \(wildcard.stdout)")
        let sessions = try Shell.swref(["why", "\(program.pid)", "paths.Session", "--objects", "1"])
        XCTAssertTrue(sessions.stdout.contains("20 objects match"), sessions.stdout)
        let address = sessions.stdout.split(separator: " ").first { $0.hasPrefix("0x") }.map(String.init)!
        let byAddress = try Shell.swref(["why", "\(program.pid)", address])
        XCTAssertTrue(byAddress.stdout.contains("[global] paths.registry"), byAddress.stdout)
        XCTAssertTrue(byAddress.stdout.contains("$mapval. (paths.Session) → paths.Session \(address)"), byAddress.stdout)
        // The object held on thread 2's stack: a stack root.
        let stack = try Shell.swref(["why", "\(program.pid)", "paths.StackHeld"])
        XCTAssertTrue(stack.stdout.contains("[stack] thread 2 › "), stack.stdout)
        let none = try Shell.swref(["why", "\(program.pid)", "paths.NoSuchType"])
        XCTAssertEqual(none.status, 2)
        XCTAssertEqual(none.stderr.split(separator: "\n").count, 1, none.stderr)
    }
}
