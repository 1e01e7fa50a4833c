import CSwrefSystem
import Glibc
import SwrefImages
import SwrefMemory
import SwrefSupport

/// An ELF core file as a `MemorySource`: its PT_LOAD segments, spliced over the files its NT_FILE
/// note says were mapped (a kernel core keeps only the first page of read-only file mappings; the
/// rest is read from the files on disk).
public final class CoreFile: Target {
    public struct Segment {
        public var start: UInt64
        public var end: UInt64
        public var fileOffset: UInt64
        public var fileSize: UInt64
        public var flags: UInt32
    }

    public struct MappedFile {
        public var start: UInt64
        public var end: UInt64
        public var fileOffset: UInt64
        public var path: String
    }

    public let path: String
    public let memoryMap: MemoryMap
    public let threads: [ThreadState]
    public let segments: [Segment]
    public let mappedFiles: [MappedFile]
    public let auxv: [UInt64: UInt64]
    public let pid: Int32
    /// From NT_PRPSINFO: the command name and arguments.
    public let commandName: String
    public let commandLine: String

    private let base: UnsafeRawPointer
    private let length: Int
    private let fileReader: MappedFileReader
    /// The core's mapped paths on this machine: under the sysroot, the EXE given as it is.
    public let files: FileResolver

    /// Opens and checks a core. Errors are one line: not ELF, not a core, truncated, unreadable.
    /// - Parameter executable: the program's file, used for the executable's mappings instead of
    ///   the path the core names.
    public init(path: String, executable: String? = nil, sysroot: String = "") throws {
        self.path = path
        let fd = try FileAccess.openRegular(path)
        defer { close(fd) }
        var info = stat()
        fstat(fd, &info)
        length = Int(info.st_size)
        guard length >= 64 else { throw SwrefError.invalidInput("\(path): not an ELF file (\(length) bytes)") }
        guard let mapped = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw SwrefError.system("mmap", errno: errno, "mapping \(path)")
        }
        base = UnsafeRawPointer(mapped)

        elf_version(UInt32(EV_CURRENT))
        guard let elf = elf_memory(UnsafeMutableRawPointer(mutating: base).assumingMemoryBound(to: CChar.self), length) else {
            munmap(mapped, length)
            throw SwrefError.invalidInput("\(path): not an ELF file")
        }
        defer { elf_end(elf) }
        var ehdr = GElf_Ehdr()
        guard elf_kind(elf) == ELF_K_ELF, gelf_getehdr(elf, &ehdr) != nil else {
            munmap(mapped, length)
            throw SwrefError.invalidInput("\(path): not an ELF file")
        }
        guard ehdr.e_type == ET_CORE else {
            munmap(mapped, length)
            let kind = ehdr.e_type == ET_EXEC ? "an executable" : ehdr.e_type == ET_DYN ? "a shared object or PIE executable" : "an ELF file of type \(ehdr.e_type)"
            throw SwrefError.invalidInput("\(path): \(kind), not a core file")
        }
        guard ehdr.e_machine == EM_X86_64, gelf_getclass(elf) == ELFCLASS64 else {
            munmap(mapped, length)
            throw SwrefError.notSupported("\(path): a core of another architecture (machine \(ehdr.e_machine)); swref reads x86_64 cores")
        }

