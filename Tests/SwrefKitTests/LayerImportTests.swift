import Foundation
import XCTest

/// The layers import only the layers below them (Package.swift's `layer(…)` lines). The compiler
/// refuses a module it has not built yet, and `swift build --explicit-target-dependency-import-check
/// error` refuses any undeclared import; this test says which file broke the rule, in milliseconds.
final class LayerImportTests: XCTestCase {
    func testEveryLayerImportsOnlyItsDeclaredDependencies() throws {
        let root = TestPrograms.packageRoot
        let manifest = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        // layer("SwrefGraph", ["SwrefRuntimes", "SwrefImages", …])
        var allowed: [String: Set<String>] = [:]
        for call in manifest.components(separatedBy: "layer(\"").dropFirst() {
            guard let close = call.firstIndex(of: "]") else { continue }
            let quoted = call[..<close].split(separator: "\"").enumerated().filter { $0.offset % 2 == 0 }.map { String($0.element) }
            guard let name = quoted.first else { continue }
            allowed[name] = Set(quoted.dropFirst().filter { $0.hasPrefix("Swref") || $0.hasPrefix("CSwref") })
        }
        XCTAssertGreaterThanOrEqual(allowed.count, 8, "the layers were not found in Package.swift")
        let layers = Set(allowed.keys)
        var checked = 0
        for (layer, dependencies) in allowed {
            let directory = root.appendingPathComponent("Sources").appendingPathComponent(layer)
            guard let files = FileManager.default.enumerator(atPath: directory.path) else { continue }
            for case let file as String in files where file.hasSuffix(".swift") {
                let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
                for line in text.split(separator: "\n") where line.hasPrefix("import ") || line.hasPrefix("@_exported import ") {
                    let module = String(line.split(separator: " ").last!)
                    guard layers.contains(module) else { continue }
                    XCTAssertTrue(dependencies.contains(module), "\(layer)/\(file) imports \(module), which is not below it")
                }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 90, "too few source files found")
        // The order itself: no layer may depend on one that depends on it.
        for (layer, dependencies) in allowed {
            for dependency in dependencies where allowed[dependency]?.contains(layer) == true {
                XCTFail("\(layer) and \(dependency) depend on each other")
            }
        }
    }
}
