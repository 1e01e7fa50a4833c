import Foundation
import XCTest

/// A real core damaged the ways issue #19 lists (scripts/fuzz-cores.py: headers, notes, NT_FILE
/// names shuffled, swapped or replaced, ranges and offsets at the limits, fs_base at the top of the
/// address space, registers, auxv, one chunk header, class metadata, type and field descriptors,
/// mangled names, and the heap mutations of fuzz-heaps.py), two of each kind: no crash, no hang,
/// no damaged heap reported as an empty, clean one. The script runs at scale outside the suite.
final class CoreFuzzTests: XCTestCase {
    var scratch: URL { TestPrograms.buildDirectory }

    func censusCore(_ name: String) throws -> (exe: String, core: String) {
        let exe = try TestPrograms.binary("census", .optimized)
        let program = try RunningProgram(exe, ["100", "20"])
        defer { program.stop() }
        let core = scratch.appendingPathComponent(name).path
        let dump = try Shell.swref(["dump", "\(program.pid)", "-o", core])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        return (exe, core)
    }

    func testMutatedCoresNeverCrashHangOrReadEmpty() throws {
        let (exe, core) = try censusCore("core-fuzz.core")
        let script = TestPrograms.packageRoot.appendingPathComponent("scripts/fuzz-cores.py").path
        let result = try Shell.run("/usr/bin/env", ["python3", script, "--swref", try TestPrograms.swrefExecutable(), "--core", "\(exe):\(core)",
                                                    "--cores", "56", "--jobs", "2", "--timeout", "120",
                                                    "--keep", scratch.appendingPathComponent("core-fuzz").path], timeout: 1800)
        print(result.stdout.split(separator: "\n").suffix(30).joined(separator: "\n"))
        XCTAssertEqual(result.status, 0, "crashes, hangs or empty clean heaps:\n\(result.stdout)\n\(result.stderr)")
        // tried, crash, hang, empty
        let all = result.stdout.split(separator: "\n").first { $0.hasPrefix("all ") }?.split(separator: " ").dropFirst().prefix(4).map(String.init)
        XCTAssertEqual(all, ["56", "0", "0", "0"], result.stdout)
    }

    /// NT_FILE with no entries: no library is known, so no allocator is found and nothing is read.
    /// `leaks` once said "no leaks (… 0 blocks)" with exit 0 (the check applied only when the Swift
    /// runtime was found, and it is found through NT_FILE).
    func testCoreWithoutFileNotesIsNotReadAsClean() throws {
        let (exe, core) = try censusCore("no-files.core")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: core)))
        let phoff = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) })
        let notesOffset = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: phoff + 8, as: UInt64.self) })
        let notesSize = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: phoff + 32, as: UInt64.self) })
        var offset = notesOffset, cleared = false
        while offset + 12 <= notesOffset + notesSize {
            let (nameSize, descSize, type) = bytes.withUnsafeBytes {
                (Int($0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)), Int($0.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)),
                 $0.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self))
            }
            let desc = offset + 12 + (nameSize + 3) & ~3
            if type == 0x4649_4c45 {
                for i in 0..<8 { bytes[desc + i] = 0 }
                cleared = true
            }
            offset = desc + (descSize + 3) & ~3
        }
        XCTAssertTrue(cleared, "no NT_FILE note")
        try Data(bytes).write(to: URL(fileURLWithPath: core))
        for verb in [["leaks", "--core", exe, core], ["core", exe, core, "--format", "text"]] {
            let result = try Shell.swref(verb)
            XCTAssertEqual(result.status, 125, "\(verb[0]): \(result.stdout) \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("the heap could not be read"), result.stderr)
            XCTAssertFalse(result.stdout.contains("no leaks"), result.stdout)
        }
    }
}
