import Foundation
import SwrefImages
import SwrefMemory
import SwrefSupport
import SwrefTestSupport
import XCTest

/// ELF notes and build ids from bytes laid out by hand (sizes a damaged or hostile image could
/// declare), and `ElfFile` on files of this machine.
final class ElfNotesTests: XCTestCase {
    let buildID: [UInt8] = (1...20).map { UInt8($0 * 11) }

    /// One note: name size, descriptor size, type, the name NUL-terminated and padded to 4, the descriptor padded to 4.
    func note(name: String, type: UInt32, desc: [UInt8], declaredNameSize: UInt32? = nil, declaredDescSize: UInt32? = nil) -> [UInt8] {
        var bytes: [UInt8] = []
        func put32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        let nameBytes = Array(name.utf8) + [0]
        put32(declaredNameSize ?? UInt32(nameBytes.count))
        put32(declaredDescSize ?? UInt32(desc.count))
        put32(type)
        bytes += nameBytes + [UInt8](repeating: 0, count: (4 - nameBytes.count % 4) % 4)
        bytes += desc + [UInt8](repeating: 0, count: (4 - desc.count % 4) % 4)
        return bytes
    }

    func testParsesConsecutiveNotes() {
        let bytes = note(name: "GNU", type: 3, desc: buildID) + note(name: "CORE", type: 1, desc: [1, 2, 3, 4, 5])
        let notes = bytes.withUnsafeBytes { ElfNotes.parse($0).map { ($0.type, $0.name, Array($0.desc)) } }
        XCTAssertEqual(notes.count, 2)
        XCTAssertEqual(notes.first?.0, 3)
        XCTAssertEqual(notes.first?.1, "GNU")
        XCTAssertEqual(notes.first?.2, buildID)
        XCTAssertEqual(notes.last?.0, 1)
        XCTAssertEqual(notes.last?.1, "CORE")
        XCTAssertEqual(notes.last?.2, [1, 2, 3, 4, 5])
    }

    func testHostileSizesStopTheParseInsideTheBuffer() {
        let good = note(name: "GNU", type: 3, desc: buildID)
        for (nameSize, descSize) in [(UInt32.max, UInt32(20)), (4, UInt32.max), (4, 1 << 29), (1 << 19, 4), (4, 21)] {
            let bytes = good + note(name: "GNU", type: 3, desc: buildID, declaredNameSize: nameSize, declaredDescSize: descSize)
            let notes = bytes.withUnsafeBytes { ElfNotes.parse($0).map { Array($0.desc) } }
            XCTAssertEqual(notes, [buildID], "sizes \(nameSize), \(descSize): only the good note")
        }
        // Shorter than a note header, and empty.
        XCTAssertTrue([UInt8](repeating: 0xff, count: 11).withUnsafeBytes { ElfNotes.parse($0).isEmpty })
        XCTAssertTrue([UInt8]().withUnsafeBytes { ElfNotes.parse($0).isEmpty })
    }

    func testCStringStopsAtTheBufferAndTheLimit() {
        let bytes: [UInt8] = Array("abcdef".utf8)
        bytes.withUnsafeBytes { raw in
            XCTAssertEqual(ElfNotes.cString(raw, 0, 100), "abcdef", "unterminated: up to the end of the buffer")
            XCTAssertEqual(ElfNotes.cString(raw, 2, 3), "cde")
            XCTAssertEqual(ElfNotes.cString(raw, 6, 10), "")
            XCTAssertEqual(ElfNotes.cString(raw, 1000, 10), "")
        }
    }

    // MARK: BuildID.ofImage

    /// An image's first page at `start`: the ELF header, `phnum` program headers at 64 (a PT_LOAD
    /// at 0, a PT_NOTE at 0x200), the build-id note at 0x200.
    func mapImage(_ target: InMemoryTarget, at start: UInt64, phnum: UInt16 = 2, phoff: UInt64 = 64,
                  noteSize: UInt64? = nil, noteBytes: [UInt8]? = nil) {
        target.map(start, size: 0x1000, "r--p", path: "/app/libimage.so")
        target.put(bytes: [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], at: start)
        target.put16(3, at: start + 16)        // ET_DYN
        target.put16(62, at: start + 18)       // EM_X86_64
        target.put(phoff, at: start + 32)
        target.put16(56, at: start + 54)
        target.put16(phnum, at: start + 56)
        let notes = noteBytes ?? note(name: "GNU", type: 3, desc: buildID)
        // PT_LOAD: type, flags, offset, vaddr, paddr, filesz, memsz, align.
        target.put32(1, at: start + 64)
        target.put(words: [0, 0, 0, 0x1000, 0x1000, 0x1000], at: start + 64 + 8)
        target.put32(4, at: start + 64 + 56)
        target.put(words: [0x200, 0x200, 0x200, noteSize ?? UInt64(notes.count), noteSize ?? UInt64(notes.count), 4],
                   at: start + 64 + 56 + 8)
        target.put(bytes: notes, at: start + 0x200)
    }

