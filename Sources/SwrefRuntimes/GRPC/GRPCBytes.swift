/// grpc-swift 2 (GRPCCore, grpc-swift-nio-transport): its NIO transport's `GRPCNIOTransportBytes`
/// holds one NIO `ByteBuffer` (`ByteBufferStorage`) and nothing else; framework mode names it as
/// gRPC's.
public enum GRPCBytes {
    public static let typeName = "GRPCNIOTransportCore.GRPCNIOTransportBytes"
    public static let display = "GRPCNIOTransportBytes (GRPCNIOTransportCore)"
    public static let framework = "grpc"
    /// gRPC's modules: their frames are not user code.
    public static let modules: Set<String> = ["GRPC", "GRPCCore", "GRPCNIOTransportCore", "GRPCNIOTransportHTTP2", "GRPCProtobuf"]
}
