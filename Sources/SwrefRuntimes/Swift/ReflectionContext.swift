import CSwrefSystem
import Glibc
import SwrefImages
import SwrefMemory

import SwrefSupport

/// A libswiftRemoteMirror reflection context over a target's memory.
///
/// The library reads the target only through the callbacks here. Type names and layouts come
/// from the `swift5_*` sections of every image added with `addImage`.
public final class ReflectionContext {
    public let source: MemorySource
    public let images: ImageList
    private var context: SwiftReflectionContextRef?
    /// While `addImage` runs: file ranges (as target addresses) that must be served from the file.
    private var fileServed: FileServedRanges?
    private var nameCache: [UInt64: String] = [:]
    public private(set) var addedImages: [String] = []

    public init(source: MemorySource, images: ImageList) {
        self.source = source
        self.images = images
        let opaque = Unmanaged.passUnretained(self).toOpaque()
        context = swift_reflection_createReflectionContext(
            opaque, 8,
            { _, bytes, _ in free(UnsafeMutableRawPointer(mutating: bytes)) },
            { reader, address, size, freeContext in
                let me = Unmanaged<ReflectionContext>.fromOpaque(reader!).takeUnretainedValue()
                return me.readForLibrary(address, size)
            },
            { reader, address in
                let me = Unmanaged<ReflectionContext>.fromOpaque(reader!).takeUnretainedValue()
                return me.stringLength(at: address)
            },
            { reader, name, length in
                let me = Unmanaged<ReflectionContext>.fromOpaque(reader!).takeUnretainedValue()
                let symbol = String(decoding: UnsafeRawBufferPointer(start: name, count: Int(length)), as: UTF8.self)
                return me.symbolAddress(symbol)
            })
        for image in images.images where image.file.hasSwiftMetadata { add(image) }
    }

    deinit {
        if let context { swift_reflection_destroyReflectionContext(context) }
    }

    /// On ELF, addImage reads the section header table and the section names at
    /// `image start + file offset`, which is not mapped (or is another image's memory). Only during
    /// the call, reads that exactly match those ranges are served from the file.
    private func add(_ image: LoadedImage) {
        guard let context else { return }
        fileServed = FileServedRanges(image: image)
        if swift_reflection_addImage(context, image.start) != 0 { addedImages.append(image.path) }
        fileServed = nil
    }

    private func readForLibrary(_ address: UInt64, _ size: UInt64) -> UnsafeRawPointer? {
        guard size < 1 << 30, let buffer = malloc(Int(max(size, 1))) else { return nil }
        if let fileServed, let offset = fileServed.fileOffset(address: address, size: size),
           readFile(fileServed.path, offset: offset, size: Int(size), into: buffer) {
            return UnsafeRawPointer(buffer)
        }
        if source.read(address, count: Int(size), into: buffer) { return UnsafeRawPointer(buffer) }
        free(buffer)
        return nil
    }

    /// The reads addImage makes of file-only data: one section header (or the whole table), or
    /// the section-name table, each at `image start + file offset`.
    private struct FileServedRanges {
        let path: String
        let headers: UInt64
        let headerCount: UInt64
        let names: UInt64
        let namesSize: UInt64
        let start: UInt64
        static let headerSize: UInt64 = 64

        init(image: LoadedImage) {
            path = image.hostPath
            start = image.start
            headers = image.start + image.file.sectionHeaderRange.offset
            headerCount = image.file.sectionHeaderRange.size / FileServedRanges.headerSize
            names = image.start + image.file.sectionNamesRange.offset
            namesSize = image.file.sectionNamesRange.size
        }

        func fileOffset(address: UInt64, size: UInt64) -> UInt64? {
            if address == names && size == namesSize { return address - start }
            guard address >= headers else { return nil }
            let delta = address - headers
            let entry = FileServedRanges.headerSize
            if (size == entry && delta % entry == 0 && delta / entry < headerCount) || (delta == 0 && size == headerCount * entry) {
                return address - start
            }
            return nil
        }
    }

