import Glibc
import SwrefImages
import SwrefMemory
import SwrefSupport

/// Where jemalloc keeps what a walk starts from: the extent map (`je_arena_emap_global`), the size
/// table (`je_sz_index2size_tab`) and the arena array (`je_arenas`).
///
/// None of them is exported from Debian's stripped `libjemalloc.so.2`. Symbols are used when the
/// image has them (a static link whose `.symtab` survived); otherwise the addresses are decoded
/// from RIP-relative operands (`lea`/`mov disp32(%rip)`) in exported functions that use them:
/// `malloc_usable_size` reads the size table and the map, `mallocx`, `calloc` and friends index
/// the arena array. Every candidate is checked against what the structure must look like before
/// it is trusted.
public struct JemallocRoots {
    public var emap: UInt64
    /// Usable size of each size class index.
    public var sizes: [UInt64]
    /// Arenas by index, each checked (`arena->ind == i`, its base's index too); nil when the array
    /// was not found (tcaches cannot be subtracted then).
    public var arenas: [(index: Int, address: UInt64)]?
    /// `5.3.0-0-g54eaed1d…`, when the image carries it.
    public var version: String?

    /// Functions whose code is searched, in order: the size table and the map first.
    public static let functions = ["malloc_usable_size", "sallocx", "mallocx", "calloc", "realloc", "posix_memalign",
                            "aligned_alloc", "memalign", "valloc", "rallocx", "xallocx", "malloc", "free"]
    /// Bytes of a function that are decoded at most.
    @inlinable public static var functionLimit: Int { 8192 }

    /// The roots in `image`, or why they were not found.
    public static func find(in image: LoadedImage, source: MemorySource) -> Result<JemallocRoots, JemallocFailure> {
        let finder = Finder(image: image, source: source)
        return finder.run()
    }

    /// jemalloc's version string in the image's read-only data, when it carries one.
    public static func version(in image: LoadedImage, source: MemorySource) -> String? {
        Finder(image: image, source: source).findVersion()
    }

    /// The usable size table at `address`, when it has the shape every 5.3 build gives it.
    public static func sizeTable(at address: UInt64, source: MemorySource) -> [UInt64]? {
        guard let bytes = source.readBytes(address, count: JemallocLayout.sizeClassCount * 8) else { return nil }
        let sizes = bytes.withUnsafeBytes { raw in (0..<JemallocLayout.sizeClassCount).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) } }
        guard Array(sizes.prefix(5)) == JemallocLayout.firstSizes else { return nil }
        for (size, next) in zip(sizes, sizes.dropFirst()) where next <= size { return nil }
        return sizes
    }
}

/// Why jemalloc's heap was not read: `reason` follows "jemalloc in <image>: ".
public struct JemallocFailure: Error {
    public var reason: String
    /// True when the image is jemalloc for certain (its name, its size table): the walk reports
    /// the failure instead of leaving the target to another allocator.
    public var isJemalloc: Bool
}

private struct Finder {
    let image: LoadedImage
    let source: MemorySource

    func run() -> Result<JemallocRoots, JemallocFailure> {
        let named = image.name.hasPrefix("libjemalloc")
        // An executable with jemalloc linked in and every symbol stripped exports no function to
        // decode: its .bss is searched for the roots' shapes instead.
        let decoded = ripTargets()
        let targets = decoded.isEmpty ? bssCandidates() : decoded
        // Each root: by symbol first, then the decoded targets; the first with its shape.
        let sizeCandidates = symbols("je_sz_index2size_tab") + targets
        var sizes: [UInt64]? = nil
        for candidate in sizeCandidates {
            if let table = JemallocRoots.sizeTable(at: candidate, source: source) { sizes = table; break }
        }
        guard let sizes else {
            return .failure(JemallocFailure(reason: "the size table (sz_index2size_tab) was not found", isJemalloc: named))
        }
        // From here on the image is jemalloc: its size table is there. Another version's structs differ.
        let version = findVersion()
        if let version, !version.hasPrefix(JemallocLayout.versionPrefix) {
            return .failure(JemallocFailure(reason: "version \(version); only the 5.3 layout is known", isJemalloc: true))
        }
        let emapCandidates = symbols("je_arena_emap_global") + targets
        guard let emap = emapCandidates.first(where: isExtentMap) else {
            return .failure(JemallocFailure(reason: "the extent map (arena_emap_global) was not found", isJemalloc: true))
        }
        let arenaCandidates = symbols("je_arenas") + targets
        var arenas: [(index: Int, address: UInt64)]? = nil
        let emapBase = source.readWord(emap)
        for candidate in arenaCandidates {
            if let found = arenaArray(at: candidate), source.readWord(found[0].address &+ JemallocLayout.arenaBase) == emapBase {
                arenas = found
                break
            }
        }
        return .success(JemallocRoots(emap: emap, sizes: sizes, arenas: arenas, version: version))
    }

