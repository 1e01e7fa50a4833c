import CSwrefSystem
import Glibc

/// An ELF file on disk, read with libelf: its sections, load segments and symbols.
public final class ElfFile {
    public struct Section {
        public var name: String
        public var type: UInt32
        public var flags: UInt64
        public var address: UInt64
        public var offset: UInt64
        public var size: UInt64
    }

    public struct Symbol {
        public var name: String
        public var value: UInt64
        public var size: UInt64
        public var isFunction: Bool
        public var isObject: Bool
    }

    public let path: String
    public let type: UInt16
    public let sections: [Section]
    /// Lowest PT_LOAD virtual address, page-aligned down: what the load bias is measured from.
    public let firstLoadAddress: UInt64
    /// File range of the section header table, and of the section-name string table.
    public let sectionHeaderRange: (offset: UInt64, size: UInt64)
    public let sectionNamesRange: (offset: UInt64, size: UInt64)
    public let buildID: [UInt8]?
    /// Size of the image's thread-local block (PT_TLS), 0 when it has none.
    public let tlsSize: UInt64

    private let fd: Int32
    private let elf: OpaquePointer
    /// A symbol as the tables keep it: its name stays in the mapped file, so that a library's tens
    /// of thousands of symbols cost a few dozen bytes each, not a string and a dictionary entry
    /// (held as strings, the symbols of the target's libraries were half of swref's own heap).
    private struct Entry {
        var name: UnsafePointer<CChar>
        var value: UInt64
        var size: UInt64
        var type: Int32
        var fromSymtab: Bool

        var symbol: Symbol {
            Symbol(name: String(cString: name), value: value, size: size, isFunction: type == STT_FUNC,
                   isObject: type == STT_OBJECT || type == STT_TLS)
        }
    }
    private var symbolsLoaded = false
    /// FUNC and OBJECT symbols, by value.
    private var byAddress: [Entry] = []
    /// Every named symbol in table order, with the hash of its name.
    private var named: [(hash: UInt64, entry: Entry)] = []
    /// Open addressing over `named` by hash (-1: empty slot), twice as many slots as symbols.
    private var slots: [Int32] = []