    func testBuildIDFromTheMappedImage() {
        let target = InMemoryTarget()
        mapImage(target, at: 0x7f00_0000_0000)
        XCTAssertEqual(target.buildID(ofImageAt: 0x7f00_0000_0000), buildID)
        XCTAssertEqual(BuildID.ofImage(at: 0x7f00_0000_0000) { target.readBytes($0, count: $1) }, buildID)
        // Not the start of an image: no ELF magic there.
        XCTAssertNil(target.buildID(ofImageAt: 0x7f00_0000_0200))
        // Another note's type or name is not a build id.
        let other = InMemoryTarget()
        mapImage(other, at: 0x1000, noteBytes: note(name: "GNU", type: 1, desc: buildID) + note(name: "XYZ", type: 3, desc: buildID))
        XCTAssertNil(other.buildID(ofImageAt: 0x1000))
    }

    func testHostileHeadersGiveNil() {
        // Program headers far past the image, too many of them, a note segment of 4 GiB, a note
        // whose declared descriptor runs past its segment, a header that reads past the mapping.
        let cases: [(String, (InMemoryTarget) -> Void)] = [
            ("phoff huge", { self.mapImage($0, at: 0x10000, phoff: 1 << 40) }),
            ("phoff wraps", { self.mapImage($0, at: 0x10000, phoff: UInt64.max - 8) }),
            ("phnum huge", { self.mapImage($0, at: 0x10000, phnum: .max) }),
            ("note size huge", { self.mapImage($0, at: 0x10000, noteSize: 1 << 32) }),
            ("note past the mapping", { self.mapImage($0, at: 0x10000, noteSize: 0xf000) }),
            ("desc size past the note", { self.mapImage($0, at: 0x10000, noteBytes: self.note(name: "GNU", type: 3, desc: self.buildID,
                                                                                           declaredDescSize: 0x7fff_ffff)) }),
        ]
        for (what, build) in cases {
            let target = InMemoryTarget()
            build(target)
            XCTAssertNil(target.buildID(ofImageAt: 0x10000), what)
        }
        // Only part of an ELF header mapped.
        let short = InMemoryTarget()
        short.map(0xfff_ffc0, size: 0x40 - 8)
        short.put(bytes: [0x7f, 0x45, 0x4c, 0x46], at: 0xfff_ffc0)
        XCTAssertNil(short.buildID(ofImageAt: 0xfff_ffc0))
    }

    // MARK: ElfFile

    func readelfBuildID(_ path: String) throws -> String? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/readelf") else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/readelf")
        process.arguments = ["-n", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        for line in output.split(separator: "\n") where line.contains("Build ID:") {
            return line.split(separator: " ").last.map(String.init)
        }
        return nil
    }

    func testElfFileOfThisMachine() throws {
        let candidates = ["/bin/true", "/usr/bin/true", "/usr/lib/x86_64-linux-gnu/libc.so.6"]
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw XCTSkip("no system ELF file found")
        }
        let file = try ElfFile(path: path)
        XCTAssertTrue(file.type == 2 || file.type == 3, "an executable or shared object")
        XCTAssertNotNil(file.section(named: ".text"))
        XCTAssertNotNil(file.section(named: ".dynsym"))
        XCTAssertFalse(file.hasSwiftMetadata)
        guard let id = file.buildID else { throw XCTSkip("\(path) has no build id") }
        XCTAssertGreaterThanOrEqual(id.count, 8)
        let hex = id.map { String(format: "%02x", $0) }.joined()
        if let expected = try readelfBuildID(path) { XCTAssertEqual(hex, expected, "readelf -n \(path)") }
        // The same id read from the file's bytes as the loader would map them (its first segment
        // starts at file offset 0).
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let first = file.firstLoadAddress
        let fromImage = BuildID.ofImage(at: first) { address, count in
            let offset = Int(address - first)
            return offset + count <= bytes.count ? Array(bytes[offset..<offset + count]) : nil
        }
        XCTAssertEqual(fromImage, id)
    }

    func testElfFileRefusesWhatIsNotELF() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swref-elf-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = directory.appendingPathComponent("notes.txt")
        try Data("not an ELF file at all, only some text that is long enough for a header\n".utf8).write(to: text)
        let empty = directory.appendingPathComponent("empty")
        try Data().write(to: empty)
        for path in [text.path, empty.path, directory.path, directory.appendingPathComponent("missing").path] {
            XCTAssertThrowsError(try ElfFile(path: path), path) { error in
                let message = "\(error)"
                XCTAssertFalse(message.isEmpty)
                XCTAssertFalse(message.contains("\n"), "one line: \(message)")
            }
        }
    }
}
