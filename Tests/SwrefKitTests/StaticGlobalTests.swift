import Foundation
import XCTest

/// A `static let` array beside one-byte statics (testdata/statics, NIOHPACK's Huffman table in
/// miniature): held by the binary's data, never leaked — the gRPC server under load reported it
/// leaked, because a one-byte typed global just before it claimed a whole word.
final class StaticGlobalTests: XCTestCase {
    func check(_ variant: BuildVariant) throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let program = try RunningProgram(try TestPrograms.binary("statics", variant))
        defer { program.stop() }
        let leaks = try Shell.swref(["leaks", "\(program.pid)"])
        XCTAssertEqual(leaks.status, 0, "\(variant): \(leaks.stdout)")
        let out = TestPrograms.buildDirectory.appendingPathComponent("statics-\(variant).pb.gz").path
        let run = try Shell.swref(["attach", "\(program.pid)", "-o", out])
        XCTAssertEqual(run.status, 0, run.stderr)
        // Held by a root, never `<leaked>`: the binary's .bss, scanned word by word (swiftc types a
        // `static let` in DWARF as a const anonymous struct: the global stays untyped).
        let samples = try PprofReader(path: out).samples
        let table = samples.filter { $0.frames.contains { $0.contains("(state: ") && $0.contains("flags: statics.Flags, sym: ") } }
        XCTAssertFalse(table.isEmpty, "\(variant): \(samples.map(\.frames))")
        XCTAssertTrue(table.allSatisfy { $0.labels["root"] != "leaked" }, "\(variant): \(table.map(\.frames))")
        XCTAssertTrue(table.contains { $0.frames.first?.hasSuffix(" .bss") == true }, "\(variant): \(table.map(\.frames))")
        XCTAssertGreaterThanOrEqual(table.map { $0.values[1] }.max() ?? 0, 12_000, "\(variant): \(table.map(\.values))")
    }

    func testStaticArrayDebugBuild() throws { try check(.debug) }
    func testStaticArrayOptimizedBuild() throws { try check(.optimized) }
}
