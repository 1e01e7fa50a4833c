import Foundation
import SwrefKit
import XCTest

/// Suspended tasks as roots: what an async frame holds is attributed to its task and function, what
/// the closure a task runs captured to the task's operation.
final class TaskTests: XCTestCase {
    func checkTasks(_ variant: BuildVariant) throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let count = 8
        let program = try RunningProgram(try TestPrograms.binary("tasks", variant), ["\(count)"])
        defer { program.stop() }
        for attribution in ["first-path", "dominator"] {
            let out = TestPrograms.buildDirectory.appendingPathComponent("tasks-\(variant)-\(attribution).pb.gz").path
            let run = try Shell.swref(["attach", "\(program.pid)", "--attribution", attribution, "-o", out])
            XCTAssertEqual(run.status, 0, run.stderr)
            let profile = try PprofReader(path: out)
            // One Payload per task, in handleRequest's frame, each task its own root.
            let payloads = profile.samples.filter { $0.frames.count == 2 && $0.frames[1] == "(tasks.Payload)" }
            XCTAssertEqual(payloads.reduce(0) { $0 + $1.values[0] }, Int64(count), "\(variant) \(attribution)")
            XCTAssertTrue(payloads.allSatisfy {
                $0.frames[0].hasPrefix("task #") && $0.frames[0].hasSuffix(" › tasks.handleRequest(Swift.Int) async -> ()") && $0.labels["root"] == "task"
            }, "\(variant) \(attribution): \(payloads.map(\.frames))")
            XCTAssertEqual(Set(payloads.map { $0.frames[0] }).count, count, "a distinct task for each")
            XCTAssertTrue(payloads.allSatisfy { $0.values[0] == 1 })
            // Their arrays below them.
            XCTAssertEqual(profile.samples.filter { $0.frames.count == 3 && $0.frames[1] == "(tasks.Payload)" && $0.frames[2] == "data. ([UInt8])" }
                .reduce(0) { $0 + $1.values[0] }, Int64(count))
            // The actor's dictionary hangs off the global that holds the actor.
            XCTAssertEqual(profile.samples.first { $0.frames == ["tasks.store", "items. (Dictionary<Int, tasks.Stored>)", "$mapval. (tasks.Stored)"] }?.values[0], 10)
            // The task group's endless children: each GroupHeld in its child task, and the closure the
            // child runs (a thunk's box, then the closure context capturing the GroupHeld) held by
            // the task itself, under its operation. (With dominators, both hold the GroupHeld: shared.)
            let held = profile.samples.filter { $0.frames.last == "(tasks.GroupHeld)" }
            XCTAssertEqual(held.reduce(0) { $0 + $1.values[0] }, 4, "\(variant) \(attribution): \(held.map(\.frames))")
            if attribution == "first-path" {
                let children = Set(held.compactMap { $0.frames.first?.components(separatedBy: " › ").first })
                XCTAssertEqual(children.count, 4, "a child task for each: \(held.map(\.frames))")
                XCTAssertTrue(children.allSatisfy { $0.hasPrefix("task #") }, "\(children)")
                for child in children {
                    let operation = profile.samples.filter { $0.frames.first == "\(child) › operation" }
                    XCTAssertGreaterThanOrEqual(operation.reduce(0) { $0 + $1.values[0] }, 2, "\(variant) \(child): \(operation.map(\.frames))")
                }
                // The task-local value, bound by withValue in serveWithContext's task.
                let request = profile.samples.first { $0.frames.last == "(tasks.RequestInfo)" }
                XCTAssertTrue(request?.frames.first?.hasPrefix("task #") == true, "\(request?.frames ?? [])")
                XCTAssertTrue(request?.frames.first?.contains("serveWithContext") == true, "\(request?.frames ?? [])")
            }
        }
        // Objects held only by suspended tasks are not leaks.
        let leaks = try Shell.swref(["leaks", "\(program.pid)"])
        XCTAssertEqual(leaks.status, 0, leaks.stdout)
    }

    func testTasksDebugBuild() throws { try checkTasks(.debug) }
    func testTasksOptimizedBuild() throws { try checkTasks(.optimized) }
}

/// Blocks waiting on a DispatchQueue hold what they capture: the queue is their root.
final class DispatchQueueTests: XCTestCase {
    func testQueuedBlocksAreAttributedToTheirQueue() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        for variant in [BuildVariant.debug, .optimized] {
            let program = try RunningProgram(try TestPrograms.binary("dispatch", variant), ["5"])
            defer { program.stop() }
            for attribution in ["first-path", "dominator"] {
                let out = TestPrograms.buildDirectory.appendingPathComponent("dispatch-\(variant)-\(attribution).pb.gz").path
                let run = try Shell.swref(["attach", "\(program.pid)", "--attribution", attribution, "-o", out])
                XCTAssertEqual(run.status, 0, run.stderr)
                let profile = try PprofReader(path: out)
                let jobs = profile.samples.filter { ($0.frames.last ?? "").hasSuffix("(dispatch.Job)") }
                XCTAssertEqual(jobs.reduce(0) { $0 + $1.values[0] }, 5, "\(variant) \(attribution)")
                XCTAssertTrue(jobs.allSatisfy { $0.frames.first == "dispatch queue swref.work › block" && $0.labels["root"] == "dispatch" },
                              "\(variant) \(attribution): \(jobs.map(\.frames))")
            }
            XCTAssertEqual(try Shell.swref(["leaks", "\(program.pid)"]).status, 0, "queued work is not leaked")
        }
    }
}
