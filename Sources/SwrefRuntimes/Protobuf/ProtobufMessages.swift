import CSwrefSystem

/// swift-protobuf's generated messages (SwiftProtobuf 1.x).
///
/// A message is a struct with `unknownFields: SwiftProtobuf.UnknownStorage` (a `Data`); a message
/// with many or recursive fields keeps them in a heap `_StorageClass` behind its `_storage`
/// reference, each field stored as `_name`.
public enum ProtobufMessages {
    public static let unknownStorageTypeName = "SwiftProtobuf.UnknownStorage"
    public static let unknownStorageDisplay = "UnknownStorage (SwiftProtobuf)"
    public static let unknownFieldsField = "unknownFields"
    public static let storageField = "_storage"
    public static let framework = "protobuf"

    /// swift-protobuf's modules: their frames are not user code.
    public static let modules: Set<String> = ["SwiftProtobuf"]

    /// Whether a class is a message's heap storage.
    public static func isStorageClass(_ typeName: String) -> Bool { typeName.contains("_StorageClass") }

    /// Whether the heap's holding a type of this name means protobuf messages are there: a
    /// message's storage class, or any of SwiftProtobuf's own types.
    public static func isHeapType(_ typeName: String) -> Bool {
        typeName.hasSuffix("._StorageClass") || typeName.hasPrefix("SwiftProtobuf.")
    }

    /// The field as the user wrote it: a storage class names its fields `_payload`.
    public static func userPath(_ path: String) -> String {
        path.hasPrefix("_") ? String(path.dropFirst()) : path
    }

    /// The buffer a message's `_storage` names: the storage object, whole.
    public static func storageBuffer(storageSize: UInt64, message: String) -> (buffer: FrameworkBuffer, display: String) {
        (FrameworkBuffer(framework: framework, pinnedBytes: storageSize, viewedBytes: nil, blocks: 1),
         "\(SwiftTypeNames.display(message)) (SwiftProtobuf message)")
    }
}

extension ValueLayoutBuilder {
    /// A generated swift-protobuf message (a struct with `unknownFields: SwiftProtobuf.UnknownStorage`)
    /// that keeps its fields in a heap `_StorageClass`: its `_storage` reference names the message,
    /// at the message's own path.
    func markProtobufStorage(_ tr: swift_typeref_t, name: String, fields: Int, offset: Int, path: String,
                             slots: inout ArraySlice<ValueLayout.Slot>) {
        var isMessage = false
        var storageOffset: Int?
        for index in 0..<fields {
            guard let child = reflection.child(of: tr, index), let fieldName = child.Name.map({ String(cString: $0) }) else { continue }
            if fieldName == ProtobufMessages.unknownFieldsField && typeName(child.TR) == ProtobufMessages.unknownStorageTypeName { isMessage = true }
            if fieldName == ProtobufMessages.storageField { storageOffset = offset + Int(child.Offset) }
        }
        guard isMessage, let storageOffset,
              let slot = slots.firstIndex(where: { $0.offset == storageOffset && $0.action == .reference }) else { return }
        slots[slot].action = .protobufStorage(name)
        slots[slot].path = path
    }
}
