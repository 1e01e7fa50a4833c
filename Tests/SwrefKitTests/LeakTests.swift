import Foundation
import SwrefKit
import XCTest

/// Retain cycles and lost references in testdata/leaks: exact shapes, counts and bytes; nothing
/// reported for weak/unowned back-references, stack-only, global, lazy static, Foundation and
/// Dispatch objects.
final class LeakTests: XCTestCase {
    struct Expected: Equatable {
        var instances: Int
        var kind: String
        var objectsEach: Int
        var bytesEach: Int
        var shape: String
    }

    static func expectations(_ output: String) -> [Expected] {
        output.split(separator: "\n").filter { $0.hasPrefix("EXPECT-LEAK ") }.map { line in
            let parts = line.split(separator: " ", maxSplits: 5).map(String.init)
            return Expected(instances: Int(parts[1])!, kind: parts[2], objectsEach: Int(parts[3])!, bytesEach: Int(parts[4])!, shape: parts[5])
        }
    }

    static func groups(inJSON path: String) throws -> (summary: [String: Any], groups: [Expected]) {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        XCTAssertEqual(object["schema"] as? String, "swref-leaks/1")
        let leaks = object["leaks"] as! [String: Any]
        let groups = (leaks["groups"] as! [[String: Any]]).map { group in
            Expected(instances: group["instances"] as! Int, kind: group["kind"] as! String, objectsEach: group["objectsEach"] as! Int,
                     bytesEach: group["bytesEach"] as! Int, shape: group["shape"] as! String)
        }
        return (leaks, groups)
    }

    func checkLeaky(_ variant: BuildVariant) throws {
        let program = try RunningProgram(try TestPrograms.binary("leaks", variant), ["leaky"])
        defer { program.stop() }
        let expected = LeakTests.expectations(program.outputBeforeReady)
        XCTAssertEqual(expected.count, 5)
        let json = TestPrograms.buildDirectory.appendingPathComponent("leaky-\(variant).json").path
        let profile = TestPrograms.buildDirectory.appendingPathComponent("leaky-\(variant).pb.gz").path
        let result = try Shell.swref(["leaks", "\(program.pid)", "--json", json, "-o", profile])
        XCTAssertEqual(result.status, 1, "leaks found: exit 1. \(result.stderr)")
        let (summary, groups) = try LeakTests.groups(inJSON: json)
        XCTAssertEqual(groups.sorted { $0.shape < $1.shape }, expected.sorted { $0.shape < $1.shape }, "\(variant)")
        XCTAssertEqual(summary["leakedObjects"] as? Int, expected.reduce(0) { $0 + $1.instances * $1.objectsEach })
        XCTAssertEqual(summary["leakedBytes"] as? Int, expected.reduce(0) { $0 + $1.instances * $1.bytesEach })
        XCTAssertTrue(result.stdout.contains("40 × ROOT CYCLE: leaks.Leaky.other → leaks.Leaky.other → leaks.Leaky, 2 objects"), result.stdout)
        XCTAssertTrue(result.stdout.contains("retains 1 × Swift._ContiguousArrayStorage<Swift.UInt8>"), result.stdout)

        // The profile shows them under <leaked>, by cycle.
        guard PprofReader.isAvailable else { return }
        let read = try PprofReader(path: profile)
        let leaky = read.samples.filter { $0.frames == ["<leaked>", "ROOT CYCLE: leaks.Leaky.other → leaks.Leaky.other → leaks.Leaky"] }
        XCTAssertEqual(leaky.reduce(0) { $0 + $1.values[0] }, 80)
        XCTAssertEqual(leaky.first?.labels["root"], "leaked")
        XCTAssertEqual(read.samples.filter { $0.frames.first == "<leaked>" }.reduce(0) { $0 + $1.values[0] },
                       Int64(summary["leakedObjects"] as! Int))
    }

    func testLeakyProgramDebugBuild() throws { try checkLeaky(.debug) }
    func testLeakyProgramOptimizedBuild() throws { try checkLeaky(.optimized) }

    func checkClean(_ variant: BuildVariant) throws {
        let program = try RunningProgram(try TestPrograms.binary("leaks", variant), ["clean"])
        defer { program.stop() }
        let json = TestPrograms.buildDirectory.appendingPathComponent("clean-\(variant).json").path
        let result = try Shell.swref(["leaks", "\(program.pid)", "--json", json])
        XCTAssertEqual(result.status, 0, "\(variant): \(result.stdout)\(result.stderr)")
        let (summary, groups) = try LeakTests.groups(inJSON: json)
        XCTAssertEqual(groups, [], "\(variant): \(result.stdout)")
        XCTAssertEqual(summary["leakedObjects"] as? Int, 0)
        XCTAssertTrue(result.stdout.contains("no leaks"))
    }

