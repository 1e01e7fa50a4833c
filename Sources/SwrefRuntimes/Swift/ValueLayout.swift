import CSwrefSystem
import SwrefImages
import SwrefMemory
import SwrefSupport

/// Where the references are inside a value of one type, from libswiftRemoteMirror's type layout.
///
/// A layout is a flat list of slots at offsets from the value's start; each slot says how to read
/// the reference there and which field path leads to it (`owner`, `config.cache`). Field names
/// inside standard-library types are left out of paths: a user wants `buffer`, not
/// `buffer._buffer._storage`.
public struct ValueLayout: Sendable {
    public enum Action: Sendable, Equatable {
        /// A pointer to a heap block (strong reference, raw pointer, class existential).
        case reference
        /// A thick function: code pointer, then context object.
        case function
        /// A SwiftNIO `ByteBuffer` value: storage reference at +0, reader and writer indices at +8/+12.
        /// `grpc`: the ByteBuffer inside grpc-swift-nio-transport's `GRPCNIOTransportBytes`.
        case byteBuffer(grpc: Bool)
        /// A Foundation `Data` value (16 bytes): inline bytes, or a slice of a `__DataStorage`.
        /// `protobufUnknownFields`: the Data inside swift-protobuf's `UnknownStorage`.
        case foundationData(protobufUnknownFields: Bool)
        /// A swift-protobuf message's `_storage` reference to its heap `_StorageClass`, with the
        /// message's type name.
        case protobufStorage(String)
        /// Words whose meaning depends on the value (existential buffers, multi-payload enums) or
        /// is unknown: each word is checked as a possible reference.
        case words(Int)
    }

    public struct Slot: Sendable {
        public var offset: Int
        public var action: Action
        public var path: String
    }

    public var size: Int
    public var stride: Int
    public var alignment: Int
    public var slots: [Slot]
    /// Byte ranges the type describes (references and plain data alike).
    public var coveredBytes: Int

    public static let empty = ValueLayout(size: 0, stride: 0, alignment: 1, slots: [], coveredBytes: 0)
    public var hasReferences: Bool { !slots.isEmpty }

    /// Whether every slot lies inside the value: offsets come from the target's metadata, and a
    /// slot past the end would read the neighbouring value or block as this one.
    public var slotsFit: Bool {
        slots.allSatisfy { $0.offset >= 0 && $0.offset <= size - $0.action.byteCount }
    }

    /// Whether every slot lies inside the value's stride: a container's element may read its own
    /// padding (a multi-payload enum of 41 bytes read as 6 words, in slots of 48).
    public var slotsFitStride: Bool {
        slots.allSatisfy { $0.offset >= 0 && $0.offset <= stride - $0.action.byteCount }
    }
}

extension ValueLayout.Action {
    /// How many bytes of the value the slot reads.
    public var byteCount: Int {
        switch self {
        case .reference, .protobufStorage: return 8
        case .function, .byteBuffer, .foundationData: return 16
        case .words(let count): return count.multipliedReportingOverflow(by: 8).overflow ? .max : count * 8
        }
    }
}

/// Builds and caches `ValueLayout`s through a reflection context.
public final class ValueLayoutBuilder {
    public let reflection: ReflectionContext
    private var cache: [swift_typeref_t: ValueLayout] = [:]
    private var nameCache: [swift_typeref_t: String] = [:]

    public init(reflection: ReflectionContext) { self.reflection = reflection }

    public static let referenceBuiltins: Set<String> = ["Builtin.BridgeObject", "Builtin.NativeObject", "Builtin.UnknownObject",
                                                 "Builtin.RawPointer"]

    public func layout(of typeRef: swift_typeref_t) -> ValueLayout {
        if let cached = cache[typeRef] { return cached }
        let info = reflection.info(of: typeRef)
        var slots: [ValueLayout.Slot] = []
        var covered = 0
        append(typeRef, info: info, offset: 0, path: "", hidePath: false, into: &slots, covered: &covered, depth: 0)
        let layout = ValueLayout(size: Int(info?.Size ?? 0), stride: Int(info?.Stride ?? 0),
                                 alignment: Int(max(info?.Alignment ?? 1, 1)), slots: slots, coveredBytes: covered)
        cache[typeRef] = layout
        return layout
    }

    public func layout(ofMangledType mangled: String) -> ValueLayout? {
        guard let tr = reflection.typeRef(forMangledName: mangled) else { return nil }
        return layout(of: tr)
    }

    public func typeName(_ tr: swift_typeref_t) -> String {
        if let cached = nameCache[tr] { return cached }
        let name = reflection.name(of: tr) ?? ""
        nameCache[tr] = name
        return name
    }

    private func join(_ path: String, _ name: String) -> String {
        if name.isEmpty { return path }
        return path.isEmpty ? name : path + "." + name
    }

