import Foundation
import XCTest

/// `swref check` does not pass a profile whose heap was not read whole: a core with one damaged
/// chunk header gives a partial heap (its profile's `heap:` comment says so), and a check against
/// it exits 125 with the reason, where the same check of the intact heap passes.
final class CheckCoverageTests: XCTestCase {
    var scratch: URL { TestPrograms.buildDirectory }

    func testCheckRefusesAProfileOfAPartlyReadHeap() throws {
        let exe = try TestPrograms.binary("census", .optimized)
        let program = try RunningProgram(exe, ["1000", "50"])
        let why = try Shell.swref(["why", "\(program.pid)", "census.Node"])
        let address = try XCTUnwrap(why.stdout.split(separator: "\n").dropFirst().first?.split(separator: " ")
            .first { $0.hasPrefix("0x") }.flatMap { UInt64($0.dropFirst(2), radix: 16) }, why.stdout)
        let core = scratch.appendingPathComponent("check-coverage.core").path
        XCTAssertEqual(try Shell.swref(["dump", "\(program.pid)", "-o", core]).status, 0)
        program.stop()
        let intact = scratch.appendingPathComponent("check-coverage-intact.pb.gz").path
        XCTAssertEqual(try Shell.swref(["core", exe, core, "-o", intact]).status, 0)

        // The chunk header of one census.Node grows by 16: glibc's walk skips the damage (partial).
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: core)))
        let phoff = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) })
        let phnum = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 56, as: UInt16.self) })
        var patched = false
        for index in 0..<phnum where !patched {
            let (type, offset, vaddr, filesz) = bytes.withUnsafeBytes { raw in
                (raw.loadUnaligned(fromByteOffset: phoff + index * 56, as: UInt32.self),
                 raw.loadUnaligned(fromByteOffset: phoff + index * 56 + 8, as: UInt64.self),
                 raw.loadUnaligned(fromByteOffset: phoff + index * 56 + 16, as: UInt64.self),
                 raw.loadUnaligned(fromByteOffset: phoff + index * 56 + 32, as: UInt64.self))
            }
            guard type == 1, address - 8 >= vaddr, address < vaddr + filesz else { continue }
            let at = Int(offset + (address - 8 - vaddr))
            let size = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self) }
            withUnsafeBytes(of: (size + 16).littleEndian) { for (i, byte) in $0.enumerated() { bytes[at + i] = byte } }
            patched = true
        }
        XCTAssertTrue(patched)
        try Data(bytes).write(to: URL(fileURLWithPath: core))
        let partial = scratch.appendingPathComponent("check-coverage-partial.pb.gz").path
        let written = try Shell.swref(["core", exe, core, "-o", partial])
        XCTAssertEqual(written.status, 0, written.stderr)

        // The same heap read whole passes; read in part, it is not passed, as profile or as baseline.
        XCTAssertEqual(try Shell.swref(["check", "--baseline", intact, intact]).status, 0)
        let json = scratch.appendingPathComponent("check-coverage.json").path
        let checked = try Shell.swref(["check", "--baseline", intact, "--max-growth-percent", "50", "--json", json, partial])
        XCTAssertEqual(checked.status, 125, checked.stdout + checked.stderr)
        XCTAssertTrue(checked.stderr.contains("\(partial): glibc malloc (partial: "), checked.stderr)
        XCTAssertTrue(checked.stderr.contains("not passed as clean"), checked.stderr)
        XCTAssertFalse(checked.stdout.contains("check: no regression"), checked.stdout)
        let verdict = String(decoding: try Data(contentsOf: URL(fileURLWithPath: json)), as: UTF8.self)
        XCTAssertTrue(verdict.contains("\"incomplete_heaps\""), verdict)
        let asBaseline = try Shell.swref(["check", "--baseline", partial, intact])
        XCTAssertEqual(asBaseline.status, 125, asBaseline.stderr)
        XCTAssertTrue(asBaseline.stderr.contains("\(partial): glibc malloc (partial: "), asBaseline.stderr)
    }
}
