import SwrefImages
import SwrefMemory
import SwrefSupport

/// Swift Concurrency tasks read from outside (Swift 6.3, task layout version 1): identity, state,
/// the chain of suspended async frames, task-local values and allocator slabs.
public struct AsyncTask {
    public struct Frame {
        /// The resume function: names the async function the frame belongs to.
        public var resume: UInt64
        public var context: UInt64
    }

    public var address: UInt64
    public var id: UInt64
    public var status: UInt32
    public var frames: [Frame]
    /// The context the task started with (the last of the chain, whose Parent is null), if the
    /// chain reached it.
    public var initialContext: UInt64?
    /// Task-local items: address of each value (inline at +24 of the item).
    public var localValues: [UInt64]
    public var slabs: [UInt64]
    /// What the task's allocator handed out (async frames, task-local items, objects the optimiser
    /// promoted into the task), newest first: each one's memory, as far as the next allocation.
    public var allocations: [Range<UInt64>]
    /// The parent task of a child task (async let, task group, structured), else nil.
    public var parent: UInt64?

    public var state: String {
        if status & 0x2000 != 0 { return "complete" }
        if status & 0x800 != 0 { return "running" }
        if status & 0x1000 != 0 { return "enqueued" }
        return "suspended"
    }

    // Offsets from the task object.
    @inlinable public static var resumeTask: UInt64 { 56 }
    @inlinable public static var resumeContext: UInt64 { 64 }
    @inlinable public static var idLow: UInt64 { 36 }
    @inlinable public static var statusFlags: UInt64 { 96 }
    @inlinable public static var lastAllocation: UInt64 { 112 }
    @inlinable public static var firstSlab: UInt64 { 120 }
    @inlinable public static var taskLocalHead: UInt64 { 136 }
    @inlinable public static var idHigh: UInt64 { 144 }
    @inlinable public static var jobFlags: UInt64 { 32 }      // u32; bit 24: is a child task
    @inlinable public static var childParent: UInt64 { 208 }  // child tasks: {Parent, NextChild}
    /// The task's operation — the closure it was created with — is kept in the prefix the runtime
    /// puts right before the initial context, in the task's own allocation (`AsyncContextPrefix`
    /// {entry, closureContext, errorResult}, or `FutureAsyncContextPrefix` with the result's
    /// address first: swift_task_create_common, Task.cpp). The task holds that context, retained,
    /// until it completes (`completeTaskWithClosure` releases it).
    @inlinable public static var operationContextBeforeInitialContext: UInt64 { 16 }

    public init?(at address: UInt64, source: MemorySource) {
        guard let low = source.readUInt32(address &+ AsyncTask.idLow), let high = source.readUInt32(address &+ AsyncTask.idHigh),
              let status = source.readUInt32(address &+ AsyncTask.statusFlags) else { return nil }
        self.address = address
        id = UInt64(high) << 32 | UInt64(low)
        self.status = status
        // Async frames: (ResumeTask, ResumeContext), then each context's {Parent, ResumeParent}.
        var frames: [Frame] = []
        var initial: UInt64? = nil
        var resume = source.readWord(address &+ AsyncTask.resumeTask) ?? 0
        var context = source.readWord(address &+ AsyncTask.resumeContext) ?? 0
        while context != 0 && resume != 0 && frames.count < 128 {
            // A continuation's context repeats the waiting function's resume function: keep one.
            if frames.last?.resume != resume { frames.append(Frame(resume: resume, context: context)) }
            guard let parent = source.readWord(context), let parentResume = source.readWord(context &+ 8) else { break }
            if parent == 0 { initial = context }
            if parent == context { break }
            context = parent
            resume = parentResume
        }
        self.frames = frames
        initialContext = initial
        var locals: [UInt64] = []
        var item = source.readWord(address &+ AsyncTask.taskLocalHead) ?? 0
        while item != 0 && locals.count < 1024 {
            locals.append(item &+ 24)
            // The low bits of `next` carry flags.
            item = (source.readWord(item) ?? 0) & ~7
        }
        localValues = locals
        var slabs: [UInt64] = []
        var slab = source.readWord(address &+ AsyncTask.firstSlab) ?? 0
        while slab != 0 && slabs.count < 4096 {
            slabs.append(slab)
            slab = source.readWord(slab &+ 8) ?? 0
        }
        self.slabs = slabs
        allocations = AsyncTask.allocations(last: source.readWord(address &+ AsyncTask.lastAllocation) ?? 0, slabs: slabs, source: source)
        if let flags = source.readUInt32(address &+ AsyncTask.jobFlags), flags & (1 << 24) != 0,
           let parent = source.readWord(address &+ AsyncTask.childParent), parent != 0 {
            self.parent = parent
        }
    }

