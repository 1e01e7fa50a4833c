import SwrefMemory
import SwrefSupport

/// ELF notes (a core's PT_NOTE segments, an image's build-id note): name, type and descriptor,
/// bounded by the buffer they are parsed from — the sizes come from files swref does not trust.
public enum ElfNotes {
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> [(type: UInt32, name: String, desc: UnsafeRawBufferPointer)] {
        var notes: [(UInt32, String, UnsafeRawBufferPointer)] = []
        var offset = 0
        while offset + 12 <= bytes.count {
            let nameSize = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            let descSize = Int(bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
            let type = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
            let nameStart = offset + 12
            let descStart = nameStart + ((nameSize + 3) & ~3)
            guard nameSize < 1 << 20, descSize < 1 << 30, descStart + descSize <= bytes.count else { break }
            let name = cString(UnsafeRawBufferPointer(rebasing: bytes[nameStart..<nameStart + nameSize]), 0, nameSize)
            notes.append((type, name, UnsafeRawBufferPointer(rebasing: bytes[descStart..<descStart + descSize])))
            offset = descStart + ((descSize + 3) & ~3)
        }
        return notes
    }

    /// A NUL-terminated string at `offset` of at most `limit` bytes, never past the buffer.
    public static func cString(_ bytes: UnsafeRawBufferPointer, _ offset: Int, _ limit: Int) -> String {
        guard offset < bytes.count else { return "" }
        let end = min(bytes.count, offset + limit)
        let slice = bytes[offset..<end]
        let stop = slice.firstIndex(of: 0) ?? end
        return String(decoding: bytes[offset..<stop], as: UTF8.self)
    }
}
