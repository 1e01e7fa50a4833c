/// libdispatch's queues as the roots read them (swift-corelibs-libdispatch, x86-64).
///
/// A queue (`dispatch_queue_s`, serial or concurrent) starts with its vtable, which is how the
/// recognizer knows one. Its work items are continuations (`dispatch_continuation_s`, 64 bytes:
/// `do_vtable`, `dc_priority`, `do_next` +16, `dc_voucher`, `dc_func`, `dc_ctxt` +40, `dc_data`,
/// `dc_other`), linked from `dq_items_head` through `do_next`.
public enum DispatchQueueLayout {
    /// The vtables of serial and concurrent queues: the first word of every queue.
    public static let vtableSymbols = ["__OS_dispatch_queue_serial_vtable", "__OS_dispatch_queue_concurrent_vtable"]

    /// `dq_items_tail`: a link to the last item, not a holder of it.
    public static let itemsTailOffset: UInt64 = 48
    /// `dq_label`: a C string, or 0.
    public static let labelOffset: UInt64 = 72
    /// `dq_items_head`: the first queued continuation.
    public static let itemsHeadOffset: UInt64 = 104

    /// A continuation's `do_next`: the next item on the queue.
    public static let continuationNextOffset: UInt64 = 16
    /// A continuation's `dc_ctxt`: the block (or context) it carries.
    public static let continuationContextOffset: UInt64 = 40
    public static let continuationSize: UInt64 = 64
    /// The most items followed on one queue (a damaged list may loop).
    public static let maximumItems = 100_000

    /// The queue's fields other than the item links (tail and head), up to `end`: its label,
    /// target queue, context…
    public static func otherFields(queue: UInt64, end: UInt64) -> [Range<UInt64>] {
        [(queue + 8)..<(queue + itemsTailOffset), (queue + itemsTailOffset + 8)..<(queue + itemsHeadOffset), (queue + itemsHeadOffset + 8)..<end]
    }
}
