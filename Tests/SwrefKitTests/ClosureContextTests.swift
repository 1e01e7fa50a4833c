import Foundation
import SwrefKit
import XCTest

/// Closure contexts are named by what they capture, so two closures can share a name and not a
/// layout; each must be read with its own. (On the Hummingbird server, NIO's generic child-channel
/// wrapper and a reabstraction thunk were both `box<@Sendable () -> ()>`: read with the thunk's
/// layout, the wrapper lost its capture, and the application's responder was reported leaked.)
final class ClosureContextTests: XCTestCase {
    func checkContexts(_ variant: BuildVariant) throws {
        let count = 10
        let program = try RunningProgram(try TestPrograms.binary("contexts", variant), ["\(count)"])
        defer { program.stop() }

        // The situation the test is about: one name, several metadata (the plain wrapper, the
        // generic one, the thunks that store them in the array).
        let analysis = HeapAnalysis(target: try LiveCapture.capture(pid: program.pid))
        let boxes = analysis.objects.types.filter { $0.name == "box<() -> ()>" }
        XCTAssertGreaterThanOrEqual(Set(boxes.map(\.metadata)).count, 3, "\(variant): \(boxes.map(\.metadata))")
        XCTAssertGreaterThanOrEqual(analysis.census.row(named: "box<() -> ()>")?.count ?? 0, count, "\(variant): one census row for the name")

        let leaks = try Shell.swref(["leaks", "\(program.pid)"])
        XCTAssertEqual(leaks.status, 0, "\(variant): \(leaks.stdout)")
        // Every Held on its path from the global, through both kinds of wrapper (`body`'s context
        // is the Held itself: named by its type, the closure in the label).
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let out = TestPrograms.buildDirectory.appendingPathComponent("contexts-\(variant).pb.gz").path
        let run = try Shell.swref(["attach", "\(program.pid)", "-o", out])
        XCTAssertEqual(run.status, 0, run.stderr)
        let held = try PprofReader(path: out).samples.filter {
            $0.frames.first == "contexts.wrapped" && $0.frames.last == "$value.{closure #1 () -> () in contexts}. (contexts.Held)"
        }
        XCTAssertEqual(held.reduce(0) { $0 + $1.values[0] }, Int64(count), "\(variant): \(held.map(\.frames))")
        XCTAssertTrue(held.contains { $0.frames.contains { $0.contains("in contexts.wrapGeneric<A>") } }, "\(variant): \(held.map(\.frames))")
        XCTAssertTrue(held.contains { $0.frames.contains { $0.contains("in contexts.wrap(") } }, "\(variant): \(held.map(\.frames))")
    }

    func testContextsDebugBuild() throws { try checkContexts(.debug) }
    func testContextsOptimizedBuild() throws { try checkContexts(.optimized) }
}
