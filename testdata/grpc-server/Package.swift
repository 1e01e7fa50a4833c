// swift-tools-version:6.1
// gRPC and swift-protobuf targets for swref's framework-mode tests (their own package: swref itself
// depends on neither). Built by the tests with `swift build --package-path testdata/grpc-server`.
// The protobuf and gRPC code is generated from proto/cache.proto and committed (see the commands
// there), so no SwiftPM build plugin runs at build time.
import PackageDescription

let package = Package(
    name: "GRPCServer",
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // The generated messages (cache.pb.swift), shared by both programs.
        .target(name: "CacheProto", dependencies: [
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .executableTarget(name: "GRPCCacheServer", dependencies: [
            "CacheProto",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .executableTarget(name: "ProtoCache", dependencies: [
            "CacheProto",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)