        var phnum = 0
        guard elf_getphdrnum(elf, &phnum) == 0 else {
            munmap(mapped, length)
            throw SwrefError.invalidInput("\(path): damaged core (program headers unreadable)")
        }
        let declared = max(UInt64(phnum), UInt64(ehdr.e_phnum))
        let (headersEnd, headersOverflow) = ehdr.e_phoff.addingReportingOverflow(declared * 56)
        guard !headersOverflow, headersEnd <= UInt64(length) else {
            munmap(mapped, length)
            throw SwrefError.invalidInput("\(path): truncated core: its \(declared) program headers end past the file's \(length) bytes")
        }
        var segments: [Segment] = []
        var notes: [(type: UInt32, name: String, desc: UnsafeRawBufferPointer)] = []
        for index in 0..<phnum {
            var phdr = GElf_Phdr()
            guard gelf_getphdr(elf, Int32(index), &phdr) != nil else {
                munmap(mapped, length)
                throw SwrefError.invalidInput("\(path): damaged core (program header \(index) unreadable)")
            }
            let (endOfData, overflow) = phdr.p_offset.addingReportingOverflow(phdr.p_filesz)
            if phdr.p_filesz > 0 && (overflow || endOfData > UInt64(length)) {
                munmap(mapped, length)
                throw SwrefError.invalidInput("\(path): truncated core: segment \(index) needs \(overflow ? "an impossible size" : "\(endOfData) bytes"), the file has \(length)")
            }
            if phdr.p_type == PT_LOAD {
                guard phdr.p_memsz > 0, phdr.p_vaddr.addingReportingOverflow(phdr.p_memsz).overflow == false else { continue }
                segments.append(Segment(start: phdr.p_vaddr, end: phdr.p_vaddr + phdr.p_memsz, fileOffset: phdr.p_offset,
                                        fileSize: min(phdr.p_filesz, phdr.p_memsz), flags: phdr.p_flags))
            } else if phdr.p_type == PT_NOTE && phdr.p_filesz > 0 {
                // Only with bytes: an empty note segment's offset may be anything (2^63 once trapped).
                notes += ElfNotes.parse(UnsafeRawBufferPointer(start: base + Int(phdr.p_offset), count: Int(phdr.p_filesz)))
            }
        }
        segments.sort { $0.start < $1.start }
        // Mappings of a process are disjoint and lie in the user address space (x86_64: below 2^47;
        // the vsyscall page above it is one page). A segment that breaks either is damage, and would
        // have the analysis scan terabytes of zeros.
        for (index, segment) in segments.enumerated() {
            if segment.end > 1 << 47 && segment.end - segment.start > 1 << 20 {
                munmap(mapped, length)
                throw SwrefError.invalidInput("\(path): damaged core: a segment of \(segment.end - segment.start) bytes at 0x\(String(segment.start, radix: 16)) reaches beyond the user address space")
            }
            if index > 0 && segment.start < segments[index - 1].end {
                munmap(mapped, length)
                throw SwrefError.invalidInput("\(path): damaged core: segments at 0x\(String(segments[index - 1].start, radix: 16)) and 0x\(String(segment.start, radix: 16)) overlap")
            }
        }
        guard !segments.isEmpty else {
            munmap(mapped, length)
            throw SwrefError.invalidInput("\(path): core has no memory segments")
        }

        var threads: [ThreadState] = []
        var files: [MappedFile] = []
        var auxv: [UInt64: UInt64] = [:]
        var pid: Int32 = 0
        var commandName = "", commandLine = ""
        for note in notes where note.name == "CORE" {
            switch note.type {
            case 1 where note.desc.count >= 112 + 27 * 8: // NT_PRSTATUS
                let tid = note.desc.loadUnaligned(fromByteOffset: 32, as: Int32.self)
                let regs = (0..<27).map { note.desc.loadUnaligned(fromByteOffset: 112 + $0 * 8, as: UInt64.self) }
                threads.append(ThreadState(tid: tid, userRegisters: regs))
            case 3 where note.desc.count >= 136: // NT_PRPSINFO
                pid = note.desc.loadUnaligned(fromByteOffset: 24, as: Int32.self)
                commandName = ElfNotes.cString(note.desc, 40, 16)
                commandLine = ElfNotes.cString(note.desc, 56, 80)
            case 6: // NT_AUXV
                for pair in 0..<note.desc.count / 16 {
                    auxv[note.desc.loadUnaligned(fromByteOffset: pair * 16, as: UInt64.self)] =
                        note.desc.loadUnaligned(fromByteOffset: pair * 16 + 8, as: UInt64.self)
                }
            case 0x4649_4C45: // NT_FILE
                files = CoreFile.parseFileNote(note.desc)
            default:
                continue
            }
        }
        guard !threads.isEmpty else {
            munmap(mapped, length)
            throw SwrefError.invalidInput("\(path): core has no thread registers (NT_PRSTATUS)")
        }
        if pid == 0 { pid = threads[0].tid }

