import Foundation
import XCTest

/// Metadata corrupted in a real core, where libswiftRemoteMirror trusts it and faults: swref
/// finishes, says so in one note, and reads the type conservatively (it once died with SIGILL or
/// SIGABRT, reported as "internal error", exit 2). And NT_FILE names swapped between two
/// libraries: the mismatch is named and the wrong file is not handed to the library.
final class ReflectionFaultTests: XCTestCase {
    var scratch: URL { TestPrograms.buildDirectory }

    /// A core of `census 50 10`, the executable, and where it was mapped (its /proc maps).
    func census() throws -> (exe: String, core: [UInt8], maps: String) {
        let exe = try TestPrograms.binary("census", .optimized)
        let program = try RunningProgram(exe, ["50", "10"])
        defer { program.stop() }
        let core = scratch.appendingPathComponent("reflection-fault-source.core").path
        let dump = try Shell.swref(["dump", "\(program.pid)", "-o", core])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        // Read to the end: /proc files have no size, and a read by size can stop at the first page.
        let maps = String(decoding: FileHandle(forReadingAtPath: "/proc/\(program.pid)/maps")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        return (exe, [UInt8](try Data(contentsOf: URL(fileURLWithPath: core))), maps)
    }

    /// The run-time address of one of the executable's symbols: its value (nm) plus where the
    /// file's first page was mapped.
    func address(of symbol: String, exe: String, maps: String) throws -> UInt64 {
        let nm = try Shell.run("/usr/bin/nm", [exe])
        let value = try XCTUnwrap(nm.stdout.split(separator: "\n").first { $0.hasSuffix(" " + symbol) }
            .flatMap { UInt64($0.split(separator: " ")[0], radix: 16) }, "\(symbol) not in \(exe)")
        let real = URL(fileURLWithPath: exe).resolvingSymlinksInPath().path
        let base = try XCTUnwrap(maps.split(separator: "\n").first { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            return fields.count >= 6 && fields[2] == "00000000" && String(fields[5]) == real
        }.flatMap { UInt64($0.prefix { $0 != "-" }, radix: 16) }, "\(real) not mapped:\n\(maps)")
        return base + value
    }

    func testCorruptMetadataFaultInsideTheLibraryIsANoteNotACrash() throws {
        let (exe, original, maps) = try census()
        // census.Node's type descriptor's name pointer one byte off: a failed Demangler assertion
        // (SIGABRT) inside the library, caught by the guard. Its field descriptor with an impossible
        // kind made the library trap (SIGILL); the section check now keeps it from the library.
        let fields = try XCTUnwrap(DamagedCores.fileOffset(of: try address(of: "$s6census4NodeCMF", exe: exe, maps: maps), inCore: original))
        let descriptor = try XCTUnwrap(DamagedCores.fileOffset(of: try address(of: "$s6census4NodeCMn", exe: exe, maps: maps), inCore: original))
        var badKind = original
        badKind[fields + 8] = 0xff; badKind[fields + 9] = 0xff
        var badName = original
        badName.withUnsafeMutableBytes { raw in
            let name = raw.loadUnaligned(fromByteOffset: descriptor + 8, as: Int32.self)
            raw.storeBytes(of: name - 1, toByteOffset: descriptor + 8, as: Int32.self)
        }
        let core = scratch.appendingPathComponent("reflection-fault.core").path
        try Data(original).write(to: URL(fileURLWithPath: core))
        let intact = try Shell.swref(["core", exe, core, "--format", "text"])
        XCTAssertTrue(intact.stdout.contains(" census.Node\n"), intact.stdout)
        func total(_ census: String) -> Substring? { census.split(separator: "\n").first { $0.contains(" TOTAL ") } }
        let profile = scratch.appendingPathComponent("reflection-fault.pb.gz").path
        for (name, bytes, note) in [("name pointer", badName, "libswiftRemoteMirror faulted on corrupt metadata (Aborted in "),
                                    ("field descriptor kind", badKind, "reflection metadata is damaged (\(URL(fileURLWithPath: exe).lastPathComponent): swift5_fieldmd: a descriptor at")] {
            try Data(bytes).write(to: URL(fileURLWithPath: core))
            for verb in [["core", exe, core, "-o", profile], ["leaks", "--core", exe, core]] {
                let result = try Shell.swref(verb, timeout: 120)
                XCTAssertFalse(result.signaled || result.stderr.contains("internal error"), "\(name), \(verb[0]): \(result.stderr)")
                XCTAssertEqual(result.status, 0, "\(name), \(verb[0]): \(result.stderr)")
                let notes = result.stderr.split(separator: "\n").filter { $0.contains(note) }
                XCTAssertEqual(notes.count, 1, "\(name), \(verb[0]): one note \(result.stderr)")
                // Nothing but swref's own lines: the library's diagnostics (many lines a type) are not passed on.
                XCTAssertTrue(result.stderr.split(separator: "\n").allSatisfy { $0.hasPrefix("swref: ") }, result.stderr)
            }
            // Every object is still counted as a Swift object (census.Node by its name, or by its
            // metadata's address once its name is unreadable).
            let text = try Shell.swref(["core", exe, core, "--format", "text"])
            XCTAssertEqual(text.status, 0, text.stderr)
            XCTAssertEqual(total(text.stdout), total(intact.stdout), text.stdout)
            XCTAssertTrue(text.stdout.contains(" census.Node\n") || text.stdout.contains("<class metadata 0x"), text.stdout)
            XCTAssertFalse(text.stdout.contains(" class \n"), "no empty type name: \(text.stdout)")
        }
    }

    /// census.Node's field descriptor claiming 2^31 fields: the library would build a vector of
    /// them (gigabytes, minutes: the core fuzzer's one hang). The executable's swift5_fieldmd no
    /// longer walks to its end, so it is not handed over; the rest of the heap is read as before.
    func testFieldDescriptorWithAbsurdCountIsNotHandedOver() throws {
        let (exe, original, maps) = try census()
        let fields = try XCTUnwrap(DamagedCores.fileOffset(of: try address(of: "$s6census4NodeCMF", exe: exe, maps: maps), inCore: original))
        var bytes = original
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(1) << 31, toByteOffset: fields + 12, as: UInt32.self) }
        let core = scratch.appendingPathComponent("absurd-count.core").path
        try Data(bytes).write(to: URL(fileURLWithPath: core))
        for verb in [["core", exe, core, "--format", "text"], ["leaks", "--core", exe, core]] {
            let result = try Shell.swref(verb, timeout: 60)
            XCTAssertFalse(result.timedOut, "\(verb[0]) hung")
            XCTAssertFalse(result.signaled || result.stderr.contains("internal error"), result.stderr)
            XCTAssertEqual(result.status, 0, result.stderr)
            let said = result.stdout + result.stderr
            XCTAssertTrue(said.contains("reflection metadata is damaged") && said.contains("swift5_fieldmd"), said)
            if verb[0] == "core" {
                let nodes = result.stdout.split(separator: "\n").first { $0.hasSuffix(" census.Node") }
                    .flatMap { Int($0.split(separator: " ").first ?? "") }
                XCTAssertEqual(nodes, 50, result.stdout)
            }
        }
    }

    /// NT_FILE's names of two mapped libraries exchanged (a core assembled wrongly): each range
    /// now names the other file, whose build id is not the one the core mapped there. swref says
    /// so, does not crash, and leaves both files out instead of reading their metadata.
    func testSwappedNTFileNamesAreNamedAndNotTrusted() throws {
        let (exe, original, _) = try census()
        // The NT_FILE note: count, page size, count × (start, end, offset), then the names.
        let names = DamagedCores.fileNote(in: original).map { (start: $0.names, end: $0.desc + $0.size, count: $0.count) }
        let table = try XCTUnwrap(names, "no NT_FILE note")
        let list = original[table.start..<table.end].split(separator: 0, omittingEmptySubsequences: false).prefix(table.count).map { Array($0) }
        let path = scratch.appendingPathComponent("ntfile-swapped.core").path
        // Two Swift libraries the reflection library would read, and the Swift runtime with the C++ one.
        for (first, second) in [("libswift_Concurrency.so", "libswiftGlibc.so"), ("libswiftCore.so", "libstdc++.so")] {
            let named = { (prefix: String) in list.first { String(decoding: $0, as: UTF8.self).split(separator: "/").last?.hasPrefix(prefix) == true } }
            let a = try XCTUnwrap(named(first), "\(first) not in NT_FILE"), b = try XCTUnwrap(named(second), "\(second) not in NT_FILE")
            // Every range of the one library now names the other, and the other way round (as many
            // ranges each, so the names take the same bytes).
            XCTAssertEqual(list.filter { $0 == a }.count, list.filter { $0 == b }.count, "\(first), \(second)")
            let swapped = list.map { $0 == a ? b : $0 == b ? a : $0 }
            let blob = swapped.joined(separator: [0]) + [0]
            XCTAssertEqual(blob.count, table.end - table.start)
            var bytes = original
            bytes.replaceSubrange(table.start..<table.start + blob.count, with: blob)
            try Data(bytes).write(to: URL(fileURLWithPath: path))

            let result = try Shell.swref(["core", exe, path, "--format", "text"], timeout: 120)
            XCTAssertFalse(result.signaled || result.stderr.contains("internal error"), result.stderr)
            XCTAssertEqual(result.status, 0, result.stderr)
            // Both files named as not the ones mapped there, their metadata left out; the program's
            // own types (read from the executable, which is the right file) still named.
            let note = result.stdout.split(separator: "\n").first { $0.contains("not the ones the target mapped") } ?? ""
            XCTAssertTrue(note.contains(first) && note.contains(second) && note.contains("were not used"), result.stdout)
            XCTAssertTrue(result.stdout.contains(" census.Node\n"), result.stdout)
        }
    }
}
