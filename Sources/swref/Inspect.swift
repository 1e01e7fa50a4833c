import ArgumentParser
import SwrefKit

extension Swref {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one heap object: its type, its layout as swref reads it, and the references it holds."
        )

        @Argument(help: ArgumentHelp("PID ADDRESS, or with --core: [EXE] CORE ADDRESS (hex, 0x…).", valueName: "target"))
        var arguments: [String]

        @OptionGroup var targetOptions: TargetOptions

        func validate() throws {
            guard arguments.count >= 2 else { throw ValidationError("give PID ADDRESS, or --core [EXE] CORE ADDRESS") }
        }

        func run() throws {
            try runReporting {
                let address = arguments.last!
                guard let value = UInt64(address.hasPrefix("0x") ? String(address.dropFirst(2)) : address, radix: 16) else {
                    throw SwrefError.invalidInput("not a hex address: \(address)")
                }
                let (target, _) = try openTarget(core: targetOptions.core, arguments: Array(arguments.dropLast()),
                                                 sysroot: targetOptions.sysroot, capture: targetOptions.capture)
                let analysis = analyse(target)
                guard let index = analysis.objects.object(containing: value) else {
                    throw SwrefError.invalidInput("0x\(String(value, radix: 16)) is not inside an in-use heap block")
                }
                let objects = analysis.objects
                let type = objects.types[Int(objects.typeIndices[index])]
                print("0x\(String(objects.addresses[index], radix: 16)): \(type.name) (\(type.kind.rawValue)), \(objects.sizes[index]) B block")
                let layouts = ObjectLayouts(reflection: analysis.reflection, source: target)
                print("layout: \(layouts.layout(type: objects.typeIndices[index], entry: type, sample: objects.addresses[index]))")
                let scanner = ReferenceScanner(source: target, objects: objects, layouts: layouts,
                                               symbolizer: Symbolizer(images: analysis.images))
                scanner.references(of: index) { target, label in
                    let targetType = objects.types[Int(objects.typeIndices[Int(target)])].name
                    print("  → 0x\(String(objects.addresses[Int(target)], radix: 16)) \(targetType) via \"\(scanner.names.text(label, target: target))\"")
                }
            }
        }
    }
}
