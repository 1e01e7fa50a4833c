import SwrefMemory
import SwrefSupport

/// The operands of the few x86-64 instructions an allocator's code reaches its hidden globals with
/// (jemalloc's extent map and arenas, tcmalloc's size map and page heap):
/// `lea disp32(%rip), r64` and `mov disp32(%rip), r64` (REX.W 8D/8B, ModRM mod=00 r/m=101), and
/// `add $imm32, r64` (REX.W 81 /0), which steps through an array of structs. A byte scan rather
/// than a decode of every instruction: a match that is not an instruction yields a target that
/// fails the checks every candidate goes through.
public struct RipOperands {
    /// Where each `lea`/`mov` points, in code order: both, and each kind alone.
    public var targets: [UInt64] = []
    public var leaTargets: [UInt64] = []
    public var movTargets: [UInt64] = []
    /// Immediates of `add $imm32, r64`.
    public var addImmediates: [UInt64] = []

    public init(code: [UInt8], at address: UInt64) {
        guard code.count >= 7 else { return }
        for index in 0...(code.count - 7) {
            let rex = code[index], opcode = code[index + 1], modrm = code[index + 2]
            guard rex & 0xf8 == 0x48 else { continue }
            let imm = UInt32(code[index + 3]) | UInt32(code[index + 4]) << 8 | UInt32(code[index + 5]) << 16 | UInt32(code[index + 6]) << 24
            if (opcode == 0x8d || opcode == 0x8b) && modrm & 0xc7 == 0x05 {
                // disp32 is signed and counts from the end of the 7-byte instruction.
                let next = address &+ UInt64(index) &+ 7
                let target = next &+ UInt64(bitPattern: Int64(Int32(bitPattern: imm)))
                targets.append(target)
                if opcode == 0x8d { leaTargets.append(target) } else { movTargets.append(target) }
            } else if opcode == 0x81 && modrm & 0xf8 == 0xc0 {
                addImmediates.append(UInt64(imm))
            }
        }
    }

    /// The operands in the exported function `symbol` of `image`, read from the target.
    public init?(function symbol: String, in image: LoadedImage, source: MemorySource) {
        guard let found = image.file.symbol(named: symbol), found.isFunction, found.size > 0,
              let code = source.readBytes(found.value &+ image.loadBias, count: Int(min(found.size, 4096))) else { return nil }
        self.init(code: code, at: found.value &+ image.loadBias)
    }
}