        if let executable, let phdr = auxv[3], let named = files.first(where: { $0.start <= phdr && phdr < $0.end })?.path {
            files = files.map { var f = $0; if f.path == named { f.path = executable }; return f }
        }
        var regions: [MemoryRegion] = []
        for segment in segments {
            let file = files.first { $0.start <= segment.start && segment.start < $0.end }
            regions.append(MemoryRegion(start: segment.start, end: segment.end, readable: segment.flags & 4 != 0,
                                        writable: segment.flags & 2 != 0, executable: segment.flags & 1 != 0,
                                        fileOffset: file.map { $0.fileOffset &+ (segment.start - $0.start) } ?? 0,
                                        inode: file == nil ? 0 : 1, path: file?.path ?? ""))
        }
        memoryMap = MemoryMap(regions: regions)
        self.segments = segments
        self.threads = threads
        self.mappedFiles = files
        self.auxv = auxv
        self.pid = pid
        self.commandName = commandName
        self.commandLine = commandLine
        self.files = FileResolver(sysroot: sysroot, exactPaths: Set(executable.map { [$0] } ?? []))
        self.fileReader = MappedFileReader(memoryMap: memoryMap, files: self.files)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), length) }

    /// Files the core names that could not be read from disk (so far).
    public var missingFiles: Set<String> { fileReader.missingFiles }

    public func read(_ address: UInt64, count: Int, into buffer: UnsafeMutableRawPointer) -> Bool {
        guard let index = MemoryMap.index(in: memoryMap.regions, containing: address) else { return false }
        let segment = segments[index]
        let available = segment.end - address
        if UInt64(count) > available {
            return read(address, count: Int(available), into: buffer)
                && read(segment.end, count: count - Int(available), into: buffer + Int(available))
        }
        let offset = address - segment.start
        if offset + UInt64(count) <= segment.fileSize {
            memcpy(buffer, base + Int(segment.fileOffset + offset), count)
            return true
        }
        // Left out of the core: a file mapping is read from its file, anonymous memory was zeros.
        if memoryMap.regions[index].isFileBacked {
            if offset < segment.fileSize {
                let inCore = Int(segment.fileSize - offset)
                memcpy(buffer, base + Int(segment.fileOffset + offset), inCore)
                return read(address + UInt64(inCore), count: count - inCore, into: buffer + inCore)
            }
            return fileReader.read(address, count: count, into: buffer)
        }
        if offset >= segment.fileSize {
            memset(buffer, 0, count)
        } else {
            let inCore = Int(segment.fileSize - offset)
            memcpy(buffer, base + Int(segment.fileOffset + offset), inCore)
            memset(buffer + inCore, 0, count - inCore)
        }
        return true
    }

    public var identity: TargetIdentity {
        TargetIdentity(pid: pid, executablePath: executablePath, name: "core of PID \(pid) (\(commandName))")
    }

    /// The mapping that holds the program headers of the executable (AT_PHDR), or the first file.
    public var executablePath: String? {
        if let phdr = auxv[3], let file = mappedFiles.first(where: { $0.start <= phdr && phdr < $0.end }) { return file.path }
        return mappedFiles.first?.path
    }

    public func localBytes(containing address: UInt64) -> (start: UInt64, bytes: UnsafeRawBufferPointer)? {
        guard let index = MemoryMap.index(in: memoryMap.regions, containing: address) else { return nil }
        let segment = segments[index]
        guard segment.fileSize == segment.end - segment.start else { return nil }
        return (segment.start, UnsafeRawBufferPointer(start: base + Int(segment.fileOffset), count: Int(segment.fileSize)))
    }

    /// Bytes that are in the core file itself (never from disk), or nil.
    public func readFromCore(_ address: UInt64, count: Int) -> [UInt8]? {
        guard let index = MemoryMap.index(in: memoryMap.regions, containing: address) else { return nil }
        let segment = segments[index]
        let offset = address - segment.start
        guard offset + UInt64(count) <= segment.fileSize else { return nil }
        return Array(UnsafeRawBufferPointer(start: base + Int(segment.fileOffset + offset), count: count))
    }

    /// Only the core's own bytes: the kernel keeps the first page of every ELF mapping, so an
    /// image's build id is read from what was mapped, not from the file the core names.
    public func ownBytes(_ address: UInt64, count: Int) -> [UInt8]? { readFromCore(address, count: count) }

    // MARK: Notes

    /// NT_FILE: count, page size, count × (start, end, page offset), then the names.
    public static func parseFileNote(_ desc: UnsafeRawBufferPointer) -> [MappedFile] {
        guard desc.count >= 16 else { return [] }
        let count = Int(min(desc.loadUnaligned(fromByteOffset: 0, as: UInt64.self), UInt64(desc.count / 24)))
        let pageSize = desc.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        var names = 16 + count * 24
        var files: [MappedFile] = []
        for index in 0..<count {
            let entry = 16 + index * 24
            guard names < desc.count else { break }
            let name = ElfNotes.cString(desc, names, desc.count - names)
            names += name.utf8.count + 1
            let start = desc.loadUnaligned(fromByteOffset: entry, as: UInt64.self)
            let end = desc.loadUnaligned(fromByteOffset: entry + 8, as: UInt64.self)
            guard end > start else { continue }
            files.append(MappedFile(start: start, end: end,
                                    fileOffset: desc.loadUnaligned(fromByteOffset: entry + 16, as: UInt64.self) &* pageSize, path: name))
        }
        return files
    }
}
