import Foundation
import SwrefKit
import XCTest

/// testdata/hierarchy: class chains three and four levels deep (one generic), every level with
/// stored properties. swref must lay out every inherited field at the offset the runtime gave it,
/// and name it in paths, instead of trapping or scanning inherited words as `$sub_objects$`.
final class HierarchyTests: XCTestCase {
    static let types = ["hierarchy.Derived", "hierarchy.GenericDerived<hierarchy.Payload>", "hierarchy.Level4", "hierarchy.C"]

    func checkProfile(_ variant: BuildVariant) throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let program = try RunningProgram(try TestPrograms.binary("hierarchy", variant))
        defer { program.stop() }
        let out = TestPrograms.buildDirectory.appendingPathComponent("hierarchy-\(variant).pb.gz").path
        let run = try Shell.swref(["attach", "\(program.pid)", "--attribution", "first-path", "-o", out])
        XCTAssertEqual(run.status, 0, "\(variant): \(run.stderr)")
        let profile = try PprofReader(path: out)

        /// Objects whose path ends in `holder`'s frame, then `field` into a frame with `target`.
        func count(_ holder: String, _ field: String, _ target: String) -> Int64 {
            profile.samples.filter { sample in
                guard let at = sample.frames.firstIndex(where: { $0.hasSuffix("(\(holder))") }), at + 2 == sample.frames.count else {
                    return false
                }
                let next = sample.frames[at + 1]
                return next.hasPrefix(field + ".") && next.contains(target)
            }.reduce(0) { $0 + $1.values[0] }
        }
        // Inherited from two levels up, one up, and the class's own field.
        XCTAssertEqual(count("hierarchy.Derived", "socket", "hierarchy.Sock"), 8, variant.rawValue)
        XCTAssertEqual(count("hierarchy.Derived", "name", "String"), 8, variant.rawValue)
        XCTAssertEqual(count("hierarchy.Derived", "pending", "[String]"), 8, variant.rawValue)
        XCTAssertEqual(count("hierarchy.Derived", "extra", "[Int]"), 8, variant.rawValue)
        XCTAssertEqual(count("hierarchy.GenericDerived<hierarchy.Payload>", "item", "hierarchy.Payload"), 4, variant.rawValue)
        XCTAssertEqual(count("hierarchy.GenericDerived<hierarchy.Payload>", "items", "(["), 4, variant.rawValue)
        XCTAssertEqual(count("hierarchy.GenericDerived<hierarchy.Payload>", "tail", "[Int]"), 4, variant.rawValue)
        XCTAssertEqual(count("hierarchy.Level4", "first", "hierarchy.Tag1"), 4, variant.rawValue)
        XCTAssertEqual(count("hierarchy.Level4", "second", "hierarchy.Tag2"), 4, variant.rawValue)
        XCTAssertEqual(count("hierarchy.Level4", "third", "[Int]"), 4, variant.rawValue)
        XCTAssertEqual(count("hierarchy.Level4", "fourth", "hierarchy.Tag4"), 4, variant.rawValue)
        if testRun?.failureCount ?? 0 > 0 { print(profile.samples.map { $0.frames.joined(separator: " ← ") }.joined(separator: "\n")) }
        let unnamed = profile.samples.filter { sample in
            guard let at = sample.frames.firstIndex(of: ReferenceScanner.subObjects), at > 0 else { return false }
            return HierarchyTests.types.contains { sample.frames[at - 1].hasSuffix("(\($0))") }
        }
        XCTAssertEqual(unnamed.map(\.frames), [], "\(variant): inherited fields found only by a conservative scan")
    }

    func testInheritedFieldsDebugBuild() throws { try checkProfile(.debug) }
    func testInheritedFieldsOptimizedBuild() throws { try checkProfile(.optimized) }

    /// Every word of these instances is some field's: nothing is left to a conservative scan, and
    /// no type's layout was found to make no sense.
    func testLayoutsCoverInstances() throws {
        let program = try RunningProgram(try TestPrograms.binary("hierarchy", .debug))
        defer { program.stop() }
        let snapshot = try LiveCapture.capture(pid: program.pid)
        let analysis = HeapAnalysis(target: snapshot)
        let layouts = ObjectLayouts(reflection: analysis.reflection, source: snapshot)
        let objects = analysis.objects
        for name in HierarchyTests.types {
            guard let index = (0..<objects.count).first(where: { objects.types[Int(objects.typeIndices[$0])].name == name }) else {
                XCTFail("no \(name) in the heap")
                continue
            }
            let type = objects.typeIndices[index]
            guard case .fixed(let value, _, let uncovered) = layouts.layout(type: type, entry: objects.types[Int(type)],
                                                                            sample: objects.addresses[index]) else {
                XCTFail("\(name) is not laid out by its fields")
                continue
            }
            XCTAssertEqual(uncovered, [], name)
            XCTAssertEqual(value.coveredBytes, value.size - 16, "\(name): every byte after the header is a field's")
        }
        XCTAssertEqual(layouts.unreadableTypes, [])
    }
}
