import Foundation
import XCTest

/// A `static let` array beside one-byte statics (testdata/statics, NIOHPACK's Huffman table in
/// miniature): held by its global, never leaked — the gRPC server under load reported it leaked.
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
        // Held by a root, never `<leaked>`: at -Onone the global typed through DWARF (the wrapper
        // swiftc puts around its type seen through), at -O the binary's .bss, where -O leaves it untyped.
        let samples = try PprofReader(path: out).samples
        let named = samples.filter { $0.frames.first?.hasPrefix("static statics") == true && $0.frames.first?.contains(".Table.(raw in ") == true }
        let table = named + samples.filter { $0.frames.contains { $0.contains("(state: ") && $0.contains("flags: statics.Flags, sym: ") } }
        XCTAssertFalse(table.isEmpty, "\(variant): \(samples.map(\.frames))")
        XCTAssertTrue(table.allSatisfy { $0.labels["root"] != "leaked" }, "\(variant): \(table.map(\.frames))")
        XCTAssertGreaterThanOrEqual(table.map { $0.values[1] }.max() ?? 0, 12_000, "\(variant): \(table.map(\.values))")
        if variant == .debug { XCTAssertEqual(named.first?.labels["root"], "global", "\(samples.map(\.frames))") }
    }

    func testStaticArrayDebugBuild() throws { try check(.debug) }
    func testStaticArrayOptimizedBuild() throws { try check(.optimized) }
}