    /// Where the task keeps its operation's context (`operationContextBeforeInitialContext`): nil
    /// unless the initial context is in the task's own block of `usable` bytes, past its header.
    public func operationContextSlot(usable: UInt64) -> UInt64? {
        guard let initial = initialContext, initial >= address, usable <= UInt64.max - address,
              initial - address >= AsyncTask.childParent + AsyncTask.operationContextBeforeInitialContext,
              initial - address <= usable else { return nil }
        return initial - AsyncTask.operationContextBeforeInitialContext
    }

    // The task allocator (include/swift/Runtime/StackAllocator.h): a slab is `{metadata, next,
    // u32 capacity, u32 current offset}`, its allocations from +32, each after a 16-byte header
    // `{previous allocation, slab}`.
    @inlinable public static var slabHeader: UInt64 { 32 }
    @inlinable public static var slabCurrentOffset: UInt64 { 20 }
    @inlinable public static var allocationHeader: UInt64 { 16 }

    /// The allocations from `last` back through each header's `previous`, each from its header to
    /// the next allocation's (the newest to its slab's current offset). A header whose slab is not
    /// the task's ends the walk.
    static func allocations(last: UInt64, slabs: [UInt64], source: MemorySource) -> [Range<UInt64>] {
        let owned = Set(slabs)
        var allocations: [Range<UInt64>] = []
        var ends: [UInt64: UInt64] = [:]  // slab → where its newest allocation not yet listed ends
        var header = last
        while header != 0 && allocations.count < 4096 {
            guard let previous = source.readWord(header), let slab = source.readWord(header &+ 8), owned.contains(slab) else { break }
            let end: UInt64
            if let known = ends[slab] {
                end = known
            } else {
                guard let used = source.readUInt32(slab &+ slabCurrentOffset) else { break }
                end = slab &+ slabHeader &+ UInt64(used)
            }
            let (start, overflow) = header.addingReportingOverflow(allocationHeader)
            // Allocations go up a slab in order: one that does not fit below the last is not one.
            guard !overflow, header > slab, start <= end else { break }
            allocations.append(start..<end)
            ends[slab] = header
            header = previous
        }
        return allocations
    }

    /// The id of the task at `address`.
    public static func id(at address: UInt64, source: MemorySource) -> UInt64? {
        guard let low = source.readUInt32(address + idLow), let high = source.readUInt32(address + idHigh) else { return nil }
        return UInt64(high) << 32 | UInt64(low)
    }

    /// `handleRequest(_:)`'s name from a resume partial function's demangled symbol.
    public static func functionName(_ symbol: String) -> String {
        for marker in [" partial function for ", "resume partial function for "] {
            if let range = symbol.range(of: marker) { return String(symbol[range.upperBound...]) }
        }
        return symbol
    }

    /// The async function pointer of a resume partial function (`…TQ0_`/`…TY1_` → `…Tu`), which holds
    /// the size of the function's frame.
    public static func asyncFunctionPointerSymbol(_ mangled: String) -> String? {
        guard mangled.hasSuffix("_") else { return nil }
        var base = mangled.dropLast()
        while let last = base.last, last.isNumber { base = base.dropLast() }
        guard base.hasSuffix("TQ") || base.hasSuffix("TY") else { return nil }
        return String(base.dropLast(2)) + "Tu"
    }
}