    /// `leaks --timings` and `run --timings` print the phases (they were accepted and ignored).
    func testLeaksAndRunPrintTimings() throws {
        let exe = try TestPrograms.binary("leaks", .optimized)
        let program = try RunningProgram(exe, ["clean"])
        let leaks = try Shell.swref(["leaks", "\(program.pid)", "--timings"])
        program.stop()
        XCTAssertEqual(leaks.status, 0, leaks.stderr)
        XCTAssertTrue(leaks.stderr.contains("swref: timings capture=") && leaks.stderr.contains(" graph="), leaks.stderr)
        let run = try Shell.swref(["run", "--timings", "--", exe, "clean", "exit", "0"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("swref: timings ") && run.stderr.contains(" leaks="), run.stderr)
    }

    func testCleanProgramDebugBuild() throws { try checkClean(.debug) }
    func testCleanProgramOptimizedBuild() throws { try checkClean(.optimized) }

    func testRunAtExitStatusesAndSuppressions() throws {
        let exe = try TestPrograms.binary("leaks", .optimized)
        let json = TestPrograms.buildDirectory.appendingPathComponent("run.json").path
        let leaky = try Shell.swref(["run", "--fail-on-leaks", "--json", json, "--", exe, "leaky", "exit", "0"])
        XCTAssertEqual(leaky.status, 1, leaky.stderr)
        XCTAssertTrue(leaky.stderr.contains("ROOT CYCLE: leaks.RingA.next → leaks.RingB.next → leaks.RingC.next → leaks.RingA"), leaky.stderr)
        let (summary, groups) = try LeakTests.groups(inJSON: json)
        XCTAssertEqual(groups.count, 5)
        XCTAssertEqual(summary["leakedObjects"] as? Int, 40 * 2 + 5 * 2 + 3 * 3 + 1 + 2)
        let program = (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any])["program"] as! [String: Any]
        XCTAssertEqual(program["exitStatus"] as? Int, 0)

        XCTAssertEqual(try Shell.swref(["run", "--fail-on-leaks", "--", exe, "clean", "exit", "0"]).status, 0)
        XCTAssertEqual(try Shell.swref(["run", "--", exe, "leaky", "exit", "0"]).status, 0, "leaks without --fail-on-leaks")
        XCTAssertEqual(try Shell.swref(["run", "--fail-on-leaks", "--", exe, "leaky", "exit", "3"]).status, 3, "the program's failure passes through")
        XCTAssertEqual(try Shell.swref(["run", "--", "/nonexistent/program"]).status, 127)

        // Suppressing every leak makes the run clean; suppressing some does not.
        let all = TestPrograms.buildDirectory.appendingPathComponent("all.supp").path
        try "# known leaks\nleak:leaks.Leaky\nleak:leaks.Child\ntype:leaks.Ring?\nleak:Handler\nleak:Orphan\n".write(toFile: all, atomically: true, encoding: .utf8)
        let suppressed = try Shell.swref(["run", "--fail-on-leaks", "--suppressions", all, "--json", json, "--", exe, "leaky", "exit", "0"])
        XCTAssertEqual(suppressed.status, 0, suppressed.stderr)
        XCTAssertEqual(try LeakTests.groups(inJSON: json).summary["suppressedObjects"] as? Int, 102)
        let some = TestPrograms.buildDirectory.appendingPathComponent("some.supp").path
        try "leak:leaks.Leaky\n".write(toFile: some, atomically: true, encoding: .utf8)
        XCTAssertEqual(try Shell.swref(["run", "--fail-on-leaks", "--suppressions", some, "--", exe, "leaky", "exit", "0"]).status, 1)
        let bad = TestPrograms.buildDirectory.appendingPathComponent("bad.supp").path
        try "nonsense\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let badRun = try Shell.swref(["run", "--suppressions", bad, "--", exe, "clean", "exit", "0"])
        XCTAssertEqual(badRun.status, 125)
        XCTAssertTrue(badRun.stderr.contains("suppressions line 1"), badRun.stderr)
    }

    func testLeaksFromACore() throws {
        let exe = try TestPrograms.binary("leaks", .optimized)
        let program = try RunningProgram(exe, ["leaky"])
        let core = TestPrograms.buildDirectory.appendingPathComponent("leaky.core").path
        XCTAssertEqual(try Shell.swref(["dump", "\(program.pid)", "-o", core]).status, 0)
        let live = try Shell.swref(["leaks", "\(program.pid)"])
        program.stop()
        let fromCore = try Shell.swref(["leaks", "--core", exe, core])
        XCTAssertEqual(fromCore.status, 1, fromCore.stderr)
        func shapes(_ text: String) -> [String] {
            text.split(separator: "\n").filter { $0.contains("ROOT") }.map(String.init).sorted()
        }
        XCTAssertEqual(shapes(fromCore.stdout), shapes(live.stdout))
        XCTAssertEqual(shapes(fromCore.stdout).count, 5)
    }

