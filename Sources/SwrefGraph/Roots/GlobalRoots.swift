import SwrefImages
import SwrefMemory
import SwrefRuntimes

/// **global** roots: for images with DWARF, every Swift-typed global walked through its type
/// layout (`module.name`); Swift globals without DWARF (`…vp` symbols) word by word.
public struct GlobalRoots {
    public let scan: RootScan
    public let images: ImageList
    public let values: ValueLayoutBuilder?

    public func roots() -> [Root] {
        var roots: [Root] = []
        for image in images.images where !image.path.contains("/libc.so") {
            let hasDebugInfo = image.file.section(named: ".debug_info") != nil
            var named: [UInt64: Root] = [:]
            if hasDebugInfo, let values, let globals = DwarfGlobals.read(path: image.hostPath) {
                for global in globals {
                    let address = global.address &+ image.loadBias
                    guard let mangled = global.typeName, mangled.hasPrefix("$s"),
                          let layout = values.layout(ofMangledType: mangled) else { continue }
                    var root = Root(name: globalName(image: image, unrelocated: global.address, fallback: global.name), kind: .global)
                    scan.scanValue(layout, at: address, into: &root)
                    // Its own bytes only: a 1-byte global claiming a word hid the next global's
                    // first bytes from the image data's scan (NIOHPACK's Huffman table, leaked).
                    scan.claim(address..<address + UInt64(max(layout.size, 1)))
                    named[address] = root
                }
            }
            // Without DWARF types, Swift globals are still named by their symbols and scanned word by word.
            for symbol in image.file.objectSymbols(prefix: "$s", suffix: "vp") {
                let address = symbol.value &+ image.loadBias
                guard named[address] == nil, symbol.size > 0, symbol.size < 1 << 20 else { continue }
                var root = Root(name: globalName(symbol.name), kind: .global)
                scan.scan(&root, from: address, to: address + symbol.size, namedVariable: true)
                named[address] = root
            }
            roots += named.sorted { $0.key < $1.key }.map(\.value)
        }
        return roots
    }

    /// `module.name` from the symbol at a global's address (`paths.registry : [Int : Session]`).
    private func globalName(image: LoadedImage, unrelocated: UInt64, fallback: String) -> String {
        if let symbol = image.file.symbol(containing: unrelocated), symbol.value == unrelocated { return globalName(symbol.name) }
        return "\(image.name).\(fallback)"
    }

    private func globalName(_ symbol: String) -> String {
        let demangled = Symbolizer.demangle(symbol)
        if let colon = demangled.range(of: " : ") { return String(demangled[..<colon.lowerBound]) }
        return demangled
    }
}
