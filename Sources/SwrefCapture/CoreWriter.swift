import Glibc
import SwrefImages
import SwrefMemory
import SwrefSupport

/// Writes an ELF core of a captured process that gdb and `swref core` read: NT_PRSTATUS per
/// thread, NT_PRPSINFO, NT_AUXV, NT_FILE, and a PT_LOAD per mapping.
public enum CoreWriter {
    public struct Process {
        public var pid: Int32
        public var commandName: String
        public var commandLine: String
        public var auxv: [UInt8]

        public init(pid: Int32, commandName: String, commandLine: String, auxv: [UInt8]) {
            self.pid = pid
            self.commandName = commandName
            self.commandLine = commandLine
            self.auxv = auxv
        }

        /// Reads what a core needs of a live process from /proc.
        public static func live(_ pid: Int32) -> Process {
            let comm = ProcFS.readFile("/proc/\(pid)/comm")?.trimmingCharacters(in: "\n") ?? ""
            let cmdline = (ProcFS.readFile("/proc/\(pid)/cmdline") ?? "").map { $0 == "\0" ? " " : $0 }
            let auxv = ProcFS.readBytes("/proc/\(pid)/auxv") ?? []
            return Process(pid: pid, commandName: comm, commandLine: String(cmdline).trimmingCharacters(in: " "), auxv: auxv)
        }
    }

    /// - Parameter readOnlyFiles: write read-only file mappings whole (self-contained, like gcore)
    ///   or only their first page (like the kernel: the files are read from disk later).
    public static func write(_ snapshot: Snapshot, process: Process, to path: String, readOnlyFiles: Bool = true,
                             progress: ProgressReporter? = nil) throws {
        let regions = snapshot.memoryMap.regions.filter { $0.path != "[vvar]" && $0.path != "[vsyscall]" && !$0.path.hasPrefix("[vvar") }
        let notes = buildNotes(snapshot, process: process, regions: regions)
        let headerSize = 64 + 56 * (regions.count + 1)
        let notesOffset = headerSize
        var dataOffset = (notesOffset + notes.count + 4095) & ~4095

        func dumpedSize(_ region: MemoryRegion) -> UInt64 { CoreWriter.dumpedSize(region, readOnlyFiles: readOnlyFiles) }

        var header = [UInt8](repeating: 0, count: headerSize)
        header.withUnsafeMutableBytes { raw in
            raw.copyBytes(from: [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] as [UInt8])
            raw.storeBytes(of: UInt16(ET_CORE), toByteOffset: 16, as: UInt16.self)
            raw.storeBytes(of: UInt16(EM_X86_64), toByteOffset: 18, as: UInt16.self)
            raw.storeBytes(of: UInt32(1), toByteOffset: 20, as: UInt32.self)
            raw.storeBytes(of: UInt64(64), toByteOffset: 32, as: UInt64.self)          // e_phoff
            raw.storeBytes(of: UInt16(64), toByteOffset: 52, as: UInt16.self)          // e_ehsize
            raw.storeBytes(of: UInt16(56), toByteOffset: 54, as: UInt16.self)          // e_phentsize
            raw.storeBytes(of: UInt16(regions.count + 1), toByteOffset: 56, as: UInt16.self)
            func phdr(_ index: Int, type: UInt32, flags: UInt32, offset: Int, vaddr: UInt64, filesz: UInt64, memsz: UInt64, align: UInt64) {
                let at = 64 + index * 56
                raw.storeBytes(of: type, toByteOffset: at, as: UInt32.self)
                raw.storeBytes(of: flags, toByteOffset: at + 4, as: UInt32.self)
                raw.storeBytes(of: UInt64(offset), toByteOffset: at + 8, as: UInt64.self)
                raw.storeBytes(of: vaddr, toByteOffset: at + 16, as: UInt64.self)
                raw.storeBytes(of: filesz, toByteOffset: at + 32, as: UInt64.self)
                raw.storeBytes(of: memsz, toByteOffset: at + 40, as: UInt64.self)
                raw.storeBytes(of: align, toByteOffset: at + 48, as: UInt64.self)
            }
            phdr(0, type: UInt32(PT_NOTE), flags: 0, offset: notesOffset, vaddr: 0, filesz: UInt64(notes.count), memsz: 0, align: 4)
            for (index, region) in regions.enumerated() {
                let flags = (region.readable ? 4 : 0) | (region.writable ? 2 : 0) | (region.executable ? 1 : 0)
                let size = dumpedSize(region)
                phdr(index + 1, type: UInt32(PT_LOAD), flags: UInt32(flags), offset: dataOffset, vaddr: region.start,
                     filesz: size, memsz: region.size, align: 4096)
                dataOffset += Int(size)
            }
        }

        // 0600 whatever the file was: a core holds the target's memory, secrets included.
        let fd = try FileAccess.create(path, mode: 0o600)
        defer { close(fd) }
        try writeAll(fd, header, path)
        try writeAll(fd, notes, path)
        try writeAll(fd, [UInt8](repeating: 0, count: ((notesOffset + notes.count + 4095) & ~4095) - notesOffset - notes.count), path)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        let total = regions.reduce(UInt64(0)) { $0 + dumpedSize($1) }
        var done: UInt64 = 0
        for region in regions {
            var offset: UInt64 = 0
            let size = dumpedSize(region)
            while offset < size {
                let length = Int(min(UInt64(chunk.count), size - offset))
                let ok = chunk.withUnsafeMutableBytes { snapshot.read(region.start + offset, count: length, into: $0.baseAddress!) }
                if !ok { for i in 0..<length { chunk[i] = 0 } }
                try writeAll(fd, chunk[0..<length], path)
                offset += UInt64(length)
                done += UInt64(length)
                progress?.update("writing core", done: done, total: total, unit: .bytes)
            }
        }
    }

