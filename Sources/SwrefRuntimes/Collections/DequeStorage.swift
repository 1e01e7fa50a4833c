/// swift-collections' `Deque<Element>` storage, as the reference scan reads it (swift-collections
/// 1.x, `Sources/DequeModule/Deque/_DequeBuffer.swift` and `_DequeBufferHeader.swift`).
///
/// `_DequeBuffer<Element>` is a `ManagedBuffer<_DequeBufferHeader, Element>`: the 16-byte object
/// header, the header struct — `capacity` +16, `count` +24, `startSlot` +32 — then `capacity`
/// element slots, aligned to the element, in the same block. The `count` elements in use run from
/// `startSlot` and wrap at `capacity`; the other slots hold what was there before (a popped
/// element's bits), never read. SwiftNIO keeps its event loops' queued tasks in one
/// (`SelectableEventLoop._immediateTasks`, `Deque<UnderlyingTask>`).
public enum DequeStorage {
    /// The storage class's name as reflection gives it, up to its generic argument.
    public static let typePrefix = "DequeModule._DequeBuffer<"
    public static let capacityOffset: UInt64 = 16
    public static let countOffset: UInt64 = 24
    public static let startSlotOffset: UInt64 = 32
    /// The header struct ends at +40; the slots follow, aligned to the element.
    public static let fieldsEnd = 40

    public static func isStorage(_ typeName: String) -> Bool { typeName.hasPrefix(typePrefix) }

    /// Where the slots of an element type of `alignment` start.
    @inlinable
    public static func elementsStart(alignment: Int) -> Int {
        let alignment = max(alignment, 1)
        return (fieldsEnd + alignment - 1) / alignment * alignment
    }

    /// A deque's header as read from the target: which slots hold the elements in use.
    public struct Ring: Equatable {
        public var capacity: Int
        public var count: Int
        public var startSlot: Int

        /// Nil when the header makes no sense for a block of `usable` bytes (then no element is
        /// read): every slot must fit in the block, the elements in use in the slots.
        public init?(capacity: UInt64, count: UInt64, startSlot: UInt64, usable: UInt64, stride: Int, start: Int) {
            guard stride > 0, usable > UInt64(start), capacity <= (usable - UInt64(start)) / UInt64(stride),
                  count <= capacity, startSlot < max(capacity, 1) else { return nil }
            self.capacity = Int(capacity)
            self.count = Int(count)
            self.startSlot = Int(startSlot)
        }

        /// The slot the `index`th element in use (0 ..< count) sits in.
        @inline(__always)
        public func slot(_ index: Int) -> Int {
            let slot = startSlot + index
            return slot >= capacity ? slot - capacity : slot
        }
    }
}
