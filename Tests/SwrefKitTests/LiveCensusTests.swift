import Foundation
import SwrefKit
import XCTest

/// `swref attach` on real Swift programs: exact per-class counts and malloc's own total.
final class LiveCensusTests: XCTestCase {
    /// What testdata/census builds for arguments 1000 500 (see its source).
    let expectedCounts: [String: Int] = [
        "census.Node": 1000,
        "census.Leaf<Swift.Int>": 500,
        "census.Leaf<Swift.String>": 10,
        "census.Worker": 300,
        "census.Dog": 7,
        "census.Lock": 1,
    ]

    func checkCensus(_ variant: BuildVariant) throws {
        let program = try RunningProgram(try TestPrograms.binary("census", variant), ["1000", "500"])
        defer { program.stop() }

        let snapshot = try LiveCapture.capture(pid: program.pid)
        let analysis = HeapAnalysis(target: snapshot)
        let census = analysis.census
        for (type, count) in expectedCounts {
            XCTAssertEqual(census.row(named: type)?.count, count, "\(variant) count of \(type)")
        }
        XCTAssertEqual(census.rows.first { $0.kind == .closureContext }?.count, 5, "\(variant): five closure contexts")
        // Node payloads (1000) plus the 1 MiB buffer: arrays of UInt8.
        XCTAssertEqual(census.row(named: "Swift._ContiguousArrayStorage<Swift.UInt8>")?.count, 1001, "\(variant)")
        XCTAssertEqual(census.row(named: "Swift._ContiguousArrayStorage<Swift.Int>")?.count, 300, "\(variant)")

        let expected = Double(program.mallocInUse)
        let measured = Double(census.totalBytes)
        XCTAssertEqual(measured, expected, accuracy: expected * 0.02,
                       "\(variant): census total \(census.totalBytes) vs mallinfo2 \(program.mallocInUse)")
        XCTAssertGreaterThan(analysis.heap.counters["arenas"] ?? 0, 1, "the worker threads' arenas were walked")
        XCTAssertEqual(analysis.heap.counters["mmapped"], 1, "the 1 MiB array is an mmapped chunk")
        XCTAssertTrue(["S", "R"].contains(program.state), "target running after capture, state \(program.state)")

        // The CLI's profile, read back by the real pprof.
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed: profile not decoded") }
        let out = TestPrograms.buildDirectory.appendingPathComponent("census-\(variant).pb.gz").path
        let run = try Shell.swref(["attach", "\(program.pid)", "--view", "types", "-o", out])
        XCTAssertEqual(run.status, 0, run.stderr)
        let profile = try PprofReader(path: out)
        XCTAssertEqual(profile.sampleTypes, ["inuse_objects", "inuse_space"])
        for (type, count) in expectedCounts {
            let sample = profile.samples.first { $0.frames == [type] }
            XCTAssertEqual(sample?.values[0], Int64(count), "\(variant) pprof count of \(type)")
            XCTAssertEqual(sample?.labels["kind"], "class")
        }
        XCTAssertNotNil(profile.samples.first { $0.frames == ["<malloc>"] }, "untyped blocks are visible")
        XCTAssertEqual(Double(profile.total(1)), expected, accuracy: expected * 0.02, "\(variant) pprof total")
        let top = try Shell.run("/usr/bin/env", ["go", "tool", "pprof", "-top", "-sample_index=inuse_objects", out])
        XCTAssertTrue(top.stdout.contains("census.Node"), top.stdout)
    }

    func testCensusDebugBuild() throws { try checkCensus(.debug) }
    func testCensusOptimizedBuild() throws { try checkCensus(.optimized) }
    func testCensusStrippedBuild() throws { try checkCensus(.stripped) }

    func testTextFormatAndRepeatedAttach() throws {
        let program = try RunningProgram(try TestPrograms.binary("census", .optimized), ["200", "50"])
        defer { program.stop() }
        let first = try Shell.swref(["attach", "\(program.pid)", "--format", "text"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let second = try Shell.swref(["attach", "\(program.pid)", "--format", "text"])
        XCTAssertEqual(second.status, 0, second.stderr)
        for output in [first.stdout, second.stdout] {
            let nodeLine = output.split(separator: "\n").first { $0.hasSuffix(" census.Node") }
            XCTAssertEqual(nodeLine?.split(separator: " ").first, "200", output)
            XCTAssertTrue(output.contains("TOTAL"))
        }
        // Largest first.
        let bytes = first.stdout.split(separator: "\n").dropFirst().compactMap { line -> Int? in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[0].allSatisfy(\.isNumber) && !line.contains("TOTAL") ? Int(fields[1]) : nil
        }
        XCTAssertEqual(bytes, bytes.sorted(by: >))
        XCTAssertTrue(["S", "R"].contains(program.state))
        XCTAssertEqual(program.tracerPid, "0", "swref detached")
    }
}
