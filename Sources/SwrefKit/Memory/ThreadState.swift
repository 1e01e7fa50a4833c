/// The registers of one stopped thread (x86_64).
public struct ThreadState: Sendable, Equatable {
    public var tid: Int32
    /// General registers in DWARF order: rax, rdx, rcx, rbx, rsi, rdi, rbp, rsp, r8–r15, then rip.
    public var dwarfRegisters: [UInt64]
    public var fsBase: UInt64
    public var gsBase: UInt64

    public var rip: UInt64 { dwarfRegisters[16] }
    public var rsp: UInt64 { dwarfRegisters[7] }

    public static let dwarfRegisterNames = ["rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
                                            "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"]

    public init(tid: Int32, dwarfRegisters: [UInt64], fsBase: UInt64, gsBase: UInt64) {
        self.tid = tid
        self.dwarfRegisters = dwarfRegisters
        self.fsBase = fsBase
        self.gsBase = gsBase
    }
}
