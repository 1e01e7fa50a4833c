/// grpc-swift 2 (GRPCCore, grpc-swift-nio-transport): its NIO transport's `GRPCNIOTransportBytes`
/// holds one NIO `ByteBuffer` (`ByteBufferStorage`) and nothing else; framework mode names it as
/// gRPC's.
package enum GRPCBytes {
    package static let typeName = "GRPCNIOTransportCore.GRPCNIOTransportBytes"
    package static let display = "GRPCNIOTransportBytes (GRPCNIOTransportCore)"
    package static let framework = "grpc"
    /// gRPC's modules: their frames are not user code.
    package static let modules: Set<String> = ["GRPC", "GRPCCore", "GRPCNIOTransportCore", "GRPCNIOTransportHTTP2", "GRPCProtobuf"]
}
