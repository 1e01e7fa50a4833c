import SwrefSupport

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

    /// The kernel's `user_regs_struct` (27 words), as ptrace and NT_PRSTATUS hold it.
    public var userRegisters: [UInt64]

    public init(tid: Int32, dwarfRegisters: [UInt64], fsBase: UInt64, gsBase: UInt64) {
        self.tid = tid
        self.dwarfRegisters = dwarfRegisters
        self.fsBase = fsBase
        self.gsBase = gsBase
        var user = [UInt64](repeating: 0, count: ThreadState.userRegisterCount)
        // Place the DWARF registers back where user_regs_struct keeps them.
        for (dwarf, slot) in ThreadState.dwarfToUser.enumerated() where dwarf < dwarfRegisters.count { user[slot] = dwarfRegisters[dwarf] }
        user[21] = fsBase
        user[22] = gsBase
        userRegisters = user
    }

    /// From a `user_regs_struct`: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax
    /// rip cs eflags rsp ss fs_base gs_base ds es fs gs.
    public init(tid: Int32, userRegisters: [UInt64]) {
        var user = userRegisters
        if user.count < ThreadState.userRegisterCount { user += [UInt64](repeating: 0, count: ThreadState.userRegisterCount - user.count) }
        self.tid = tid
        self.dwarfRegisters = ThreadState.dwarfToUser.map { user[$0] }
        self.fsBase = user[21]
        self.gsBase = user[22]
        self.userRegisters = user
    }

    @inlinable public static var userRegisterCount: Int { 27 }
    /// For each DWARF register (rax rdx rcx rbx rsi rdi rbp rsp r8–r15 rip), its user_regs_struct slot.
    public static let dwarfToUser = [10, 12, 11, 5, 13, 14, 4, 19, 9, 8, 7, 6, 3, 2, 1, 0, 16]
}
