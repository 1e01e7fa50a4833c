import CSwrefSystem
import SwrefMemory
import SwrefSupport

/// A global variable described by DWARF.
public struct DwarfGlobal: Sendable {
    public var name: String
    /// Unrelocated address.
    public var address: UInt64
    public var size: UInt64
    /// Mangled Swift type (`$s6census4NodeCSgD`), when the type DIE carries one.
    public var typeName: String?
}

public enum DwarfGlobals {
    /// The globals of an ELF file, or nil when it has no DWARF.
    public static func read(path: String) -> [DwarfGlobal]? {
        final class Box { var globals: [DwarfGlobal] = [] }
        let box = Box()
        let count = swref_dwarf_globals(path, { context, name, address, size, type in
            let box = Unmanaged<Box>.fromOpaque(context!).takeUnretainedValue()
            box.globals.append(DwarfGlobal(name: String(cString: name!), address: address, size: size,
                                           typeName: type.map { String(cString: $0) }))
        }, Unmanaged.passUnretained(box).toOpaque())
        return count < 0 ? nil : box.globals
    }
}
