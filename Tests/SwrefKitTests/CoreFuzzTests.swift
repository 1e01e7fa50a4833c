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

    /// Each NT_FILE entry of libc ending at 0xffff800000000000, in a core of a jemalloc program: the
    /// search for glibc's main_arena then read words near 2^64 as arena links, and adding the
    /// `next` offset to one trapped (internal error, exit 2; found by scripts/fuzz-cores.py).
    func testLibcMappingEndingNearTheTopDoesNotTrap() throws {
        let exe = try TestPrograms.binary("allocators", key: "allocators-jemalloc", flags: ["-Xlinker", "-ljemalloc"], header: "allocator_stats.h")
        let program = try RunningProgram(exe, ["300"])
        let core = scratch.appendingPathComponent("libc-top.core").path
        let dump = try Shell.swref(["dump", "\(program.pid)", "-o", core])
        program.stop()
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: core)))
        // NT_FILE: count, page size, count × (start, end, offset), then the names.
        var entries: [Int] = []
        if let note = DamagedCores.fileNote(in: original) {
            let names = original[note.names..<(note.desc + note.size)].split(separator: 0, omittingEmptySubsequences: false)
            for (index, name) in names.prefix(note.count).enumerated() where String(decoding: name, as: UTF8.self).hasSuffix("/libc.so.6") {
                entries.append(note.desc + 16 + 24 * index)
            }
        }
        XCTAssertFalse(entries.isEmpty, "libc.so.6 not in NT_FILE")
        for entry in entries {
            var bytes = original
            bytes.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(0xffff_8000_0000_0000), toByteOffset: entry + 8, as: UInt64.self) }
            try Data(bytes).write(to: URL(fileURLWithPath: core))
            let result = try Shell.swref(["leaks", "--core", exe, core], timeout: 120)
            XCTAssertFalse(result.timedOut || result.signaled || result.stderr.contains("internal error"), result.stderr)
            XCTAssertTrue([0, 1, 125].contains(result.status), "exit \(result.status): \(result.stderr)")
        }
    }

    /// A task's resume context and task-local list head set near 2^64 (found by fuzz-cores.py's
    /// heap mutations): the frame's end and the value's end were computed with a trapping add.
    func testTaskLinksNearTheTopDoNotTrap() throws {
        let exe = try TestPrograms.binary("tasks", .optimized)
        let program = try RunningProgram(exe, ["8"])
        let why = try Shell.swref(["why", "\(program.pid)", "Swift.Task (async task)"])
        let task = try XCTUnwrap(why.stdout.split(separator: "\n").dropFirst().first?.split(separator: " ")
            .first { $0.hasPrefix("0x") }.flatMap { UInt64($0.dropFirst(2), radix: 16) }, why.stdout)
        let core = scratch.appendingPathComponent("task-top.core").path
        let dump = try Shell.swref(["dump", "\(program.pid)", "-o", core])
        program.stop()
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: core)))
        let phoff = Int(original.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) })
        let phnum = Int(original.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 56, as: UInt16.self) })
        let at = try XCTUnwrap((0..<phnum).lazy.compactMap { index -> Int? in
            let (type, offset, vaddr, filesz) = original.withUnsafeBytes { raw in
                (raw.loadUnaligned(fromByteOffset: phoff + index * 56, as: UInt32.self),
                 raw.loadUnaligned(fromByteOffset: phoff + index * 56 + 8, as: UInt64.self),
                 raw.loadUnaligned(fromByteOffset: phoff + index * 56 + 16, as: UInt64.self),
                 raw.loadUnaligned(fromByteOffset: phoff + index * 56 + 32, as: UInt64.self))
            }
            return type == 1 && task >= vaddr && task - vaddr < filesz ? Int(offset + task - vaddr) : nil
        }.first, "task 0x\(String(task, radix: 16)) not in the core")
        // ResumeContext (+64) and the task-local head (+136), Swift 6.3's task layout.
        for (field, value) in [(64, UInt64.max - 15), (136, UInt64.max - 7)] {
            var bytes = original
            bytes.withUnsafeMutableBytes { $0.storeBytes(of: value, toByteOffset: at + field, as: UInt64.self) }
            try Data(bytes).write(to: URL(fileURLWithPath: core))
            let result = try Shell.swref(["leaks", "--core", exe, core], timeout: 120)
            XCTAssertFalse(result.timedOut || result.signaled || result.stderr.contains("internal error"), "+\(field): \(result.stderr)")
            XCTAssertTrue([0, 1].contains(result.status), "+\(field): exit \(result.status) \(result.stderr)")
        }
    }

    /// NT_FILE with no entries: no library is known, so no allocator is found and nothing is read.
    /// `leaks` once said "no leaks (… 0 blocks)" with exit 0 (the check applied only when the Swift
    /// runtime was found, and it is found through NT_FILE).
    func testCoreWithoutFileNotesIsNotReadAsClean() throws {
        let (exe, core) = try censusCore("no-files.core")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: core)))
        var cleared = false
        if let note = DamagedCores.fileNote(in: bytes) {
            for i in 0..<8 { bytes[note.desc + i] = 0 }  // no entries
            cleared = true
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
