import Foundation
import XCTest

/// Cores of real test programs with one thing damaged, as heap corruption or a bad copy would.
enum DamagedCores {
    /// A core of `testdata/census` (1000 nodes, 50 leaves) and the address of one census.Node.
    static func census(named name: String) throws -> (exe: String, core: String, node: UInt64) {
        let exe = try TestPrograms.binary("census", .optimized)
        let program = try RunningProgram(exe, ["1000", "50"])
        defer { program.stop() }
        let why = try Shell.swref(["why", "\(program.pid)", "census.Node"])
        let node = try XCTUnwrap(why.stdout.split(separator: "\n").dropFirst().first?.split(separator: " ")
            .first { $0.hasPrefix("0x") }.flatMap { UInt64($0.dropFirst(2), radix: 16) }, why.stdout)
        let core = TestPrograms.buildDirectory.appendingPathComponent(name).path
        XCTAssertEqual(try Shell.swref(["dump", "\(program.pid)", "-o", core]).status, 0)
        return (exe, core, node)
    }

    /// The core's file offset of the `count` bytes at a target address, through its PT_LOAD
    /// headers; nil when no segment holds them all in the file.
    static func fileOffset(of address: UInt64, count: UInt64 = 1, inCore core: [UInt8]) -> Int? {
        let phoff = Int(core.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) })
        let phnum = Int(core.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 56, as: UInt16.self) })
        for index in 0..<phnum {
            let (type, offset, vaddr, filesz) = core.withUnsafeBytes { raw in
                (raw.loadUnaligned(fromByteOffset: phoff + index * 56, as: UInt32.self),
                 raw.loadUnaligned(fromByteOffset: phoff + index * 56 + 8, as: UInt64.self),
                 raw.loadUnaligned(fromByteOffset: phoff + index * 56 + 16, as: UInt64.self),
                 raw.loadUnaligned(fromByteOffset: phoff + index * 56 + 32, as: UInt64.self))
            }
            if type == 1, address >= vaddr, filesz >= count, address - vaddr <= filesz - count { return Int(offset + address - vaddr) }
        }
        return nil
    }

    /// Grows the glibc chunk size in front of the block at `address` by 16, in the PT_LOAD that
    /// holds it: the walk meets a chunk whose size no longer leads to the next header.
    static func growChunkHeader(of address: UInt64, inCore core: String) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: core)))
        guard let at = fileOffset(of: address - 8, count: 8, inCore: bytes) else {
            throw TestFailure("no PT_LOAD holds the chunk header of 0x\(String(address, radix: 16))")
        }
        let size = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self) }
        withUnsafeBytes(of: (size + 16).littleEndian) { for (i, byte) in $0.enumerated() { bytes[at + i] = byte } }
        try Data(bytes).write(to: URL(fileURLWithPath: core))
    }

    /// The notes of a core's first program header (the PT_NOTE, as swref, gdb and the kernel
    /// write it): each note's type, and its descriptor's offset and size.
    static func notes(in core: [UInt8]) -> [(type: UInt32, desc: Int, size: Int)] {
        let phoff = Int(core.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) })
        let notesOffset = Int(core.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: phoff + 8, as: UInt64.self) })
        let notesSize = Int(core.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: phoff + 32, as: UInt64.self) })
        var found: [(UInt32, Int, Int)] = []
        var offset = notesOffset
        while offset + 12 <= notesOffset + notesSize {
            let (nameSize, descSize, type) = core.withUnsafeBytes {
                (Int($0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)), Int($0.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)),
                 $0.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self))
            }
            let desc = offset + 12 + (nameSize + 3) & ~3
            found.append((type, desc, descSize))
            offset = desc + (descSize + 3) & ~3
        }
        return found
    }

    /// Where a core's NT_FILE note is: the descriptor's offset and size, its entry count, and the
    /// offset of the names after count, page size and count × (start, end, page offset).
    static func fileNote(in core: [UInt8]) -> (desc: Int, size: Int, count: Int, names: Int)? {
        guard let note = notes(in: core).first(where: { $0.type == 0x4649_4c45 }) else { return nil }
        let count = Int(core.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: note.desc, as: UInt64.self) })
        return (note.desc, note.size, count, note.desc + 16 + 24 * count)
    }
}
