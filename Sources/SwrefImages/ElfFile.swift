import CSwrefSystem
import Glibc
import SwrefMemory
import SwrefSupport

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
    /// The symbol tables (.dynsym, .symtab) as libelf maps them. Symbols are read in place and
    /// named by reference — table number in the top bit, index below — so that a library's tens of
    /// thousands of symbols cost a few bytes each in swref (as strings and dictionary entries they
    /// were half of swref's own heap; as 40-byte copies, 5 MiB for the Swift runtime alone).
    private struct SymbolTable {
        var data: UnsafeMutablePointer<Elf_Data>
        var strings: Int
        var count: Int
        var isSymtab: Bool
        /// The entries and names in place, when libelf hands them over as they are (a 64-bit file of
        /// this machine's byte order; a string table that ends in NUL): no call per symbol.
        var entries: UnsafePointer<Elf64_Sym>?
        var names: UnsafeBufferPointer<CChar>?
    }
    private lazy var tables: [SymbolTable] = {
        var tables: [SymbolTable] = []
        var scn = elf_nextscn(elf, nil)
        while let current = scn, tables.count < 2 {
            var shdr = GElf_Shdr()
            if gelf_getshdr(current, &shdr) != nil, shdr.sh_type == SHT_SYMTAB || shdr.sh_type == SHT_DYNSYM,
               shdr.sh_entsize > 0, shdr.sh_size / shdr.sh_entsize < 1 << 31, let data = elf_getdata(current, nil) {
                var table = SymbolTable(data: data, strings: Int(shdr.sh_link), count: Int(shdr.sh_size / shdr.sh_entsize),
                                        isSymtab: shdr.sh_type == SHT_SYMTAB)
                if gelf_getclass(elf) == ELFCLASS64, data.pointee.d_type == ELF_T_SYM, let entries = data.pointee.d_buf,
                   data.pointee.d_size >= table.count * MemoryLayout<Elf64_Sym>.stride,
                   Int(bitPattern: entries) % MemoryLayout<Elf64_Sym>.alignment == 0,
                   let section = elf_getscn(elf, table.strings), let strings = elf_getdata(section, nil),
                   let names = strings.pointee.d_buf, strings.pointee.d_size > 0,
                   names.load(fromByteOffset: strings.pointee.d_size - 1, as: CChar.self) == 0 {
                    table.entries = UnsafePointer(entries.assumingMemoryBound(to: Elf64_Sym.self))
                    table.names = UnsafeBufferPointer(start: names.assumingMemoryBound(to: CChar.self), count: strings.pointee.d_size)
                }
                tables.append(table)
            }
            scn = elf_nextscn(elf, current)
        }
        return tables
    }()
    /// FUNC and OBJECT symbols by value: of .symtab when there is one (.dynsym repeats a part of it).
    private lazy var byAddress: [(value: UInt64, symbol: UInt32)] = {
        let preferred = tables.indices.first { tables[$0].isSymtab } ?? tables.indices.first
        var sorted: [(value: UInt64, symbol: UInt32)] = []
        if let table = preferred {
            forEachSymbol(in: table) { reference, sym, _ in
                let type = Int32(sym.st_info & 0xf)
                if type == STT_FUNC || type == STT_OBJECT { sorted.append((sym.st_value, reference)) }
            }
        }
        sorted.sort { $0.value < $1.value }
        return sorted
    }()
    /// Open addressing over every named symbol by the hash of its name (UInt32.max: empty), twice
    /// as many slots as symbols; references grow in table order.
    private lazy var slots: [UInt32] = {
        var named: [(hash: UInt64, symbol: UInt32)] = []
        for table in tables.indices { forEachSymbol(in: table) { reference, _, name in named.append((ElfFile.hash(name), reference)) } }
        var capacity = 16
        while capacity < named.count * 2 { capacity *= 2 }
        var slots = [UInt32](repeating: .max, count: capacity)
        for entry in named {
            var slot = Int(truncatingIfNeeded: entry.hash) & (capacity - 1)
            while slots[slot] != .max { slot = (slot + 1) & (capacity - 1) }
            slots[slot] = entry.symbol
        }
        return slots
    }()

    public init(path: String) throws {
        self.path = path
        elf_version(UInt32(EV_CURRENT))
        fd = try FileAccess.openRegular(path)
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
        guard !slots.isEmpty else { return nil }
        let hash = ElfFile.hash(name), mask = slots.count - 1
        // As a table filled in order would keep it: the last .symtab entry, else the first one.
        var first = UInt32.max, lastSymtab: UInt32? = nil
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] != .max {
            let reference = slots[slot]
            if let (_, cName) = entry(reference), strcmp(cName, name) == 0 {
                first = min(first, reference)
                if tables[Int(reference >> 31)].isSymtab { lastSymtab = max(lastSymtab ?? 0, reference) }
            }
            slot = (slot + 1) & mask
        }
        return symbol(lastSymtab ?? first)
    }

    /// The symbol whose range holds `address` (unrelocated), or the nearest one below it.
    public func symbol(containing address: UInt64) -> Symbol? {
        let after = byAddress.partitioningIndex { $0.value > address }
        guard after > 0, let candidate = symbol(byAddress[after - 1].symbol) else { return nil }
        return candidate.size == 0 || address < candidate.value + candidate.size ? candidate : nil
    }

    /// Data symbols (STT_OBJECT) whose names start with `prefix` and end with `suffix`, by value:
    /// one pass over the table, no index built.
    public func objectSymbols(prefix: String, suffix: String) -> [Symbol] {
        guard let table = tables.indices.first(where: { tables[$0].isSymtab }) ?? tables.indices.first else { return [] }
        let suffixLength = suffix.utf8.count
        var found: [Symbol] = []
        forEachSymbol(in: table) { reference, sym, name in
            guard Int32(sym.st_info & 0xf) == STT_OBJECT, strncmp(name, prefix, prefix.utf8.count) == 0 else { return }
            let length = strlen(name)
            if length >= suffixLength && strcmp(name + length - suffixLength, suffix) == 0, let symbol = symbol(reference) {
                found.append(symbol)
            }
        }
        return found.sorted { $0.value < $1.value }
    }

    /// Every defined, named symbol of a table, with its reference.
    private func forEachSymbol(in table: Int, _ body: (UInt32, GElf_Sym, UnsafePointer<CChar>) -> Void) {
        for index in 0..<tables[table].count {
            let reference = UInt32(table) << 31 | UInt32(index)
            if let (sym, name) = entry(reference) { body(reference, sym, name) }
        }
    }

    @inline(__always)
    private func entry(_ reference: UInt32) -> (GElf_Sym, UnsafePointer<CChar>)? {
        let table = tables[Int(reference >> 31)]
        if let entries = table.entries, let names = table.names {
            let sym = entries[Int(reference & 0x7fff_ffff)]
            guard sym.st_shndx != 0, sym.st_name != 0, Int(sym.st_name) < names.count else { return nil }
            return (sym, names.baseAddress! + Int(sym.st_name))
        }
        var sym = GElf_Sym()
        guard gelf_getsym(table.data, Int32(reference & 0x7fff_ffff), &sym) != nil, sym.st_shndx != 0, sym.st_name != 0,
              let name = elf_strptr(elf, table.strings, Int(sym.st_name)) else { return nil }
        return (sym, UnsafePointer(name))
    }

    private func symbol(_ reference: UInt32) -> Symbol? {
        guard reference != .max, let (sym, name) = entry(reference) else { return nil }
        let type = Int32(sym.st_info & 0xf)
        return Symbol(name: String(cString: name), value: sym.st_value, size: sym.st_size, isFunction: type == STT_FUNC,
                      isObject: type == STT_OBJECT || type == STT_TLS)
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
}
