import CSwrefSystem
import SwrefMemory
import SwrefSupport

/// A local variable or parameter of a stack frame, located through DWARF.
public struct DwarfLocal: Sendable {
    public enum Base: Sendable, Equatable {
        case frameBase
        case cfa
        case register(Int)
    }

    public var name: String
    public var base: Base
    public var offset: Int64
    /// The slot holds the address of the value, not the value.
    public var indirect: Bool
    public var typeName: String?
}

public enum DwarfLocals {
    /// The locals in scope at `pc` (unrelocated) of the function that holds it, and how the
    /// function's frame base is computed; nil when the file has no DWARF for that pc.
    public static func at(pc: UInt64, in path: String) -> (frameBase: DwarfLocal.Base?, locals: [DwarfLocal])? {
        final class Box { var locals: [DwarfLocal] = [] }
        let box = Box()
        var frameBase: Int32 = -1
        let count = swref_dwarf_locals(path, pc, { context, name, base, offset, deref, type in
            let box = Unmanaged<Box>.fromOpaque(context!).takeUnretainedValue()
            box.locals.append(DwarfLocal(name: String(cString: name!), base: DwarfLocals.base(base)!, offset: offset,
                                         indirect: deref != 0, typeName: type.map { String(cString: $0) }))
        }, Unmanaged.passUnretained(box).toOpaque(), &frameBase)
        guard count >= 0 else { return nil }
        return (base(frameBase), box.locals)
    }

    public static func base(_ code: Int32) -> DwarfLocal.Base? {
        switch code {
        case 0: return .frameBase
        case 1: return .cfa
        case 2...: return .register(Int(code) - 2)
        default: return nil
        }
    }
}