    /// Children of an aggregate: fields of a struct/tuple/class, payloads of an enum.
    public func appendChildren(count: Int, child: (Int) -> swref_childinfo_t?, offset: Int, path: String, hidePath: Bool,
                        into slots: inout [ValueLayout.Slot], covered: inout Int, depth: Int) {
        for index in 0..<count {
            guard let info = child(index), info.TR != 0 else { continue }
            let name = hidePath ? "" : (info.Name.map { String(cString: $0) } ?? "")
            let childInfo = reflection.info(of: info.TR)
            append(info.TR, info: childInfo, offset: offset + Int(info.Offset), path: join(path, name),
                   hidePath: hidePath, into: &slots, covered: &covered, depth: depth + 1)
        }
    }

    private func append(_ tr: swift_typeref_t, info: swref_typeinfo_t?, offset: Int, path: String, hidePath: Bool,
                        into slots: inout [ValueLayout.Slot], covered: inout Int, depth: Int) {
        guard let info, depth < 32 else {
            return
        }
        let size = Int(info.Size)
        let words = (size + 7) / 8
        let name = typeName(tr)
        // Standard-library internals: the fields below are implementation details.
        let hide = hidePath || name.hasPrefix("Swift.")
        // A framework's buffer value (NIO ByteBuffer, Foundation Data…) is read as one (`Frameworks`).
        if let action = Frameworks.valueAction(typeName: name, size: size) {
            slots.append(.init(offset: offset, action: action, path: path))
            covered += size
            return
        }
        // A String's second word is a tagged pointer to its storage (native or shared) or inline bytes.
        if name == "Swift.String" || name == "Swift.Substring" {
            slots.append(.init(offset: offset + 8, action: .words(1), path: path))
            covered += size
            return
        }
        // The library reports these reference-holding builtins as opaque data: a Dictionary's or
        // Array's storage sits in a Builtin.BridgeObject.
        if ValueLayoutBuilder.referenceBuiltins.contains(name) {
            slots.append(.init(offset: offset, action: .reference, path: path))
            covered += size
            return
        }
        let slotsBefore = slots.count
        defer {
            // Atomic storage (stdlib `Synchronization`, swift-atomics' `Atomics`) is described as
            // plain integers, yet `Atomic<Unmanaged<T>?>`, `ManagedAtomic<T>` of a class and
            // `Mutex<T>` hold references there: each word is read as a possible one.
            if slots.count == slotsBefore && words > 0 && (name.hasPrefix("Synchronization.") || name.hasPrefix("Atomics.")) {
                slots.append(.init(offset: offset, action: .words(words), path: path))
            }
        }
        switch info.Kind {
        case SWREF_LAYOUT_BUILTIN, SWREF_LAYOUT_NO_PAYLOAD_ENUM, SWREF_LAYOUT_EXISTENTIAL_METATYPE:
            covered += size
        case SWREF_LAYOUT_WEAK_REFERENCE, SWREF_LAYOUT_UNOWNED_REFERENCE, SWREF_LAYOUT_UNMANAGED_REFERENCE:
            // Weak and unowned references do not keep their object alive.
            covered += size
        case SWREF_LAYOUT_STRONG_REFERENCE, SWREF_LAYOUT_RAW_POINTER, SWREF_LAYOUT_CLASS_EXISTENTIAL,
             SWREF_LAYOUT_ERROR_EXISTENTIAL:
            slots.append(.init(offset: offset, action: .reference, path: path))
            covered += size
        case SWREF_LAYOUT_THICK_FUNCTION:
            slots.append(.init(offset: offset, action: .function, path: path))
            covered += size
        case SWREF_LAYOUT_TUPLE, SWREF_LAYOUT_STRUCT, SWREF_LAYOUT_SINGLE_PAYLOAD_ENUM:
            var childCovered = 0
            let before = slots.count
            appendChildren(count: Int(info.NumFields), child: { self.reflection.child(of: tr, $0) }, offset: offset,
                           path: path, hidePath: hide, into: &slots, covered: &childCovered, depth: depth)
            if info.Kind == SWREF_LAYOUT_STRUCT {
                markProtobufStorage(tr, name: name, fields: Int(info.NumFields), offset: offset, path: path, slots: &slots[before...])
            }
            if info.Kind == SWREF_LAYOUT_SINGLE_PAYLOAD_ENUM || childCovered >= size || size == 0 {
                covered += size
            } else if slots.count == before && info.NumFields == 0 && size >= 8 {
                // A type the library could not break down: look at every word.
                slots.append(.init(offset: offset, action: .words(words), path: path))
                covered += size
            } else {
                covered += childCovered
            }
        case SWREF_LAYOUT_OPAQUE_EXISTENTIAL:
            // The inline buffer holds a value, a class reference, or a pointer to a box.
            slots.append(.init(offset: offset, action: .words(3), path: path))
            covered += size
        default:
            // Multi-payload enums (the case decides which words are references), inline arrays and
            // unknown layouts: each word is a possible reference, with spare bits masked.
            if words > 0 { slots.append(.init(offset: offset, action: .words(words), path: path)) }
            covered += size
        }
    }
}
