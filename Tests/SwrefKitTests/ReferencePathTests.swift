import Foundation
import SwrefKit
import XCTest

/// `swref attach` paths on testdata/paths: every construct's objects sit on the exact path the
/// program's construction implies, with the exact bytes it measured (malloc_usable_size + 8).
final class ReferencePathTests: XCTestCase {
    struct Expectation {
        var count: Int64
        var bytes: Int64
        var frames: [String]
    }

    static func expectations(_ output: String) -> [Expectation] {
        output.split(separator: "\n").filter { $0.hasPrefix("EXPECT ") }.map { line in
            let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
            return Expectation(count: Int64(parts[1])!, bytes: Int64(parts[2])!, frames: parts[3].components(separatedBy: "|"))
        }
    }

    /// A frame pattern ending in `*` matches any frame with that prefix.
    static func matches(_ frames: [String], _ pattern: [String]) -> Bool {
        guard frames.count == pattern.count else { return false }
        return zip(frames, pattern).allSatisfy { frame, want in
            want.hasSuffix("*") ? frame.hasPrefix(String(want.dropLast())) : frame == want
        }
    }

    func checkPaths(_ variant: BuildVariant) throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let program = try RunningProgram(try TestPrograms.binary("paths", variant))
        defer { program.stop() }
        var stdout = ""
        // RunningProgram keeps the READY line; the EXPECT lines came before it on stdout.
        stdout = program.outputBeforeReady
        let expectations = ReferencePathTests.expectations(stdout)
        XCTAssertGreaterThan(expectations.count, 20, "the program printed its expectations")

        let out = TestPrograms.buildDirectory.appendingPathComponent("paths-\(variant).pb.gz").path
        // The expectations follow first-path attribution (goref's): each object on its first path.
        let run = try Shell.swref(["attach", "\(program.pid)", "--attribution", "first-path", "-o", out])
        XCTAssertEqual(run.status, 0, run.stderr)
        let profile = try PprofReader(path: out)
        for expectation in expectations {
            let matching = profile.samples.filter { ReferencePathTests.matches($0.frames, expectation.frames) }
            let count = matching.reduce(0) { $0 + $1.values[0] }
            let bytes = matching.reduce(0) { $0 + $1.values[1] }
            XCTAssertEqual(count, expectation.count, "\(variant) count at \(expectation.frames.joined(separator: " → "))")
            XCTAssertEqual(bytes, expectation.bytes, "\(variant) bytes at \(expectation.frames.joined(separator: " → "))")
        }
        // Weak references do not retain: the Child reaches its Parent only weakly, so the Parent is
        // held by the global alone and nothing sits below the Child.
        XCTAssertFalse(profile.samples.contains { $0.frames.starts(with: ["paths.parent", "child. (paths.Child)"]) && $0.frames.count > 2 })
        // Root kinds are labelled.
        XCTAssertEqual(profile.samples.first { $0.frames == ["paths.registry"] }?.labels["root"], "global")
        XCTAssertTrue(profile.samples.contains { $0.frames.first?.hasPrefix("thread 2 › ") == true && $0.labels["root"] == "stack" })

        // Coverage: the profile accounts for what malloc has in use, and says how much of it only a
        // conservative scan explains.
        let total = Double(profile.total(1))
        XCTAssertEqual(total, Double(program.mallocInUse), accuracy: Double(program.mallocInUse) * 0.02,
                       "\(variant): profile total \(Int(total)) vs mallinfo2 \(program.mallocInUse)")
        let conservative = profile.samples.filter {
            $0.labels["root"] == "conservative" || $0.frames.contains(ReferenceScanner.subObjects)
        }.reduce(0) { $0 + $1.values[1] }
        let unreachable = profile.samples.filter { $0.labels["root"] == "unreachable" }.reduce(0) { $0 + $1.values[1] }
        print("coverage \(variant): total \(Int(total)) B, conservative or $sub_objects$ \(conservative) B "
              + "(\(String(format: "%.1f", Double(conservative) * 100 / total))%), unreachable \(unreachable) B")
    }

    func testPathsDebugBuild() throws { try checkPaths(.debug) }
    func testPathsOptimizedBuild() throws { try checkPaths(.optimized) }

    /// With dominator attribution a root's frame totals what freeing it would free: the registry
    /// frame holds the dictionary, the sessions and their buffers, as the program measured them;
    /// an object two globals hold belongs to neither.
    func testDominatorAttributionGivesRetainedSizes() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        for variant in [BuildVariant.debug, .optimized] {
            let program = try RunningProgram(try TestPrograms.binary("paths", variant))
            defer { program.stop() }
            let expectations = ReferencePathTests.expectations(program.outputBeforeReady)
            let out = TestPrograms.buildDirectory.appendingPathComponent("dominator-\(variant).pb.gz").path
            let run = try Shell.swref(["attach", "\(program.pid)", "--attribution", "dominator", "-o", out])
            XCTAssertEqual(run.status, 0, run.stderr)
            let profile = try PprofReader(path: out)
            func retained(under prefix: [String]) -> (Int64, Int64) {
                let samples = profile.samples.filter { $0.frames.starts(with: prefix) }
                return (samples.reduce(0) { $0 + $1.values[0] }, samples.reduce(0) { $0 + $1.values[1] })
            }
            for root in ["paths.registry", "paths.entries", "paths.tree", "paths.anyBig"] {
                let built = expectations.filter { $0.frames.first == root }
                XCTAssertEqual(retained(under: [root]).0, built.reduce(0) { $0 + $1.count }, "\(variant) \(root) objects")
                XCTAssertEqual(retained(under: [root]).1, built.reduce(0) { $0 + $1.bytes }, "\(variant) \(root) bytes")
            }
            // `captured` is held by its global and by the closure context: freeing either frees nothing.
            XCTAssertEqual(retained(under: ["paths.captured"]).0, 0)
            XCTAssertEqual(profile.samples.first { $0.frames == ["<shared by several roots>", "(paths.Captured)"] }?.values[0], 1)
            XCTAssertEqual(profile.samples.first { $0.frames == ["<shared by several roots>", "(paths.Captured)"] }?.labels["root"], "shared")
        }
    }

    func testMaxDepthFoldsDeeperObjects() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let program = try RunningProgram(try TestPrograms.binary("paths", .optimized))
        defer { program.stop() }
        let full = TestPrograms.buildDirectory.appendingPathComponent("depth-full.pb.gz").path
        let capped = TestPrograms.buildDirectory.appendingPathComponent("depth-2.pb.gz").path
        XCTAssertEqual(try Shell.swref(["attach", "\(program.pid)", "-o", full]).status, 0)
        XCTAssertEqual(try Shell.swref(["attach", "\(program.pid)", "-o", capped, "--max-depth", "2", "--attribution", "first-path"]).status, 0)
        let fullProfile = try PprofReader(path: full), cappedProfile = try PprofReader(path: capped)
        XCTAssertTrue(cappedProfile.samples.allSatisfy { $0.frames.count <= 2 })
        XCTAssertEqual(fullProfile.total(0), cappedProfile.total(0), "folding keeps every object")
        // The session buffers fold into the session frame.
        let folded = cappedProfile.samples.first { $0.frames == ["paths.registry", "$mapval. (paths.Session)"] }
        XCTAssertEqual(folded?.values[0], 40)
        XCTAssertEqual(try Shell.swref(["attach", "\(program.pid)", "--max-depth", "0"]).status == 0, false)
    }
}
