import SwrefMemory
import SwrefSupport

/// An ELF image mapped into the target: where it sits and what its file says.
public final class LoadedImage {
    /// The path as the target mapped it.
    public let path: String
    /// The file opened for it on this machine (under a core's sysroot): what every reader of the
    /// image's file — DWARF, the unwinder, the reflection library — opens.
    public let hostPath: String
    /// Address of the image's ELF header in the target.
    public let start: UInt64
    public let end: UInt64
    /// Added to the file's virtual addresses to get target addresses.
    public let loadBias: UInt64
    public let file: ElfFile
    private let files: FileResolver

    public init(path: String, start: UInt64, end: UInt64, file: ElfFile, files: FileResolver = .host) {
        self.path = path
        self.hostPath = files.hostPath(path)
        self.start = start
        self.end = end
        self.file = file
        self.files = files
        self.loadBias = start &- file.firstLoadAddress
    }

    /// The separate debug file with the same build id (`/usr/lib/debug/.build-id/ab/cdef….debug`,
    /// from Debian's -dbg packages): the full symbol table of a stripped library, whose hidden
    /// functions (libc's `clone3`, `start_thread`) are otherwise only offsets. Opened when first asked.
    public lazy var debugFile: ElfFile? = {
        guard let id = file.buildID, id.count > 1 else { return nil }
        let hex = id.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
        let path = files.hostPath("/usr/lib/debug/.build-id/\(hex[0])/\(hex[1...].joined()).debug")
        guard let debug = try? ElfFile(path: path), debug.buildID == id else { return nil }
        return debug
    }()

    /// The file name without directories: `libswiftCore.so`.
    public var name: String { path.split(separator: "/").last.map(String.init) ?? path }

    public var isSwiftRuntime: Bool { name.hasPrefix("libswiftCore.so") }

    public func address(ofSymbol name: String) -> UInt64? {
        file.symbol(named: name).map { $0.value &+ loadBias }
    }

    /// The image's writable sections (.data, .bss, …) where the target has them.
    public var writableRanges: [Range<UInt64>] {
        file.writableSections.compactMap { section in
            let start = section.address &+ loadBias
            let (end, overflow) = start.addingReportingOverflow(section.size)
            return overflow ? nil : start..<end
        }
    }
}

/// The images loaded in a target, found from its file-backed mappings.
public final class ImageList {
    public let images: [LoadedImage]
    /// Files named by the mappings that could not be read.
    public let unreadable: [String]
    /// Files whose build id differs from the one the target has mapped (replaced since, a wrong
    /// sysroot, a core's file notes naming the wrong file): left out, their metadata not trusted.
    public let mismatched: [String]

    /// - Parameters:
    ///   - source: the target's memory, whose images' build ids the files must match; nil trusts
    ///     the files (`stacks` on a live process, whose files are the ones mapped).
    ///   - files: where the mapped paths are on this machine (a core's sysroot, the EXE given).
    public init(memoryMap: MemoryMap, source: MemorySource? = nil, files: FileResolver = .host) {
        var seen: Set<String> = []
        var images: [LoadedImage] = []
        var unreadable: [String] = []
        var mismatched: [String] = []
        for region in memoryMap.regions where region.isFileBacked && !seen.contains(region.path) {
            seen.insert(region.path)
            guard region.fileOffset == 0 else { continue }
            let end = memoryMap.regions.filter { $0.path == region.path }.map(\.end).max() ?? region.end
            let path = region.path.hasSuffix(" (deleted)") ? String(region.path.dropLast(10)) : region.path
            do {
                let file = try ElfFile(path: files.hostPath(path))
                // Never hand the reflection library (or the unwinder) a file that is not the one mapped.
                if let mapped = source?.buildID(ofImageAt: region.start), let onDisk = file.buildID, mapped != onDisk {
                    mismatched.append(files.hostPath(path))
                    continue
                }
                images.append(LoadedImage(path: path, start: region.start, end: end, file: file, files: files))
            } catch {
                // Fonts, locale archives and other data files are mapped too: only ELF files matter.
                if !path.hasPrefix("/dev/") && !path.hasSuffix(".cache") && error is SwrefError,
                   "\(error)".contains("open") { unreadable.append(files.hostPath(path)) }
            }
        }
        self.images = images
        self.unreadable = unreadable
        self.mismatched = mismatched
    }

    public func image(containing address: UInt64) -> LoadedImage? {
        images.first { address >= $0.start && address < $0.end }
    }

    public var hasSwiftRuntime: Bool { images.contains { $0.isSwiftRuntime || $0.file.hasSwiftMetadata } }

    /// Finds a symbol's target address in any image (first match in load order).
    public func address(ofSymbol name: String) -> UInt64? {
        for image in images { if let address = image.address(ofSymbol: name) { return address } }
        return nil
    }
}
