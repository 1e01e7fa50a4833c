// swift-tools-version:6.2
// A zoo of real Swift servers for swref's load tests (Tests/SwrefKitTests/ServerLoadTests.swift):
// a Hummingbird 2 app, a Vapor 4 app and a plain SwiftNIO HTTP/1 server sharing one dependency graph, built once
// per test run with `swift build --package-path testdata/servers` (debug, glibc malloc) and
// `-c release --static-swift-stdlib -Xlinker -ljemalloc` (Hummingbird's template production build).
// swref itself does not depend on this package.
import PackageDescription

let package = Package(
    name: "servers",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        // No default traits: swift-configuration is not needed here, and every package less shortens the build.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1", traits: []),
        .package(url: "https://github.com/vapor/vapor.git", exact: "4.122.3"),
    ],
    targets: [
        // mallinfo2() under glibc, mallctl("stats.allocated") under jemalloc (linked or static).
        .target(name: "CAllocatorStats"),
        // The cache both apps keep their request bodies in.
        .target(name: "ServerCache", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        .executableTarget(name: "HBApp", dependencies: [
            "CAllocatorStats", "ServerCache",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        .executableTarget(name: "VaporApp", dependencies: [
            "CAllocatorStats", "ServerCache",
            .product(name: "Vapor", package: "vapor"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        // swift-nio's own NIOHTTP1Server is an executable target but no product of swift-nio, so
        // SwiftPM does not build it from a dependent package: this is a minimal one in its place.
        .executableTarget(name: "NIOHTTPServer", dependencies: [
            "CAllocatorStats",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // Tasks queued on an event loop whose thread is busy for good: what the queue holds
        // (ServerLoadTests.testEventLoopQueueHoldsItsTasks).
        .executableTarget(name: "NIOQueuedTasks", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
    ],
    // Swift 5 mode: globals and top-level code without strict-concurrency ceremony.
    swiftLanguageModes: [.v5]
)
