import CSwrefSystem
import SwrefMemory
import SwrefSupport

/// One frame of a thread's stack: its pc and stack pointer, innermost first.
public struct StackFrame: Sendable {
    public var pc: UInt64
    public var sp: UInt64
    /// rbp in this frame, 0 when the unwinder could not tell.
    public var bp: UInt64 = 0
    public var isActivation: Bool

    public init(pc: UInt64, sp: UInt64, bp: UInt64 = 0, isActivation: Bool) {
        self.pc = pc
        self.sp = sp
        self.bp = bp
        self.isActivation = isActivation
    }
}

/// Unwinds threads with libdwfl (CFI from .eh_frame/.debug_frame), reading stack memory from any
/// memory source and starting from registers swref captured.
public enum StackUnwinder {
    public static func unwind(threads: [ThreadState], images: ImageList, source: MemorySource,
                              maxFrames: Int = 256) -> [Int32: [StackFrame]] {
        guard let unwinder = swref_unwinder_create() else { return [:] }
        defer { swref_unwinder_destroy(unwinder) }
        for image in images.images { _ = swref_unwinder_add_image(unwinder, image.hostPath, image.loadBias) }
        var registers = threads.map { thread -> swref_thread_registers in
            var block = swref_thread_registers()
            block.tid = thread.tid
            withUnsafeMutableBytes(of: &block.regs) { raw in
                let words = raw.bindMemory(to: UInt64.self)
                for (index, value) in thread.dwarfRegisters.prefix(17).enumerated() { words[index] = value }
            }
            return block
        }
        final class Context {
            public let source: MemorySource
            public var frames: [Int32: [StackFrame]] = [:]
            public init(source: MemorySource) { self.source = source }
        }
        let context = Context(source: source)
        let opaque = Unmanaged.passUnretained(context).toOpaque()
        _ = registers.withUnsafeMutableBufferPointer { buffer in
            swref_unwinder_run(
                unwinder, buffer.baseAddress, buffer.count,
                { ctx, address, out in
                    let me = Unmanaged<Context>.fromOpaque(ctx!).takeUnretainedValue()
                    guard let word = me.source.readWord(address) else { return -1 }
                    out!.pointee = word
                    return 0
                }, opaque,
                { ctx, tid, pc, sp, bp, activation in
                    let me = Unmanaged<Context>.fromOpaque(ctx!).takeUnretainedValue()
                    me.frames[tid, default: []].append(StackFrame(pc: pc, sp: sp, bp: bp, isActivation: activation != 0))
                }, opaque, Int32(maxFrames))
        }
        return context.frames
    }
}
