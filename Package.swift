// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "swref",
    products: [
        .executable(name: "swref", targets: ["swref"]),
        .library(name: "SwrefKit", targets: ["SwrefKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C declarations Glibc does not give Swift: ptrace (variadic), process_vm_readv,
        // the toolchain's libswiftRemoteMirror ABI (shipped without a header), elfutils, zlib.
        .target(
            name: "CSwrefSystem",
            linkerSettings: [
                .linkedLibrary("swiftRemoteMirror"),
                .linkedLibrary("dw"),
                .linkedLibrary("elf"),
                .linkedLibrary("z"),
                .linkedLibrary("stdc++"),
            ]
        ),
        .target(
            name: "SwrefKit",
            dependencies: ["CSwrefSystem"],
            // The analysis loops touch class state millions of times; dynamic exclusivity checks
            // cost about a tenth of the time there. Debug builds keep them.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "swref",
            dependencies: [
                "SwrefKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Measures a built swref from outside (a separate program: swref itself stays free of Foundation).
        .executableTarget(
            name: "swref-bench",
            dependencies: [
                "SwrefKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/swref-bench"
        ),
        .testTarget(name: "SwrefKitTests", dependencies: ["SwrefKit", "CSwrefSystem"]),
    ]
)
