/// swift-protobuf's generated messages (SwiftProtobuf 1.x).
///
/// A message is a struct with `unknownFields: SwiftProtobuf.UnknownStorage` (a `Data`); a message
/// with many or recursive fields keeps them in a heap `_StorageClass` behind its `_storage`
/// reference, each field stored as `_name`.
package enum ProtobufMessages {
    package static let unknownStorageTypeName = "SwiftProtobuf.UnknownStorage"
    package static let unknownStorageDisplay = "UnknownStorage (SwiftProtobuf)"
    package static let unknownFieldsField = "unknownFields"
    package static let storageField = "_storage"
    package static let framework = "protobuf"

    /// Whether a class is a message's heap storage.
    package static func isStorageClass(_ typeName: String) -> Bool { typeName.contains("_StorageClass") }

    /// The field as the user wrote it: a storage class names its fields `_payload`.
    package static func userPath(_ path: String) -> String {
        path.hasPrefix("_") ? String(path.dropFirst()) : path
    }

    /// The buffer a message's `_storage` names: the storage object, whole.
    package static func storageBuffer(storageSize: UInt64, message: String) -> (buffer: FrameworkBuffer, display: String) {
        (FrameworkBuffer(framework: framework, pinnedBytes: storageSize, viewedBytes: nil, blocks: 1),
         "\(SwiftTypeNames.display(message)) (SwiftProtobuf message)")
    }
}
