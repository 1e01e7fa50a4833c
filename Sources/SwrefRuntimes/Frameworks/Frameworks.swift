/// Framework mode (`--framework`): buffers of SwiftNIO, gRPC, Foundation and swift-protobuf named
/// by what they pin and view, and charged to the user code that retains them.
///
/// What each framework is — its types, offsets, field names, frames and modules — lives in its
/// own folder of `SwrefRuntimes` (`NIO/`, `GRPC/`, `Foundation/`, `Protobuf/`). This list joins
/// them for the places that ask about every framework at once; a new framework adds its folder
/// and a line to each of these. How a framework's values are read is `ValueLayout.Action` (one
/// case per kind of buffer value), recognised in `ValueLayoutBuilder` and read by the
/// `ReferenceScanner`.
public enum Frameworks {
    /// The action that reads a value of type `name` (of `size` bytes) as a framework's buffer, if
    /// it is one; read so in every mode, named so only in framework mode.
    public static func valueAction(typeName name: String, size: Int) -> ValueLayout.Action? {
        let byteBuffer = ByteBufferStorage.valueKind(name)
        if byteBuffer.isByteBuffer && size >= ByteBufferStorage.minimumValueSize { return .byteBuffer(grpc: byteBuffer.grpc) }
        let unknownFields = name == ProtobufMessages.unknownStorageTypeName
        if (DataStorage.valueTypeNames.contains(name) || unknownFields) && size == DataStorage.valueSize {
            return .foundationData(protobufUnknownFields: unknownFields)
        }
        return nil
    }

    /// Whether a heap type means framework buffers are there (`--framework auto` turns on).
    public static func hasBuffers(ofType name: String) -> Bool {
        name == ByteBufferStorage.storageTypeName || DataStorage.isStorage(name) || ProtobufMessages.isHeapType(name)
    }

    /// The field of a buffer's storage class that points at its bytes: in framework mode the
    /// bytes' block sits in the buffer's frame, charged to it.
    public static func bytesField(ofStorage name: String) -> String? {
        if name == ByteBufferStorage.storageTypeName { return ByteBufferStorage.bytesField }
        if DataStorage.isStorage(name) { return DataStorage.bytesField }
        return nil
    }

    /// Modules whose frames are not the user's: the frameworks', the standard library's, the runtime's.
    public static let modules: Set<String> = ByteBufferStorage.modules.union(DataStorage.modules).union(ProtobufMessages.modules)
        .union(GRPCBytes.modules).union(["Swift", "Dispatch", "_Concurrency"])
}