    private func readFile(_ path: String, offset: UInt64, size: Int, into buffer: UnsafeMutableRawPointer) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return pread(fd, buffer, size, off_t(offset)) == size
    }

    private func stringLength(at address: UInt64) -> UInt64 {
        var length: UInt64 = 0
        var chunk = [UInt8](repeating: 0, count: 256)
        while length < 1 << 16 {
            let ok = chunk.withUnsafeMutableBytes { source.read(address + length, count: 256, into: $0.baseAddress!) }
            if !ok {
                // Near the end of a mapping: byte by byte.
                guard let byte = source.readBytes(address + length, count: 1) else { return 0 }
                if byte[0] == 0 { return length }
                length += 1
                continue
            }
            if let nul = chunk.firstIndex(of: 0) { return length + UInt64(nul) }
            length += 256
        }
        return 0
    }

    private func symbolAddress(_ name: String) -> UInt64 {
        // No Objective-C on Linux: the isa mask and objc_debug_* symbols are absent by design.
        if name == "swift_isaMask" || name.hasPrefix("objc_") { return 0 }
        return images.address(ofSymbol: name) ?? 0
    }

    // MARK: Queries

    public func typeRef(forMetadata metadata: UInt64) -> swift_typeref_t? {
        guard let context else { return nil }
        let tr = swift_reflection_typeRefForMetadata(context, UInt(metadata))
        return tr == 0 ? nil : tr
    }

    public func name(of typeRef: swift_typeref_t) -> String? {
        guard let context, let cName = swift_reflection_copyDemangledNameForTypeRef(context, typeRef) else { return nil }
        defer { free(cName) }
        return SwiftTypeNames.stable(String(cString: cName))
    }

    /// The demangled, module-qualified name of the type a metadata pointer describes.
    public func typeName(forMetadata metadata: UInt64) -> String? {
        if let cached = nameCache[metadata] { return cached }
        guard let tr = typeRef(forMetadata: metadata), let name = name(of: tr) else { return nil }
        nameCache[metadata] = name
        return name
    }

    public func instanceInfo(_ object: UInt64) -> swref_typeinfo_t? {
        guard let context else { return nil }
        return swift_reflection_infoForInstance(context, UInt(object))
    }

    public func child(ofInstance object: UInt64, _ index: Int) -> swref_childinfo_t? {
        guard let context else { return nil }
        return swift_reflection_childOfInstance(context, UInt(object), UInt32(index))
    }

    public func info(of typeRef: swift_typeref_t) -> swref_typeinfo_t? {
        guard let context, typeRef != 0 else { return nil }
        let info = swift_reflection_infoForTypeRef(context, typeRef)
        return info.Kind == SWREF_LAYOUT_UNKNOWN && info.Size == 0 ? nil : info
    }

    public func child(of typeRef: swift_typeref_t, _ index: Int) -> swref_childinfo_t? {
        guard let context else { return nil }
        return swift_reflection_childOfTypeRef(context, typeRef, UInt32(index))
    }

    public func metadataInfo(_ metadata: UInt64) -> swref_typeinfo_t? {
        guard let context else { return nil }
        let info = swift_reflection_infoForMetadata(context, UInt(metadata))
        return info.Kind == SWREF_LAYOUT_UNKNOWN ? nil : info
    }

    public func child(ofMetadata metadata: UInt64, _ index: Int) -> swref_childinfo_t? {
        guard let context else { return nil }
        return swift_reflection_childOfMetadata(context, UInt(metadata), UInt32(index))
    }

    public func typeRef(forMangledName mangled: String) -> swift_typeref_t? {
        guard let context else { return nil }
        let tr = mangled.withCString { swift_reflection_typeRefForMangledTypeName(context, $0, UInt64(strlen($0))) }
        return tr == 0 ? nil : tr
    }

    public func genericArgument(of typeRef: swift_typeref_t, _ index: Int) -> swift_typeref_t? {
        guard swift_reflection_genericArgumentCountOfTypeRef(typeRef) > index else { return nil }
        let tr = swift_reflection_genericArgumentOfTypeRef(typeRef, UInt32(index))
        return tr == 0 ? nil : tr
    }

    public static func demangle(_ mangled: String) -> String? {
        var out = [CChar](repeating: 0, count: 4096)
        let n = mangled.withCString { swift_reflection_demangle($0, strlen($0), &out, out.count) }
        return n > 0 ? String(cString: out) : nil
    }
}
