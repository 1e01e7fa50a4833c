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
    /// Images whose reflection sections do not walk cleanly (`ReflectionSections`): not added.
    public private(set) var damagedImages: [String] = []

    /// "N images' reflection metadata is damaged …", or nil.
    public var damageNote: String? {
        guard !damagedImages.isEmpty else { return nil }
        return "\(damagedImages.count) images' reflection metadata is damaged (\(damagedImages.prefix(3).joined(separator: "; "))): "
            + "not given to libswiftRemoteMirror, their types are read conservatively"
    }

    public init(source: MemorySource, images: ImageList) {
        self.source = source
        self.images = images
        swref_reflection_guard_prepare()
        start()
    }

    /// A context with every image that has Swift metadata added.
    private func start() {
        let opaque = Unmanaged.passUnretained(self).toOpaque()
        context = swift_reflection_createReflectionContext(
            opaque, 8,
            { _, bytes, _ in free(UnsafeMutableRawPointer(mutating: bytes)) },
            { reader, address, size, freeContext in
                // A fault in swref's own callback is swref's: the crash handler's, not the guard's.
                let guardJump = swref_reflection_guard_suspend()
                defer { swref_reflection_guard_resume(guardJump) }
                let me = Unmanaged<ReflectionContext>.fromOpaque(reader!).takeUnretainedValue()
                return me.readForLibrary(address, size)
            },
            { reader, address in
                let guardJump = swref_reflection_guard_suspend()
                defer { swref_reflection_guard_resume(guardJump) }
                let me = Unmanaged<ReflectionContext>.fromOpaque(reader!).takeUnretainedValue()
                return me.stringLength(at: address)
            },
            { reader, name, length in
                let guardJump = swref_reflection_guard_suspend()
                defer { swref_reflection_guard_resume(guardJump) }
                let me = Unmanaged<ReflectionContext>.fromOpaque(reader!).takeUnretainedValue()
                let symbol = String(decoding: UnsafeRawBufferPointer(start: name, count: Int(length)), as: UTF8.self)
                return me.symbolAddress(symbol)
            })
        addedImages = []
        for image in images.images where image.file.hasSwiftMetadata && !faultedAddresses.contains(image.start) {
            // The library faulted while it read the image: this context is not trusted, and the
            // next one is made without that image.
            guard add(image) else {
                if let context { abandoned.append(context) }
                context = nil
                if abandoned.count < ReflectionContext.contextLimit { start() }
                return
            }
        }
    }

    deinit {
        if let context { swift_reflection_destroyReflectionContext(context) }
    }

    // MARK: Faults inside the library

    /// A fault the library took inside a guarded call: the signal, the call, the address it was given.
    public struct Fault {
        public var signal: Int32
        public var call: String
        public var address: UInt64
    }
    public private(set) var faults: [Fault] = []
    /// Addresses (metadata, type references, objects) a call faulted on: never handed over again.
    private var faultedAddresses: Set<UInt64> = []
    /// Contexts a fault interrupted: their caches may hold half-built entries, so they are never
    /// used again, nor destroyed (the destructor would walk those entries); type references they
    /// gave out stay valid. After this many, reflection is given up for the rest of the run.
    private var abandoned: [SwiftReflectionContextRef] = []
    static let contextLimit = 4

    /// "libswiftRemoteMirror faulted …", or nil when it never did.
    public var faultNote: String? {
        guard let first = faults.first else { return nil }
        let signal = String(cString: strsignal(first.signal))
        let more = faults.count > 1 ? " and \(faults.count - 1) more" : ""
        let givenUp = context == nil ? "; reflection was given up after \(abandoned.count) faults, later types are named by address and read conservatively" : ""
        return "libswiftRemoteMirror faulted on corrupt metadata (\(signal) in \(first.call)(0x\(String(first.address, radix: 16)))\(more)): "
            + "the types it faulted on are read conservatively, named by address where their name could not be read\(givenUp)"
    }

    /// Runs one guarded library call; false when there is no usable context, the address already
    /// faulted once, or the call faulted now (the context is then replaced).
    private func guarded(_ call: String, _ address: UInt64, _ body: (SwiftReflectionContextRef) -> Int32) -> Bool {
        guard let context, address == 0 || !faultedAddresses.contains(address) else { return false }
        let signal = body(context)
        if signal == 0 { return true }
        faults.append(Fault(signal: signal, call: call, address: address))
        if address != 0 { faultedAddresses.insert(address) }
        abandoned.append(context)
        self.context = nil
        if abandoned.count < ReflectionContext.contextLimit { start() }
        return false
    }

    /// On ELF, addImage reads the section header table and the section names at
    /// `image start + file offset`, which is not mapped (or is another image's memory). Only during
    /// the call, reads that exactly match those ranges are served from the file.
    /// False when the library faulted inside addImage.
    private func add(_ image: LoadedImage) -> Bool {
        guard let context else { return true }
        if let why = ReflectionSections.damage(in: image, source: source) {
            if !damagedImages.contains(where: { $0.hasPrefix(image.name + ": ") }) { damagedImages.append("\(image.name): \(why)") }
            return true
        }
        fileServed = FileServedRanges(image: image)
        defer { fileServed = nil }
        var added: Int32 = 0
        let signal = swref_guarded_addImage(context, image.start, &added)
        if signal != 0 {
            faults.append(Fault(signal: signal, call: "addImage", address: image.start))
            faultedAddresses.insert(image.start)
            return false
        }
        if added != 0 { addedImages.append(image.path) }
        return true
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
        var tr: swift_typeref_t = 0
        guard guarded("typeRefForMetadata", metadata, { swref_guarded_typeRefForMetadata($0, UInt(metadata), &tr) }) else { return nil }
        return tr == 0 ? nil : tr
    }

    public func name(of typeRef: swift_typeref_t) -> String? {
        var cName: UnsafeMutablePointer<CChar>? = nil
        guard guarded("copyDemangledNameForTypeRef", UInt64(typeRef), { swref_guarded_copyDemangledNameForTypeRef($0, typeRef, &cName) }),
              let cName else { return nil }
        defer { free(cName) }
        // A name pointer into the wrong bytes demangles to nothing: no name, not an empty one.
        guard cName.pointee != 0 else { return nil }
        return SwiftTypeNames.withoutEmptyArguments(SwiftTypeNames.stable(String(cString: cName)))
    }

    /// The demangled, module-qualified name of the type a metadata pointer describes.
    public func typeName(forMetadata metadata: UInt64) -> String? {
        if let cached = nameCache[metadata] { return cached }
        guard let tr = typeRef(forMetadata: metadata), let name = name(of: tr) else { return nil }
        nameCache[metadata] = name
        return name
    }

    public func instanceInfo(_ object: UInt64) -> swref_typeinfo_t? {
        var info = swref_typeinfo_t()
        guard guarded("infoForInstance", object, { swref_guarded_infoForInstance($0, UInt(object), &info) }) else { return nil }
        return info
    }

    public func child(ofInstance object: UInt64, _ index: Int) -> swref_childinfo_t? {
        var child = swref_childinfo_t()
        guard guarded("childOfInstance", object, { swref_guarded_childOfInstance($0, UInt(object), UInt32(index), &child) }) else { return nil }
        return child
    }

    public func info(of typeRef: swift_typeref_t) -> swref_typeinfo_t? {
        guard typeRef != 0 else { return nil }
        var info = swref_typeinfo_t()
        guard guarded("infoForTypeRef", UInt64(typeRef), { swref_guarded_infoForTypeRef($0, typeRef, &info) }) else { return nil }
        return info.Kind == SWREF_LAYOUT_UNKNOWN && info.Size == 0 ? nil : info
    }

    public func child(of typeRef: swift_typeref_t, _ index: Int) -> swref_childinfo_t? {
        var child = swref_childinfo_t()
        guard guarded("childOfTypeRef", UInt64(typeRef), { swref_guarded_childOfTypeRef($0, typeRef, UInt32(index), &child) }) else { return nil }
        return child
    }

    public func metadataInfo(_ metadata: UInt64) -> swref_typeinfo_t? {
        var info = swref_typeinfo_t()
        guard guarded("infoForMetadata", metadata, { swref_guarded_infoForMetadata($0, UInt(metadata), &info) }) else { return nil }
        return info.Kind == SWREF_LAYOUT_UNKNOWN ? nil : info
    }

    public func child(ofMetadata metadata: UInt64, _ index: Int) -> swref_childinfo_t? {
        var child = swref_childinfo_t()
        guard guarded("childOfMetadata", metadata, { swref_guarded_childOfMetadata($0, UInt(metadata), UInt32(index), &child) }) else { return nil }
        return child
    }

    public func typeRef(forMangledName mangled: String) -> swift_typeref_t? {
        var tr: swift_typeref_t = 0
        let ok = mangled.withCString { name in
            guarded("typeRefForMangledTypeName", 0, { swref_guarded_typeRefForMangledTypeName($0, name, UInt64(strlen(name)), &tr) })
        }
        return ok && tr != 0 ? tr : nil
    }

    public func genericArgument(of typeRef: swift_typeref_t, _ index: Int) -> swift_typeref_t? {
        var tr: swift_typeref_t = 0
        guard guarded("genericArgumentOfTypeRef", UInt64(typeRef), { _ in swref_guarded_genericArgumentOfTypeRef(typeRef, UInt32(index), &tr) }) else {
            return nil
        }
        return tr == 0 ? nil : tr
    }

    public static func demangle(_ mangled: String) -> String? {
        var out = [CChar](repeating: 0, count: 4096)
        let n = mangled.withCString { swift_reflection_demangle($0, strlen($0), &out, out.count) }
        return n > 0 ? String(cString: out) : nil
    }
}