    func testDiffAndCheck() throws {
        let exe = try TestPrograms.binary("leaks", .optimized)
        let clean = TestPrograms.buildDirectory.appendingPathComponent("check-clean.pb.gz").path
        let leaky = TestPrograms.buildDirectory.appendingPathComponent("check-leaky.pb.gz").path
        XCTAssertEqual(try Shell.swref(["run", "-o", clean, "--", exe, "clean", "exit", "0"]).status, 0)
        XCTAssertEqual(try Shell.swref(["run", "-o", leaky, "--", exe, "leaky", "exit", "0"]).status, 0)
        let json = TestPrograms.buildDirectory.appendingPathComponent("diff.json").path
        let diff = try Shell.swref(["diff", clean, leaky, "--json", json])
        XCTAssertEqual(diff.status, 0, diff.stderr)
        XCTAssertTrue(diff.stdout.contains("+2.5 KiB +80 objects  ROOT CYCLE: leaks.Leaky.other → leaks.Leaky.other → leaks.Leaky"), diff.stdout)
        let parsed = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        XCTAssertEqual(parsed["schema"] as? String, "swref-diff/1")
        XCTAssertEqual((parsed["newLeaks"] as! [[String: Any]]).count, 5)
        XCTAssertEqual(try Shell.swref(["check", "--baseline", clean, leaky]).status, 1, "new leaks are a regression")
        XCTAssertEqual(try Shell.swref(["check", "--baseline", leaky, leaky]).status, 0)
        XCTAssertEqual(try Shell.swref(["check", "--baseline", clean, "--max-growth-bytes", "100000", clean]).status, 0)
        // A profile of the same program, run again: only addresses differ, so nothing grew.
        let again = TestPrograms.buildDirectory.appendingPathComponent("check-clean-2.pb.gz").path
        XCTAssertEqual(try Shell.swref(["run", "-o", again, "--", exe, "clean", "exit", "0"]).status, 0)
        XCTAssertEqual(try Shell.swref(["check", "--baseline", clean, "--max-growth-percent", "5", again]).status, 0)
        let supp = TestPrograms.buildDirectory.appendingPathComponent("check.supp").path
        try "leak:leaks.\n".write(toFile: supp, atomically: true, encoding: .utf8)
        XCTAssertEqual(try Shell.swref(["check", "--baseline", clean, "--suppressions", supp, leaky]).status, 0)
        let garbage = TestPrograms.buildDirectory.appendingPathComponent("garbage.pb.gz").path
        try Data([0x1f, 0x8b, 1, 2, 3]).write(to: URL(fileURLWithPath: garbage))
        let broken = try Shell.swref(["diff", clean, garbage])
        XCTAssertEqual(broken.status, 2)
        XCTAssertEqual(broken.stderr.split(separator: "\n").count, 1, broken.stderr)
    }
}

/// The CI recipe of docs/leaks-and-ci.md on a real package: its XCTest bundle under `swref run`.
final class XCTestUnderRunTests: XCTestCase {
    func testSwiftTestBundleUnderRun() throws {
        let package = TestPrograms.testdata.appendingPathComponent("xctest-leak")
        let build = try Shell.run("/usr/bin/env", ["swift", "build", "--build-tests", "--package-path", package.path], timeout: 600)
        XCTAssertEqual(build.status, 0, build.stderr)
        let bundle = package.appendingPathComponent(".build/debug/WidgetsPackageTests.xctest").path
        let json = TestPrograms.buildDirectory.appendingPathComponent("xctest.json").path

        let leaking = try Shell.swref(["run", "--fail-on-leaks", "--json", json, "--", bundle], environment: ["SWREF_TEST_LEAK": "1"])
        XCTAssertEqual(leaking.status, 1, leaking.stderr)
        let (summary, groups) = try LeakTests.groups(inJSON: json)
        XCTAssertTrue(groups.contains { $0.shape == "Widgets.Widget.peer → Widgets.Widget.peer → Widgets.Widget" && $0.instances == 1 },
                      "\(groups)")
        XCTAssertEqual(summary["leakedObjects"] as? Int, 2, "only the widgets count; XCTest's and Foundation's leftovers are system")
        XCTAssertGreaterThan(summary["suppressedObjects"] as? Int ?? 0, 0)

        let clean = try Shell.swref(["run", "--fail-on-leaks", "--", bundle])
        XCTAssertEqual(clean.status, 0, clean.stderr)
        let failing = try Shell.swref(["run", "--fail-on-leaks", "--json", json, "--", bundle], environment: ["SWREF_TEST_FAIL": "1"])
        XCTAssertEqual(failing.status, 1, "the test bundle's own failure status")
        let program = (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any])["program"] as! [String: Any]
        XCTAssertEqual(program["exitStatus"] as? Int, 1)
        XCTAssertEqual(try LeakTests.groups(inJSON: json).summary["leakedObjects"] as? Int, 0)
    }
}