    /// A data symbol's target address, when the image's tables have it.
    func symbols(_ name: String) -> [UInt64] {
        guard let symbol = image.file.symbol(named: name), !symbol.isFunction, symbol.value != 0 else { return [] }
        return [symbol.value &+ image.loadBias]
    }

    /// Whether an unrelocated address lies in one of the image's writable sections, with `length` bytes after it.
    func inWritableData(_ address: UInt64, length: UInt64) -> Bool {
        let unrelocated = address &- image.loadBias
        return image.file.writableSections.contains { section in
            unrelocated >= section.address && unrelocated - section.address <= section.size && section.size - (unrelocated - section.address) >= length
        }
    }

    /// Targets of RIP-relative `lea`/`mov` (64-bit operand) in the exported functions, first seen
    /// first, kept only when they land in the image's writable data.
    func ripTargets() -> [UInt64] {
        var targets: [UInt64] = []
        var seen: Set<UInt64> = []
        for name in JemallocRoots.functions {
            guard let symbol = image.file.symbol(named: name), symbol.isFunction, symbol.value != 0 else { continue }
            let size = Int(min(symbol.size == 0 ? 1024 : symbol.size, UInt64(JemallocRoots.functionLimit)))
            let start = symbol.value &+ image.loadBias
            guard let code = source.readBytes(start, count: size) ?? source.readBytes(start, count: min(size, 256)) else { continue }
            for target in RipOperands(code: code, at: start).targets where !seen.contains(target) {
                seen.insert(target)
                if inWritableData(target, length: 8) { targets.append(target) }
            }
        }
        return targets
    }

