// swift-tools-version:5.9
// A package whose test leaks a retain cycle when SWREF_TEST_LEAK=1: swref's tests run its XCTest
// bundle under `swref run`, as docs/leaks-and-ci.md tells users to.
import PackageDescription

let package = Package(
    name: "Widgets",
    targets: [
        .target(name: "Widgets"),
        .testTarget(name: "WidgetsTests", dependencies: ["Widgets"]),
    ]
)
