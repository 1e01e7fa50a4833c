// swift-tools-version:5.9
// A small SwiftNIO TCP server for swref's framework-mode tests (its own package: swref itself
// does not depend on NIO). Built by the tests with `swift build --package-path testdata/nio-server`.
import PackageDescription

let package = Package(
    name: "NIOServer",
    dependencies: [.package(url: "https://github.com/apple/swift-nio", from: "2.60.0")],
    targets: [
        .executableTarget(name: "NIOServer", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
    ]
)
