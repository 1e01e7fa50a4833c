import SwrefMemory
import SwrefSupport

/// The GNU build id of an ELF image as the target has it mapped: its header and notes read from the
/// target's memory, not from the file a path names (which may have been replaced since).
public enum BuildID {
    /// - Parameter read: reads target memory (a core's own bytes, or a snapshot's).
    public static func ofImage(at start: UInt64, read: (UInt64, Int) -> [UInt8]?) -> [UInt8]? {
        guard let header = read(start, 64), header.starts(with: [0x7f, 0x45, 0x4c, 0x46]) else { return nil }
        let phoff = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) }
        let phnum = Int(header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 56, as: UInt16.self) })
        guard phoff < 1 << 20, phnum < 256, let table = read(start &+ phoff, phnum * 56) else { return nil }
        var lowest = UInt64.max
        var notes: [(UInt64, UInt64)] = []
        table.withUnsafeBytes { raw in
            for index in 0..<phnum {
                let type = raw.loadUnaligned(fromByteOffset: index * 56, as: UInt32.self)
                let vaddr = raw.loadUnaligned(fromByteOffset: index * 56 + 16, as: UInt64.self)
                let size = raw.loadUnaligned(fromByteOffset: index * 56 + 32, as: UInt64.self)
                if type == 1 { lowest = min(lowest, vaddr & ~0xfff) }
                if type == 4 { notes.append((vaddr, size)) }
            }
        }
        guard lowest != .max else { return nil }
        for (vaddr, size) in notes where size < 1 << 16 {
            guard let bytes = read(start &+ (vaddr &- lowest), Int(size)) else { continue }
            let found: [UInt8]? = bytes.withUnsafeBytes { raw in
                for note in ElfNotes.parse(raw) where note.type == 3 && note.name == "GNU" { return Array(note.desc) }
                return nil
            }
            if let found { return found }
        }
        return nil
    }
}

extension MemorySource {
    /// The GNU build id of the ELF image mapped at `start`, from the target's own memory: nil when
    /// that memory does not hold it (a core that kept no page of the image).
    public func buildID(ofImageAt start: UInt64) -> [UInt8]? {
        BuildID.ofImage(at: start) { ownBytes($0, count: $1) }
    }
}
