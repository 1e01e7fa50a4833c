// swift-tools-version:5.9
import PackageDescription

// The layers as modules, lowest first: a layer imports only those below it, so an upward
// reference is a compile error (docs/architecture.md).
//   SwrefSupport   files, locks, pools, errors, formatting
//   SwrefMemory    the memory seam: MemorySource, Target, regions, threads' registers, snapshots
//   SwrefImages    ELF, DWARF, symbols, the unwinder, build ids
//   SwrefCapture   live processes (ptrace, pre-copy, fork) and cores: the Targets
//   SwrefRuntimes  allocators (glibc, jemalloc, tcmalloc, mimalloc), the Swift runtime, frameworks
//   SwrefGraph     objects, roots, the reference graph, dominators, attribution, leaks
//   SwrefReports   pprof, census, top, leaks, diffs
//   SwrefPipeline  one analysis, layer by layer
//   SwrefKit       all of the above, for the CLI and the end-to-end tests
// Beside them, for tests only: SwrefTestSupport (an in-memory Target — hand-built regions, glibc
// chunks, Swift object headers — on SwrefMemory alone) and one unit-test target per layer, which
// sees its layer and those below it and runs in milliseconds without ptrace, swiftc or Go:
//   SwrefSupportTests SwrefMemoryTests SwrefImagesTests SwrefCaptureTests SwrefRuntimesTests
//   SwrefGraphTests SwrefReportsTests SwrefPipelineTests
//   swift test --disable-swift-testing --filter 'Swref(Support|Memory|Images|Capture|Runtimes|Graph|Reports|Pipeline)Tests'
// SwrefKitTests is end to end: real processes, programs built with swiftc and Go, cores.
let release: [SwiftSetting] = [
    // The analysis loops touch class state millions of times; dynamic exclusivity checks cost
    // about a tenth of the time there. Debug builds keep them. Whole-package cross-module
    // optimisation keeps the hot reads of a lower layer (MemoryWindow, ObjectTable) inlined into
    // the scan as they were in one module.
    .unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization"], .when(configuration: .release)),
]

func layer(_ name: String, _ dependencies: [Target.Dependency], path: String? = nil) -> Target {
    .target(name: name, dependencies: dependencies, path: path, swiftSettings: release)
}

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
        layer("SwrefSupport", ["CSwrefSystem"]),
        layer("SwrefMemory", ["SwrefSupport", "CSwrefSystem"]),
        layer("SwrefImages", ["SwrefMemory", "SwrefSupport", "CSwrefSystem"]),
        layer("SwrefCapture", ["SwrefImages", "SwrefMemory", "SwrefSupport", "CSwrefSystem"]),
        layer("SwrefRuntimes", ["SwrefImages", "SwrefMemory", "SwrefSupport", "CSwrefSystem"]),
        layer("SwrefGraph", ["SwrefRuntimes", "SwrefImages", "SwrefMemory", "SwrefSupport", "CSwrefSystem"]),
        layer("SwrefReports", ["SwrefGraph", "SwrefRuntimes", "SwrefImages", "SwrefMemory", "SwrefSupport"]),
        layer("SwrefPipeline", ["SwrefGraph", "SwrefRuntimes", "SwrefImages", "SwrefMemory", "SwrefSupport"]),
        layer("SwrefKit", ["SwrefPipeline", "SwrefReports", "SwrefCapture", "SwrefGraph", "SwrefRuntimes",
                           "SwrefImages", "SwrefMemory", "SwrefSupport"]),
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
        // In-memory targets for unit tests (Tests/SwrefTestSupport): never part of a product.
        .target(name: "SwrefTestSupport", dependencies: ["SwrefMemory", "SwrefSupport"], path: "Tests/SwrefTestSupport"),
        // One unit-test target per layer: it sees its layer, the layers below and SwrefTestSupport,
        // never a layer above (so a test cannot reach up either).
        .testTarget(name: "SwrefSupportTests", dependencies: ["SwrefSupport", "SwrefTestSupport"]),
        .testTarget(name: "SwrefMemoryTests", dependencies: ["SwrefMemory", "SwrefSupport", "SwrefTestSupport"]),
        .testTarget(name: "SwrefImagesTests", dependencies: ["SwrefImages", "SwrefMemory", "SwrefSupport", "SwrefTestSupport"]),
        .testTarget(name: "SwrefCaptureTests", dependencies: ["SwrefCapture", "SwrefImages", "SwrefMemory", "SwrefSupport",
                                                               "SwrefTestSupport"]),
        .testTarget(name: "SwrefRuntimesTests", dependencies: ["SwrefRuntimes", "SwrefImages", "SwrefMemory", "SwrefSupport",
                                                                "SwrefTestSupport"]),
        .testTarget(name: "SwrefGraphTests", dependencies: ["SwrefGraph", "SwrefRuntimes", "SwrefImages", "SwrefMemory",
                                                             "SwrefSupport", "SwrefTestSupport"]),
        .testTarget(name: "SwrefReportsTests", dependencies: ["SwrefReports", "SwrefGraph", "SwrefRuntimes", "SwrefImages",
                                                               "SwrefMemory", "SwrefSupport", "SwrefTestSupport"]),
        .testTarget(name: "SwrefPipelineTests", dependencies: ["SwrefPipeline", "SwrefGraph", "SwrefRuntimes", "SwrefImages",
                                                                "SwrefMemory", "SwrefSupport", "SwrefTestSupport"]),
        // End to end: real processes (ptrace), programs built with swiftc and Go, cores.
        .testTarget(name: "SwrefKitTests", dependencies: ["SwrefKit", "CSwrefSystem"]),
    ]
)