    public init(path: String) throws {
        self.path = path
        elf_version(UInt32(EV_CURRENT))
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SwrefError.system("open", errno: errno, "opening \(path)") }
        guard let elf = elf_begin(fd, ELF_C_READ_MMAP, nil) else {
            close(fd)
            throw SwrefError.invalidInput("\(path): not an ELF file")
        }
        self.elf = elf
        var ehdr = GElf_Ehdr()
        guard elf_kind(elf) == ELF_K_ELF, gelf_getehdr(elf, &ehdr) != nil else {
            elf_end(elf); close(fd)
            throw SwrefError.invalidInput("\(path): not an ELF file")
        }
        type = ehdr.e_type
        var shstrndx = 0
        elf_getshdrstrndx(elf, &shstrndx)
        var sections: [Section] = []
        var shstrRange: (UInt64, UInt64) = (0, 0)
        var buildID: [UInt8]? = nil
        var scn = elf_nextscn(elf, nil)
        while let current = scn {
            var shdr = GElf_Shdr()
            if gelf_getshdr(current, &shdr) != nil {
                let name = elf_strptr(elf, shstrndx, Int(shdr.sh_name)).map { String(cString: $0) } ?? ""
                sections.append(Section(name: name, type: shdr.sh_type, flags: shdr.sh_flags, address: shdr.sh_addr,
                                        offset: shdr.sh_offset, size: shdr.sh_size))
                if elf_ndxscn(current) == shstrndx { shstrRange = (shdr.sh_offset, shdr.sh_size) }
                if shdr.sh_type == SHT_NOTE && name == ".note.gnu.build-id", let data = elf_getdata(current, nil),
                   data.pointee.d_size > 16, let base = data.pointee.d_buf {
                    let bytes = UnsafeRawBufferPointer(start: base, count: data.pointee.d_size)
                    let nameSize = Int(bytes.load(fromByteOffset: 0, as: UInt32.self))
                    let descSize = Int(bytes.load(fromByteOffset: 4, as: UInt32.self))
                    let descStart = 12 + ((nameSize + 3) & ~3)
                    if descStart + descSize <= bytes.count { buildID = Array(bytes[descStart..<descStart + descSize]) }
                }
            }
            scn = elf_nextscn(elf, current)
        }
        self.sections = sections
        self.sectionNamesRange = shstrRange
        self.sectionHeaderRange = (ehdr.e_shoff, UInt64(ehdr.e_shnum) * UInt64(ehdr.e_shentsize))
        self.buildID = buildID
        var phnum = 0
        elf_getphdrnum(elf, &phnum)
        var lowest = UInt64.max
        var tls: UInt64 = 0
        for index in 0..<phnum {
            var phdr = GElf_Phdr()
            guard gelf_getphdr(elf, Int32(index), &phdr) != nil else { continue }
            if phdr.p_type == PT_LOAD { lowest = min(lowest, phdr.p_vaddr & ~0xfff) }
            if phdr.p_type == PT_TLS { tls = phdr.p_memsz + phdr.p_align }
        }
        tlsSize = tls
        firstLoadAddress = lowest == .max ? 0 : lowest
    }

    deinit {
        elf_end(elf)
        close(fd)
    }

    public func section(named name: String) -> Section? { sections.first { $0.name == name } }

    /// Allocated, writable sections (.data, .bss, …): where globals live.
    public var writableSections: [Section] {
        sections.filter { $0.flags & UInt64(SHF_ALLOC) != 0 && $0.flags & UInt64(SHF_WRITE) != 0 && $0.size > 0
            && $0.type != SHT_NOBITS || ($0.type == SHT_NOBITS && $0.flags & UInt64(SHF_TLS) == 0 && $0.flags & UInt64(SHF_ALLOC) != 0 && $0.size > 0) }
    }

    public var hasSwiftMetadata: Bool { sections.contains { $0.name.hasPrefix("swift5_") } }

    /// A symbol by exact name (.symtab, else .dynsym), value unrelocated.
    public func symbol(named name: String) -> Symbol? {
        loadSymbols()
        guard !slots.isEmpty else { return nil }
        let hash = ElfFile.hash(name), mask = slots.count - 1
        // As a table filled in order would keep it: the last .symtab entry, else the first one.
        var first = Int.max, lastSymtab = -1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] >= 0 {
            let index = Int(slots[slot])
            if named[index].hash == hash, strcmp(named[index].entry.name, name) == 0 {
                first = min(first, index)
                if named[index].entry.fromSymtab { lastSymtab = max(lastSymtab, index) }
            }
            slot = (slot + 1) & mask
        }
        let index = lastSymtab >= 0 ? lastSymtab : first
        return index == Int.max ? nil : named[index].entry.symbol
    }

    /// The symbol whose range holds `address` (unrelocated), or the nearest one below it.
    public func symbol(containing address: UInt64) -> Symbol? {
        loadSymbols()
        var low = 0
        var high = byAddress.count
        while low < high {
            let mid = (low + high) / 2
            if byAddress[mid].value <= address { low = mid + 1 } else { high = mid }
        }
        guard low > 0 else { return nil }
        let candidate = byAddress[low - 1]
        return candidate.size == 0 || address < candidate.value + candidate.size ? candidate.symbol : nil
    }

    /// Data symbols (STT_OBJECT) whose names start with `prefix` and end with `suffix`, by value.
    public func objectSymbols(prefix: String, suffix: String) -> [Symbol] {
        loadSymbols()
        let suffixLength = suffix.utf8.count
        return byAddress.filter { entry in
            guard entry.type == STT_OBJECT, strncmp(entry.name, prefix, prefix.utf8.count) == 0 else { return false }
            let length = strlen(entry.name)
            return length >= suffixLength && strcmp(entry.name + length - suffixLength, suffix) == 0
        }.map(\.symbol)
    }

    /// FNV-1a of a name's bytes.
    private static func hash(_ bytes: UnsafePointer<CChar>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var cursor = bytes
        while cursor.pointee != 0 {
            hash = (hash ^ UInt64(UInt8(bitPattern: cursor.pointee))) &* 0x100_0000_01b3
            cursor += 1
        }
        return hash
    }

    private static func hash(_ name: String) -> UInt64 { name.withCString { hash($0) } }

    private func loadSymbols() {
        guard !symbolsLoaded else { return }
        symbolsLoaded = true
        var scn = elf_nextscn(elf, nil)
        while let current = scn {
            var shdr = GElf_Shdr()
            if gelf_getshdr(current, &shdr) != nil, shdr.sh_type == SHT_SYMTAB || shdr.sh_type == SHT_DYNSYM,
               shdr.sh_entsize > 0, let data = elf_getdata(current, nil) {
                let count = Int(shdr.sh_size / shdr.sh_entsize)
                for index in 0..<count {
                    var sym = GElf_Sym()
                    guard gelf_getsym(data, Int32(index), &sym) != nil, sym.st_shndx != 0, sym.st_name != 0,
                          let cName = elf_strptr(elf, Int(shdr.sh_link), Int(sym.st_name)) else { continue }
                    let type = Int32(sym.st_info & 0xf)
                    let entry = Entry(name: UnsafePointer(cName), value: sym.st_value, size: sym.st_size, type: type,
                                      fromSymtab: shdr.sh_type == SHT_SYMTAB)
                    named.append((ElfFile.hash(entry.name), entry))
                    if type == STT_FUNC || type == STT_OBJECT { byAddress.append(entry) }
                }
            }
            scn = elf_nextscn(elf, current)
        }
        var capacity = 16
        while capacity < named.count * 2 { capacity *= 2 }
        slots = [Int32](repeating: -1, count: capacity)
        for (index, symbol) in named.enumerated() {
            var slot = Int(truncatingIfNeeded: symbol.hash) & (capacity - 1)
            while slots[slot] >= 0 { slot = (slot + 1) & (capacity - 1) }
            slots[slot] = Int32(index)
        }
        byAddress.sort { $0.value < $1.value }
    }
}
