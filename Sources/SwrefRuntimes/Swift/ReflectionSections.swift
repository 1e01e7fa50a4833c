import CSwrefSystem
import SwrefImages
import SwrefMemory
import SwrefSupport

/// A check of an image's reflection sections before libswiftRemoteMirror is given them.
///
/// The library walks `swift5_fieldmd` and `swift5_assocty` record by record, each record's length
/// taken from its own header, and builds a vector of every field a descriptor says it has: one
/// count word changed to 2^32−1 made it allocate gigabytes and run for minutes (the core fuzzer's
/// only hang), which no guard against faults can stop. So the walk is made here first, on the
/// target's bytes; an image whose walk does not end where its section ends is not handed over,
/// and its types are read conservatively.
enum ReflectionSections {
    /// FieldDescriptor (Records.h): a 16-byte header (kind u16 at 8, record size u16 at 10, count
    /// u32 at 12), then `count` records of 12 bytes. AssociatedTypeDescriptor: a 16-byte header
    /// (count u32 at 8, record size u32 at 12), then records of 8 bytes.
    private static let walks: [(section: String, countAt: UInt64, sizeAt: UInt64, sizeBytes: Int, recordSize: UInt64)] = [
        ("swift5_fieldmd", 12, 10, 2, 12),
        ("swift5_assocty", 8, 12, 4, 8),
    ]
    /// The largest kind a field descriptor has (FieldDescriptorKind: … ObjCClass = 7).
    private static let maximumFieldKind: UInt32 = 7

    /// Why the image's reflection sections cannot be trusted, or nil when they walk cleanly.
    static func damage(in image: LoadedImage, source: MemorySource) -> String? {
        for walk in walks {
            guard let section = image.file.section(named: walk.section), section.size > 0 else { continue }
            let start = image.loadBias &+ section.address
            guard !start.addingReportingOverflow(section.size).overflow,
                  let bytes = source.readBytes(start, count: Int(min(section.size, 1 << 30))) else {
                return "\(walk.section) could not be read"
            }
            func word(_ at: Int, _ size: Int) -> UInt32 {
                var value: UInt32 = 0
                for i in (0..<size).reversed() { value = value << 8 | UInt32(bytes[at + i]) }
                return value
            }
            var at = 0
            let size = bytes.count
            while size - at >= 16 {
                let count = UInt64(word(at + Int(walk.countAt), 4))
                let recordSize = UInt64(word(at + Int(walk.sizeAt), walk.sizeBytes))
                if walk.section == "swift5_fieldmd", word(at + 8, 2) > maximumFieldKind {
                    return "\(walk.section): a descriptor at +\(at) has kind \(word(at + 8, 2))"
                }
                // Both factors below 2^32: the product fits.
                guard recordSize == walk.recordSize, count * recordSize <= UInt64(size - at - 16) else {
                    return "\(walk.section): a descriptor at +\(at) claims \(count) records of \(recordSize) bytes"
                }
                at += 16 + Int(count * recordSize)
            }
            if at != size, bytes[at...].contains(where: { $0 != 0 }) {
                return "\(walk.section): \(size - at) bytes after its last descriptor"
            }
        }
        return nil
    }
}
