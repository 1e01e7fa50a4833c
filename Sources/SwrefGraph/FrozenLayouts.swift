import SwrefRuntimes

// The layouts the reference scan reads: each type's `ObjectLayout` compiled once — field paths
// interned as label codes, framework mode's renamings applied — and frozen into buffers that
// copy without reference counting.

/// An ObjectLayout with interned paths, per element bucket for containers.
struct CompiledSlot {
    var offset: Int
    var action: ValueLayout.Action
    var pathIDs: [UInt32]  // one per bucket: [0]…[9], [10+]; or one for fixed layouts
}

/// A compiled slot that copies without reference counting: the scan reads tens of millions of
/// them, and retaining a slot's arrays costs atomic operations per object, on both threads.
struct FrozenSlot {
    var offset: Int
    /// One per bucket: [0]…[9], [10+]; or one for fixed layouts.
    var paths: UnsafeBufferPointer<UInt32>
    /// -1: a plain reference; otherwise the action's index in the store.
    var action: Int32
}

/// An `ObjectLayout` compiled for the scan: paths interned, slots frozen.
enum FrozenLayout {
    case fixed(UnsafeBufferPointer<FrozenSlot>, uncovered: UnsafeBufferPointer<Range<Int>>)
    case array(UnsafeBufferPointer<FrozenSlot>, stride: Int, start: Int)
    case deque(UnsafeBufferPointer<FrozenSlot>, stride: Int, start: Int)
    case dictionary(keys: UnsafeBufferPointer<FrozenSlot>, keyStride: Int, values: UnsafeBufferPointer<FrozenSlot>, valueStride: Int)
    case set(UnsafeBufferPointer<FrozenSlot>, stride: Int)
    case none
    case conservative
}

extension ReferenceScanner {
    /// The layout of `type` as the hot loop reads it, compiled from `sample` the first time.
    func compiledLayout(type: Int32, sample: UInt64) -> FrozenLayout {
        if let cached = compiled[Int(type)] { return cached }
        let layout = layouts.layout(type: type, entry: objects.types[Int(type)], sample: sample)
        let result: FrozenLayout
        switch layout {
        case .none: result = .none
        case .conservative: result = .conservative
        case .fixed(var value, let prefix, let uncovered):
            let name = objects.types[Int(type)].name
            // A protobuf message's heap storage names its fields `_payload`; the user wrote `payload`.
            if frameworkMode && ProtobufMessages.isStorageClass(name) {
                value.slots = value.slots.map { slot in
                    var slot = slot
                    slot.path = ProtobufMessages.userPath(slot.path)
                    return slot
                }
            }
            var slots = compile(value, prefixes: [prefix], emptyPath: prefix.isEmpty ? "$value" : prefix)
            // A buffer's bytes are charged to the buffer: they sit in its storage's frame.
            if frameworkMode, let field = Frameworks.bytesField(ofStorage: name) {
                for index in slots.indices where value.slots[index].path == field { slots[index].pathIDs = [0] }
            }
            result = .fixed(store.freeze(slots), uncovered: store.freeze(uncovered))
        case .array(let element, let start):
            let prefixes = (0..<10).map { "[\($0)]" } + ["[10+]"]
            result = .array(store.freeze(compile(element, prefixes: prefixes, emptyPath: nil)), stride: max(element.stride, 1), start: start)
        case .deque(let element, let start):
            let prefixes = (0..<10).map { "[\($0)]" } + ["[10+]"]
            result = .deque(store.freeze(compile(element, prefixes: prefixes, emptyPath: nil)), stride: max(element.stride, 1), start: start)
        case .dictionary(let key, let value):
            result = .dictionary(keys: store.freeze(compile(key, prefixes: ["$mapkey"], emptyPath: nil)), keyStride: max(key.stride, 1),
                                 values: store.freeze(compile(value, prefixes: ["$mapval"], emptyPath: nil)), valueStride: max(value.stride, 1))
        case .set(let element):
            result = .set(store.freeze(compile(element, prefixes: ["$setval"], emptyPath: nil)), stride: max(element.stride, 1))
        }
        compiled[Int(type)] = result
        return result
    }

    private func compile(_ layout: ValueLayout, prefixes: [String], emptyPath: String?) -> [CompiledSlot] {
        layout.slots.map { slot in
            CompiledSlot(offset: slot.offset, action: slot.action, pathIDs: prefixes.map { prefix in
                let path = joined(prefix, slot.path)
                return pathCode(path.isEmpty ? (emptyPath ?? "") : path)
            })
        }
    }
}

/// Owns the frozen layouts' buffers for the scanner and its workers, until the last goes.
final class FrozenStore {
    private(set) var actions: [ValueLayout.Action] = []
    private var buffers: [UnsafeMutableRawPointer] = []

    deinit { buffers.forEach { $0.deallocate() } }

    func freeze(_ slots: [CompiledSlot]) -> UnsafeBufferPointer<FrozenSlot> {
        let frozen = UnsafeMutableBufferPointer<FrozenSlot>.allocate(capacity: max(slots.count, 1))
        buffers.append(UnsafeMutableRawPointer(frozen.baseAddress!))
        for (index, slot) in slots.enumerated() {
            var action: Int32 = -1
            if slot.action != .reference {
                action = Int32(actions.count)
                actions.append(slot.action)
            }
            (frozen.baseAddress! + index).initialize(to: .init(offset: slot.offset, paths: freeze(slot.pathIDs), action: action))
        }
        return UnsafeBufferPointer(rebasing: frozen[0..<slots.count])
    }

    func freeze<T>(_ values: [T]) -> UnsafeBufferPointer<T> {
        let frozen = UnsafeMutableBufferPointer<T>.allocate(capacity: max(values.count, 1))
        buffers.append(UnsafeMutableRawPointer(frozen.baseAddress!))
        _ = frozen.initialize(from: values)
        return UnsafeBufferPointer(rebasing: frozen[0..<values.count])
    }
}

