import Foundation
import SwrefKit
import XCTest

/// testdata/names: objects the program names but the heap hides — an object that is its closure's
/// whole context, a node nested in a generic list, errors boxed as `any Error`, an object the
/// optimiser moved into an async task's frame — each counted and named by its own type.
final class NameTests: XCTestCase {
    static let listeners = 6, tasks = 3
    static let closure = "{closure #1 () -> Swift.Int in names.register(names.Listener) -> ()}"

    struct Captured {
        let program: RunningProgram
        let paths: PprofReader
        let types: PprofReader
    }

    func capture(_ variant: BuildVariant) throws -> Captured {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let program = try RunningProgram(try TestPrograms.binary("names", variant))
        let paths = TestPrograms.buildDirectory.appendingPathComponent("names-\(variant).pb.gz").path
        let types = TestPrograms.buildDirectory.appendingPathComponent("names-types-\(variant).pb.gz").path
        let run = try Shell.swref(["attach", "\(program.pid)", "--attribution", "first-path", "-o", paths])
        XCTAssertEqual(run.status, 0, run.stderr)
        let census = try Shell.swref(["attach", "\(program.pid)", "--view", "types", "-o", types])
        XCTAssertEqual(census.status, 0, census.stderr)
        return Captured(program: program, paths: try PprofReader(path: paths), types: try PprofReader(path: types))
    }

    /// A closure that captures one class reference has that object as its context: each listener
    /// is counted under its own type, in a frame that still names the closure, with its array below.
    func checkClosureContexts(_ variant: BuildVariant) throws {
        let captured = try capture(variant)
        defer { captured.program.stop() }
        let profile = captured.paths
        let listeners = profile.samples.filter { $0.frames.count == 2 && $0.frames[0] == "names.listeners" }
        XCTAssertEqual(listeners.filter { $0.frames[1].hasSuffix(". (names.Listener)") }.reduce(0) { $0 + $1.values[0] },
                       Int64(NameTests.listeners), "\(variant): \(listeners.map(\.frames))")
        for index in 0..<NameTests.listeners {
            let frame = "[\(index)].\(NameTests.closure). (names.Listener)"
            XCTAssertEqual(profile.samples.first { $0.frames == ["names.listeners", frame] }?.values[0], 1, "\(variant) \(frame)")
            XCTAssertEqual(profile.samples.first { $0.frames == ["names.listeners", frame, "hits. ([Int])"] }?.values[0], 1,
                           "\(variant) the listener's array under it")
        }
        XCTAssertFalse(profile.samples.contains { $0.frames.contains { $0.hasSuffix("(closure #1 () -> Swift.Int in names.register(names.Listener) -> ())") } },
                       "\(variant): no frame is named after the closure alone")
    }

    func testClosureContextsDebugBuild() throws { try checkClosureContexts(.debug) }
    func testClosureContextsOptimizedBuild() throws { try checkClosureContexts(.optimized) }

    /// A node type nested in a generic list is `LinkedList<Label>.Node`, not `…Node<>`; generic
    /// arguments of the classes that have their own are all there.
    func testGenericNamesHaveTheirArguments() throws {
        let captured = try capture(.optimized)
        defer { captured.program.stop() }
        let types = captured.types
        XCTAssertEqual(types.samples.first { $0.frames == ["names.LinkedList<names.Label>.Node"] }?.values[0], 4)
        XCTAssertEqual(types.samples.first { $0.frames == ["names.Node<names.Label>"] }?.values[0], 5)
        XCTAssertEqual(types.samples.first { $0.frames == ["names.Outer<Swift.Int>.Inner<names.Label>"] }?.values[0], 1)
        let empty = (types.samples + captured.paths.samples).flatMap(\.frames).filter { $0.contains("<>") }
        XCTAssertEqual(empty, [], "no empty argument list")
        XCTAssertEqual(captured.paths.samples.first { $0.frames == ["names.queue", "head. (names.LinkedList<names.Label>.Node)"] }?.values[0], 1)
    }