    /// The bytes a mapping takes in the core: all of it, zeros included (no holes are left).
    public static func dumpedSize(_ region: MemoryRegion, readOnlyFiles: Bool) -> UInt64 {
        guard region.readable else { return 0 }
        if region.isFileBacked && !region.writable && !readOnlyFiles { return region.fileOffset == 0 ? min(4096, region.size) : 0 }
        return region.size
    }

    /// About the size of the core `write` makes of a process with these mappings and `threads`
    /// threads (before it is captured: the notes are estimated generously).
    public static func estimatedSize(_ map: MemoryMap, threads: Int, readOnlyFiles: Bool) -> UInt64 {
        let regions = map.regions.filter { $0.path != "[vvar]" && $0.path != "[vsyscall]" && !$0.path.hasPrefix("[vvar") }
        let notes = UInt64(threads * 400 + 4096) + regions.reduce(UInt64(0)) { $0 + 24 + UInt64($1.path.utf8.count) + 1 }
        let header = UInt64(64 + 56 * (regions.count + 1))
        return (header + notes + 4095) / 4096 * 4096 + regions.reduce(UInt64(0)) { $0 + dumpedSize($1, readOnlyFiles: readOnlyFiles) }
    }

    private static func writeAll<C: Collection>(_ fd: Int32, _ bytes: C, _ path: String) throws where C.Element == UInt8 {
        let array = Array(bytes)
        try array.withUnsafeBytes { try FileAccess.writeAll(fd, $0, path: path) }
    }

    // MARK: Notes

    private static func buildNotes(_ snapshot: Snapshot, process: Process, regions: [MemoryRegion]) -> [UInt8] {
        var out: [UInt8] = []
        func note(_ type: UInt32, _ desc: [UInt8]) {
            let name: [UInt8] = Array("CORE".utf8) + [0, 0, 0, 0]
            append(&out, UInt32(5))
            append(&out, UInt32(desc.count))
            append(&out, type)
            out += name
            out += desc
            out += [UInt8](repeating: 0, count: (4 - desc.count % 4) % 4)
        }
        // The thread that was the process's main thread goes first: gdb treats it as the current one.
        let threads = snapshot.threads.sorted { ($0.tid == process.pid ? 0 : 1, $0.tid) < ($1.tid == process.pid ? 0 : 1, $1.tid) }
        var psinfo = [UInt8](repeating: 0, count: 136)
        psinfo.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt8(ascii: "S"), toByteOffset: 1, as: UInt8.self)
            raw.storeBytes(of: process.pid, toByteOffset: 24, as: Int32.self)
            for (i, byte) in process.commandName.utf8.prefix(15).enumerated() { raw[40 + i] = byte }
            for (i, byte) in process.commandLine.utf8.prefix(79).enumerated() { raw[56 + i] = byte }
        }
        for thread in threads {
            var status = [UInt8](repeating: 0, count: 336)
            status.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: thread.tid, toByteOffset: 32, as: Int32.self)
                raw.storeBytes(of: process.pid, toByteOffset: 40, as: Int32.self)
                for (i, value) in thread.userRegisters.prefix(27).enumerated() {
                    raw.storeBytes(of: value, toByteOffset: 112 + i * 8, as: UInt64.self)
                }
            }
            note(1, status)
            if thread.tid == threads.first?.tid { note(3, psinfo) }
        }
        if !process.auxv.isEmpty { note(6, process.auxv) }
        let files = regions.filter { $0.isFileBacked }
        var file: [UInt8] = []
        append(&file, UInt64(files.count))
        append(&file, UInt64(4096))
        for region in files {
            append(&file, region.start)
            append(&file, region.end)
            append(&file, region.fileOffset / 4096)
        }
        for region in files { file += Array(region.path.utf8) + [0] }
        note(0x4649_4C45, file)
        return out
    }

    private static func append<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }
}