    /// Addresses in the image's .bss that may hold a root: where the size table's first five
    /// entries are, and words pointing at something that starts like a base_t of arena 0 (the
    /// map's first field) or like an arena_t with index 0 (the arena array's first entry).
    func bssCandidates() -> [UInt64] {
        var candidates: [UInt64] = []
        let first = JemallocLayout.firstSizes
        for section in image.file.sections where section.type == UInt32(SHT_NOBITS) && section.flags & UInt64(SHF_WRITE) != 0
            && section.flags & UInt64(SHF_TLS) == 0 && section.size >= 64 {
            let start = section.address &+ image.loadBias
            let words = Int(min(section.size, 64 << 20) / 8)
            guard let bytes = source.readBytes(start, count: words * 8) else { continue }
            bytes.withUnsafeBytes { raw in
                var checked = 0
                for index in 0..<words {
                    let word = raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)
                    if word == 0 || word & 7 != 0 { continue }
                    let address = start &+ UInt64(index * 8)
                    if word == first[0] && index + 5 <= words
                        && (1..<5).allSatisfy({ raw.loadUnaligned(fromByteOffset: (index + $0) * 8, as: UInt64.self) == first[$0] }) {
                        candidates.append(address)
                        continue
                    }
                    guard word >> 47 == 0, checked < 1 << 20 else { continue }
                    checked += 1
                    if source.readUInt32(word &+ JemallocLayout.baseIndex) == 0, source.readWord(word &+ JemallocLayout.baseHooks) ?? 0 != 0 {
                        candidates.append(address)
                    } else if source.readUInt32(word &+ JemallocLayout.arenaIndex) == 0 {
                        candidates.append(address)
                    }
                }
            }
        }
        return candidates
    }

    /// The map `je_arena_emap_global` is an rtree_t: a base (arena 0's: its index is 0) and a root
    /// array of leaf pointers, some of them set, all 64-byte aligned.
    func isExtentMap(_ candidate: UInt64) -> Bool {
        let rootBytes = UInt64(JemallocLayout.rootEntries * 8)
        guard inWritableData(candidate, length: JemallocLayout.rtreeRoot &+ rootBytes),
              let base = source.readWord(candidate), base != 0, base & 7 == 0,
              source.readUInt32(base &+ JemallocLayout.baseIndex) == 0,
              let hooks = source.readWord(base &+ JemallocLayout.baseHooks), hooks != 0,
              let root = source.readBytes(candidate &+ JemallocLayout.rtreeRoot, count: Int(rootBytes)) else { return false }
        var leaves = 0
        let aligned = root.withUnsafeBytes { raw -> Bool in
            for index in 0..<JemallocLayout.rootEntries {
                let leaf = raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)
                if leaf == 0 { continue }
                if leaf & 63 != 0 || leaf >> 47 != 0 { return false }
                leaves += 1
            }
            return true
        }
        return aligned && leaves > 0
    }

    /// `je_arenas`: arena 0 set; every set slot an arena whose index, and whose base's index, is its slot.
    func arenaArray(at candidate: UInt64) -> [(index: Int, address: UInt64)]? {
        guard inWritableData(candidate, length: UInt64(JemallocLayout.arenaLimit * 8)),
              let bytes = source.readBytes(candidate, count: JemallocLayout.arenaLimit * 8) else { return nil }
        var arenas: [(index: Int, address: UInt64)] = []
        for index in 0..<JemallocLayout.arenaLimit {
            let arena = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self) }
            if arena == 0 {
                if index == 0 { return nil }
                continue
            }
            guard arena & 7 == 0, source.readUInt32(arena &+ JemallocLayout.arenaIndex) == UInt32(index),
                  let base = source.readWord(arena &+ JemallocLayout.arenaBase), base != 0,
                  source.readUInt32(base &+ JemallocLayout.baseIndex) == UInt32(index) else { return nil }
            arenas.append((index, arena))
        }
        return arenas
    }

    /// jemalloc's version string (`5.3.0-0-g<40 hex digits>`) from the image's read-only data.
    func findVersion() -> String? {
        for section in image.file.sections where section.name == ".rodata" && section.size > 0 {
            let size = Int(min(section.size, 64 << 20))
            guard let bytes = source.readBytes(section.address &+ image.loadBias, count: size) else { continue }
            return bytes.withUnsafeBufferPointer { JemallocDecoder.versionString(in: $0) }
        }
        return nil
    }
}

/// jemalloc's version string, for a stripped executable that exports no allocator function.
public enum JemallocDecoder {
    /// The first `N.N.N-N-g<40 hex>` string in `bytes`.
    public static func versionString(in bytes: UnsafeBufferPointer<UInt8>) -> String? {
        let count = bytes.count
        guard count > 44 else { return nil }
        guard let base = bytes.baseAddress else { return nil }
        var index = 0
        // "-g" then 40 hex digits then NUL; memchr finds the dashes.
        while index + 42 < count {
            guard let hit = memchr(base + index, Int32(UInt8(ascii: "-")), count - index) else { return nil }
            index = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit))
            if index + 42 >= count { return nil }
            if bytes[index + 1] == UInt8(ascii: "g") && bytes[index + 42] == 0 && (0..<40).allSatisfy({ isHex(bytes[index + 2 + $0]) }) {
                var start = index
                var steps = 0
                while start > 0 && bytes[start - 1] != 0 && steps < 32 { start -= 1; steps += 1 }
                let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<(index + 42)]), as: UTF8.self)
                if isVersion(text) { return text }
            }
            index += 1
        }
        return nil
    }

    private static func isHex(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
    }

    /// `5.3.0-0-g…`: three dot-separated numbers, a dash, a number, `-g`.
    private static func isVersion(_ text: String) -> Bool {
        let parts = text.split(separator: "-")
        guard parts.count == 3, parts[2].hasPrefix("g"), Int(parts[1]) != nil else { return false }
        let numbers = parts[0].split(separator: ".")
        return numbers.count == 3 && numbers.allSatisfy { Int($0) != nil }
    }
}