    /// Errors boxed as `any Error` are laid out by the boxed value's type: a payload-less enum case
    /// holds nothing, a struct's class field is followed under its name, and no word of a box is
    /// read conservatively.
    func checkErrorBoxes(_ variant: BuildVariant) throws {
        let captured = try capture(variant)
        defer { captured.program.stop() }
        let types = captured.types, paths = captured.paths
        XCTAssertEqual(types.samples.first { $0.frames == ["Swift.Error (boxed names.ParseError)"] }?.values[0], 1, variant.rawValue)
        XCTAssertEqual(types.samples.first { $0.frames == ["Swift.Error (boxed names.DetailedError)"] }?.values[0], 2, variant.rawValue)
        XCTAssertNil(types.samples.first { $0.frames == ["Swift.Error (boxed)"] }, "\(variant): every box's type is known")
        for index in 0..<2 {
            let box = "[\(index)]. (Error (boxed names.DetailedError))"
            XCTAssertEqual(paths.samples.first { $0.frames == ["names.stored", box] }?.values[0], 1, "\(variant) \(box)")
            XCTAssertEqual(paths.samples.first { $0.frames == ["names.stored", box, "owner. (names.Label)"] }?.values[0], 1, "\(variant) \(box) owner")
        }
        XCTAssertFalse(paths.samples.contains { sample in
            sample.frames.contains { $0.contains("(Error (boxed") } && sample.frames.last == ReferenceScanner.subObjects
        }, "\(variant): nothing under an error box is found word by word")

        let boxes = captured.program.outputBeforeReady.split(separator: "\n").filter { $0.hasPrefix("ERRORBOX ") }.map { String($0.dropFirst(9)) }
        XCTAssertEqual(boxes.count, 3)
        for box in boxes {
            let inspect = try Shell.swref(["inspect", "\(captured.program.pid)", box])
            XCTAssertEqual(inspect.status, 0, inspect.stderr)
            XCTAssertTrue(inspect.stdout.contains("Swift.Error (boxed names."), inspect.stdout)
            XCTAssertFalse(inspect.stdout.contains("every word read as a possible reference"), "\(variant) \(box): \(inspect.stdout)")
        }
        let detailed = try Shell.swref(["inspect", "\(captured.program.pid)", boxes[1]])
        // The header and the type's metadata and witness table, then `code` at +32 and `owner` at +40.
        XCTAssertTrue(detailed.stdout.contains("+40 reference owner"), detailed.stdout)
    }

    func testErrorBoxesDebugBuild() throws { try checkErrorBoxes(.debug) }
    func testErrorBoxesOptimizedBuild() throws { try checkErrorBoxes(.optimized) }

    /// At -O the non-escaping `Scratch` of each suspended `work` lives in its async frame (no heap
    /// block): swref finds it there and names it, with its array below, in the frame's task. At
    /// -Onone it is a heap object the frame holds. Either way each array sits under a Scratch.
    func checkTaskPromotedObjects(_ variant: BuildVariant) throws {
        let captured = try capture(variant)
        defer { captured.program.stop() }
        let heapScratches = captured.types.samples.first { $0.frames == ["names.Scratch"] }?.values[0] ?? 0
        let arrays = captured.paths.samples.filter { $0.frames.last == "data. ([UInt8])" && $0.frames.first?.hasPrefix("task #") == true }
        XCTAssertEqual(arrays.reduce(0) { $0 + $1.values[0] }, Int64(NameTests.tasks), "\(variant): \(arrays.map(\.frames))")
        XCTAssertEqual(Set(arrays.map { $0.frames[0].split(separator: " ")[1] }).count, NameTests.tasks, "\(variant): one task each")
        let function = "names.work(Swift.Int) async -> Swift.Int"
        switch variant {
        case .debug:
            XCTAssertEqual(heapScratches, Int64(NameTests.tasks))
            XCTAssertTrue(arrays.allSatisfy { $0.frames.count == 3 && $0.frames[0].hasSuffix(" › \(function)") && $0.frames[1] == "(names.Scratch)" },
                          "\(arrays.map(\.frames))")
        default:
            XCTAssertEqual(heapScratches, 0, "the optimiser promoted every Scratch out of the heap")
            XCTAssertTrue(arrays.allSatisfy { $0.frames.count == 2 && $0.frames[0].hasSuffix(" › \(function) › (names.Scratch)") },
                          "\(arrays.map(\.frames))")
        }
        XCTAssertTrue(arrays.allSatisfy { $0.labels["root"] == "task" })
        let leaks = try Shell.swref(["leaks", "\(captured.program.pid)"])
        XCTAssertEqual(leaks.status, 0, "\(variant): \(leaks.stdout)")
    }

    func testTaskPromotedObjectsDebugBuild() throws { try checkTaskPromotedObjects(.debug) }
    func testTaskPromotedObjectsOptimizedBuild() throws { try checkTaskPromotedObjects(.optimized) }
}
