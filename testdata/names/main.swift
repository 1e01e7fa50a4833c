// Objects whose names the program gives them but the heap hides: an object that is its closure's
// whole context, generic classes nested and self-referencing, errors boxed as `any Error`, an
// object the optimiser promoted into an async task's frame. Prints READY, then waits.
// Usage: names
import Glibc

// MARK: Closures capturing one class reference: the object is the closure's context.

final class Listener {
    let id: Int
    var hits: [Int]
    init(id: Int) { self.id = id; hits = [Int](repeating: id, count: 20) }
}

let listenerCount = 6
var listeners: [() -> Int] = []
@inline(never) func register(_ listener: Listener) {
    listeners.append { listener.hits.count + listener.id }
}
for i in 0..<listenerCount { register(Listener(id: i)) }

// MARK: Generic names.

final class Node<T> {
    var value: T
    var next: Node<T>?
    init(_ value: T, next: Node<T>?) { self.value = value; self.next = next }
}
final class Outer<K> {
    final class Inner<V> {
        var key: K
        var value: V
        init(key: K, value: V) { self.key = key; self.value = value }
    }
}
final class Label { let text = "label" }

/// The usual linked list: a node type nested in the generic list, generic only through it.
final class LinkedList<T> {
    final class Node {
        var value: T
        var next: Node?
        init(_ value: T, next: Node?) { self.value = value; self.next = next }
    }
    var head: Node?
    func push(_ value: T) { head = Node(value, next: head) }
}

var list: Node<Label>? = nil
for _ in 0..<5 { list = Node(Label(), next: list) }
var inner = Outer<Int>.Inner<Label>(key: 1, value: Label())
let queue = LinkedList<Label>()
for _ in 0..<4 { queue.push(Label()) }

// MARK: Errors boxed as `any Error`.

enum ParseError: Error { case empty, truncated }
struct DetailedError: Error {
    var code: Int
    var owner: Label
}
enum Errors {
    static let empty: any Error = ParseError.empty
}
var stored: [any Error] = [DetailedError(code: 1, owner: Label()), DetailedError(code: 2, owner: Label())]

// MARK: An object the optimiser keeps in an async task's frame.

final class Scratch {
    var data: [UInt8]
    init(_ id: Int) { data = [UInt8](repeating: UInt8(truncatingIfNeeded: id), count: 200) }
}

/// Continuations parked here keep their tasks suspended.
final class Parking: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var continuations: [CheckedContinuation<Void, Never>] = []
    init() { pthread_mutex_init(&mutex, nil) }
    func park(_ continuation: CheckedContinuation<Void, Never>) {
        pthread_mutex_lock(&mutex); continuations.append(continuation); pthread_mutex_unlock(&mutex)
    }
    var count: Int { pthread_mutex_lock(&mutex); defer { pthread_mutex_unlock(&mutex) }; return continuations.count }
}
let parking = Parking()

/// Reads the object without letting it escape: the optimiser keeps the object (it cannot reduce it
/// to its fields) but may allocate it outside the heap.
@inline(never) func measure(_ scratch: Scratch) -> Int { scratch.data.count }

@inline(never) func work(_ id: Int) async -> Int {
    // Never escapes: at -O the object is promoted into the task's allocator.
    let scratch = Scratch(id)
    let before = measure(scratch)
    await withCheckedContinuation { parking.park($0) }
    return before + measure(scratch)
}

let taskCount = 3
for i in 0..<taskCount { Task.detached { _ = await work(i) } }
while parking.count < taskCount { usleep(1000) }
usleep(100_000)

// Each `any Error` is one pointer, to its box: `swref inspect` is pointed at them.
for error in [Errors.empty] + stored { print("ERRORBOX 0x\(String(unsafeBitCast(error, to: UInt.self), radix: 16))") }
print("READY")
fflush(stdout)
while true { pause() }
