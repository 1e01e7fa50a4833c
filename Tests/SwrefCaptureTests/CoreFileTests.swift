import Foundation
import SwrefCapture
import SwrefMemory
import SwrefSupport
import XCTest

/// `CoreFile` on tiny ELF cores written by hand: an ET_CORE header, one PT_NOTE (NT_PRSTATUS,
/// NT_FILE) and PT_LOAD segments; then damaged and hostile ones, which must give a one-line error
/// or a clean map, never a trap.
final class CoreFileTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("swref-cores-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    struct Load {
        var vaddr: UInt64
        var memsz: UInt64
        var bytes: [UInt8]
        var flags: UInt32 = 6   // rw-
    }

    /// An NT_FILE descriptor: count, page size, (start, end, page offset) each, then the names.
    static func fileNote(_ entries: [(UInt64, UInt64, UInt64)], names: [String], pageSize: UInt64 = 4096,
                         terminated: Bool = true) -> [UInt8] {
        var bytes: [UInt8] = []
        func put(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        put(UInt64(entries.count)); put(pageSize)
        for (start, end, offset) in entries { put(start); put(end); put(offset) }
        for name in names { bytes += Array(name.utf8) + (terminated ? [0] : []) }
        return bytes
    }

    static func note(_ type: UInt32, _ desc: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        func put32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        put32(5); put32(UInt32(desc.count)); put32(type)
        bytes += Array("CORE".utf8) + [0, 0, 0, 0]
        bytes += desc + [UInt8](repeating: 0, count: (4 - desc.count % 4) % 4)
        return bytes
    }

    /// NT_PRSTATUS of x86_64: 336 bytes, the thread id at 32, the registers from 112 (rsp is the 20th).
    static func prstatus(tid: Int32, rsp: UInt64) -> [UInt8] {
        var desc = [UInt8](repeating: 0, count: 336)
        withUnsafeBytes(of: tid.littleEndian) { desc.replaceSubrange(32..<36, with: $0) }
        withUnsafeBytes(of: rsp.littleEndian) { desc.replaceSubrange(112 + 19 * 8..<112 + 20 * 8, with: $0) }
        return desc
    }

    /// ELF header, program headers (the note first), the notes, then each segment's bytes.
    static func core(notes: [UInt8], loads: [Load], machine: UInt16 = 62, type: UInt16 = 4) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 64)
        func set<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(offset..<offset + $0.count, with: $0) }
        }
        bytes.replaceSubrange(0..<7, with: [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1])
        set(type, at: 16); set(machine, at: 18); set(UInt32(1), at: 20)
        set(UInt64(64), at: 32)                       // e_phoff
        set(UInt16(64), at: 52); set(UInt16(56), at: 54); set(UInt16(1 + loads.count), at: 56)
        let notesOffset = 64 + 56 * (1 + loads.count)
        var dataOffset = (notesOffset + notes.count + 4095) & ~4095
        var headers: [UInt8] = []
        func header(_ type: UInt32, _ flags: UInt32, _ values: [UInt64]) {
            withUnsafeBytes(of: type.littleEndian) { headers += $0 }
            withUnsafeBytes(of: flags.littleEndian) { headers += $0 }
            for value in values { withUnsafeBytes(of: value.littleEndian) { headers += $0 } }
        }
        header(4, 0, [UInt64(notesOffset), 0, 0, UInt64(notes.count), 0, 4])
        var data: [UInt8] = []
        for load in loads {
            header(1, load.flags, [UInt64(dataOffset), load.vaddr, 0, UInt64(load.bytes.count), load.memsz, 4096])
            data += load.bytes
            dataOffset += load.bytes.count
        }
        bytes += headers + notes
        bytes += [UInt8](repeating: 0, count: (notesOffset + notes.count + 4095) & ~4095 - bytes.count)
        return bytes + data
    }

    func write(_ bytes: [UInt8], _ name: String = "core") throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    let heapBytes: [UInt8] = (0..<4096).map { UInt8(truncatingIfNeeded: $0 * 7) }

    func testSegmentsThreadsAndMap() throws {
        let notes = Self.note(1, Self.prstatus(tid: 77, rsp: 0x7ffd_0000_1000))
            + Self.note(0x4649_4C45, Self.fileNote([(0x40_0000, 0x40_2000, 0)], names: ["/app/server"]))
        let path = try write(Self.core(notes: notes, loads: [
            Load(vaddr: 0x5555_0000_0000, memsz: 0x2000, bytes: heapBytes),
            Load(vaddr: 0x40_0000, memsz: 0x2000, bytes: [UInt8](repeating: 0xaa, count: 16), flags: 5),
        ]))
        let core = try CoreFile(path: path)
        XCTAssertEqual(core.segments.map(\.start), [0x40_0000, 0x5555_0000_0000], "sorted by address")
        XCTAssertEqual(core.segments.map(\.end), [0x40_2000, 0x5555_0000_2000])
        XCTAssertEqual(core.segments.map(\.fileSize), [16, 4096])
        XCTAssertEqual(core.threads.map(\.tid), [77])
        XCTAssertEqual(core.pid, 77, "no NT_PRPSINFO: the first thread's id")
        XCTAssertEqual(core.mappedFiles.map(\.path), ["/app/server"])
        XCTAssertEqual(core.executablePath, "/app/server")

        let regions = core.memoryMap.regions
        XCTAssertEqual(regions.count, 2)
        XCTAssertEqual(regions[0].path, "/app/server")
        XCTAssertTrue(regions[0].executable && regions[0].readable && !regions[0].writable)
        XCTAssertTrue(regions[1].isAnonymous && regions[1].writable && !regions[1].executable)
        XCTAssertEqual(regions[1].size, 0x2000)

        // The core's bytes, and zeros for the anonymous page it left out.
        XCTAssertEqual(core.readBytes(0x5555_0000_0010, count: 32), Array(heapBytes[16..<48]))
        XCTAssertEqual(core.readBytes(0x5555_0000_1000, count: 16), [UInt8](repeating: 0, count: 16))
        XCTAssertEqual(core.readBytes(0x5555_0000_0ff8, count: 16), Array(heapBytes[4088...]) + [UInt8](repeating: 0, count: 8))
        XCTAssertEqual(core.readFromCore(0x5555_0000_0000, count: 4), Array(heapBytes[0..<4]))
        XCTAssertNil(core.readFromCore(0x5555_0000_1000, count: 4), "not in the core file")
        XCTAssertNil(core.readBytes(0x5555_0000_2000, count: 1), "past the last segment")
        XCTAssertNil(core.localBytes(containing: 0x40_0000), "a partly kept segment has no local bytes")
    }

    func testHostileFileNotesGiveACleanMap() throws {
        let hostile: [([(UInt64, UInt64, UInt64)], [String], Bool)] = [
            ([(0, .max, .max)], ["/everything"], true),
            ([(0x5555_0000_0000, 0x5555_0000_2000, .max), (5, 5, 0), (9, 3, 0)], ["/a", "/b", "/c"], true),
            ([(0x5555_0000_0000, .max, 1 << 60)], ["/no/terminator"], false),
            ([(0x1000, 0x2000, 0), (0x3000, 0x4000, 0)], ["/only-one-name"], false),
        ]
        for (index, (entries, names, terminated)) in hostile.enumerated() {
            let notes = Self.note(1, Self.prstatus(tid: 1, rsp: 0))
                + Self.note(0x4649_4C45, Self.fileNote(entries, names: names, terminated: terminated))
            let path = try write(Self.core(notes: notes, loads: [Load(vaddr: 0x5555_0000_0000, memsz: 0x2000, bytes: heapBytes)]),
                                 "hostile-\(index)")
            do {
                let core = try CoreFile(path: path)
                XCTAssertEqual(core.memoryMap.regions.count, 1, "case \(index)")
                XCTAssertTrue(core.mappedFiles.allSatisfy { $0.end > $0.start }, "case \(index): empty or reversed ranges dropped")
                // Reads stay inside the segment whatever the note said.
                XCTAssertEqual(core.readBytes(0x5555_0000_0000, count: 8), Array(heapBytes[0..<8]), "case \(index)")
                _ = core.readBytes(0x5555_0000_1ff0, count: 16)
            } catch {
                XCTAssertFalse("\(error)".contains("\n"), "case \(index): \(error)")
            }
        }
        // The parser alone, on a descriptor that declares more entries than it holds.
        var lying = Self.fileNote([(0x1000, 0x2000, 0)], names: ["/x"])
        lying.replaceSubrange(0..<8, with: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        let files = lying.withUnsafeBytes { CoreFile.parseFileNote($0) }
        XCTAssertLessThanOrEqual(files.count, 1)
        XCTAssertTrue([UInt8](repeating: 0, count: 15).withUnsafeBytes { CoreFile.parseFileNote($0).isEmpty })
    }

    func testDamagedCoresGiveOneLineErrors() throws {
        let notes = Self.note(1, Self.prstatus(tid: 1, rsp: 0))
        let good = Self.core(notes: notes, loads: [Load(vaddr: 0x5555_0000_0000, memsz: 0x2000, bytes: heapBytes)])
        XCTAssertNoThrow(try CoreFile(path: try write(good, "good")))
        let overlapping = Self.core(notes: notes, loads: [Load(vaddr: 0x5555_0000_0000, memsz: 0x2000, bytes: heapBytes),
                                                          Load(vaddr: 0x5555_0000_1000, memsz: 0x1000, bytes: [])])
        let cases: [(String, [UInt8], String)] = [
            ("truncated", Array(good.prefix(good.count - 100)), "truncated"),
            ("headers cut", Array(good.prefix(100)), "program headers end past"),
            ("tiny", Array(good.prefix(40)), "not an ELF file"),
            ("not ELF", [UInt8](repeating: 0x41, count: 200), "not an ELF file"),
            ("executable", Self.core(notes: notes, loads: [Load(vaddr: 0x1000, memsz: 0x1000, bytes: [])], type: 2), "not a core"),
            ("arm64", Self.core(notes: notes, loads: [Load(vaddr: 0x1000, memsz: 0x1000, bytes: [])], machine: 183), "architecture"),
            ("no threads", Self.core(notes: [], loads: [Load(vaddr: 0x1000, memsz: 0x1000, bytes: [])]), "NT_PRSTATUS"),
            ("no segments", Self.core(notes: notes, loads: []), "no memory segments"),
            ("overlap", overlapping, "overlap"),
            ("beyond user space", Self.core(notes: notes, loads: [Load(vaddr: 1 << 47, memsz: 1 << 40, bytes: [])]), "user address space"),
        ]
        for (what, bytes, expected) in cases {
            let path = try write(bytes, what.replacingOccurrences(of: " ", with: "-"))
            XCTAssertThrowsError(try CoreFile(path: path), what) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(expected), "\(what): \(message)")
                XCTAssertFalse(message.contains("\n"), "\(what): one line")
            }
        }
        XCTAssertThrowsError(try CoreFile(path: directory.path), "a directory")
    }
}
