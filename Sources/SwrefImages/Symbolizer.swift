import CSwrefSystem
import Glibc
import SwrefMemory
import SwrefSupport

/// Names code addresses: the image's symbol, demangled by the Swift runtime's demangler.
public final class Symbolizer {
    public let images: ImageList
    private var cache: [UInt64: String] = [:]

    public init(images: ImageList) { self.images = images }

    /// `census.worker() -> ()`, or `libfoo.so+0x1234` when the image has no symbol there.
    public func name(of address: UInt64) -> String {
        if let cached = cache[address] { return cached }
        let result: String
        if let image = images.image(containing: address) {
            if let symbol = image.file.symbol(containing: address &- image.loadBias), symbol.isFunction {
                result = Symbolizer.demangle(symbol.name)
            } else if let symbol = image.debugFile?.symbol(containing: address &- image.loadBias), symbol.isFunction {
                result = Symbolizer.demangle(symbol.name)
            } else {
                result = "\(image.name)+0x\(String(address - image.start, radix: 16))"
            }
        } else {
            result = "0x\(String(address, radix: 16))"
        }
        cache[address] = result
        return result
    }

    /// The raw symbol at `address` and the image that holds it.
    public func symbol(at address: UInt64) -> (image: LoadedImage, symbol: ElfFile.Symbol)? {
        guard let image = images.image(containing: address),
              let symbol = image.file.symbol(containing: address &- image.loadBias) else { return nil }
        return (image, symbol)
    }

    /// Demangles Swift symbols (`$s…`); other names are returned as they are.
    public static func demangle(_ symbol: String) -> String {
        if symbol.hasPrefix("_Z") {
            // C++ (the Swift runtime's own functions).
            var status: Int32 = 0
            guard let out = __cxa_demangle(symbol, nil, nil, &status), status == 0 else { return symbol }
            defer { free(out) }
            return String(cString: out)
        }
        guard symbol.hasPrefix("$s") || symbol.hasPrefix("_T") || symbol.hasPrefix("$S") else { return symbol }
        let demangled: String? = symbol.withCString { raw in
            guard let out = swift_demangle(raw, strlen(raw), nil, nil, 0) else { return nil }
            defer { free(out) }
            return String(cString: out)
        }
        return demangled ?? symbol
    }
}
