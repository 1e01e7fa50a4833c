// One of each construct the reference walk must understand, held from known roots.
// Prints "EXPECT <count> <bytes> <frame>|<frame>|…" for every path whose figures follow from the
// construction (bytes are malloc chunk sizes: malloc_usable_size + 8), then "READY …" and waits.
import Glibc

final class Session {
    let id: Int
    var buffer: [UInt8]
    init(id: Int) {
        self.id = id
        buffer = [UInt8](repeating: 7, count: 50_000 + id)
    }
}

final class Owner { var name = 0 }
struct Entry {
    var id: Int
    var owner: Owner
}

final class Captured { var hits = 0 }
final class Holder { var x = 1 }
final class Item { var n = 2 }
struct BigStruct {
    var a: Item
    var b: Item
    var c: Int = 0
    var d: Int = 0
}

indirect enum Tree {
    case leaf(Item)
    case node(Tree, Tree)
}

final class Parent { var child: Child? }
final class Child { weak var parent: Parent? }

final class StackHeld { var payload = [Int](repeating: 1, count: 50) }

@inline(never) func chunk(_ object: AnyObject) -> Int { malloc_usable_size(Unmanaged.passUnretained(object).toOpaque()) + 8 }
@inline(never) func chunk(_ pointer: UnsafeRawPointer) -> Int { malloc_usable_size(UnsafeMutableRawPointer(mutating: pointer)) + 8 }
func arrayStorage<T>(_ array: [T]) -> UnsafeRawPointer {
    array.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress!) - 32 }
}
func expect(_ count: Int, _ bytes: Int, _ frames: [String]) {
    print("EXPECT \(count) \(bytes) \(frames.joined(separator: "|"))")
}

print("starting")
fflush(stdout)

let sessionCount = 20
var registry: [Int: Session] = [:]
for i in 0..<sessionCount { registry[i] = Session(id: i) }

var entries: [Entry] = (0..<12).map { Entry(id: $0, owner: Owner()) }

let captured = Captured()
let increment = 3
// Two captures: a context object is allocated (one class capture would be its own context).
var callback: () -> Int = { [captured, increment] in captured.hits += increment; return captured.hits }

var anyClass: Any = Holder()
var anyBig: Any = BigStruct(a: Item(), b: Item())

var tree: Tree = .node(.node(.leaf(Item()), .leaf(Item())), .leaf(Item()))

let parent = Parent()
parent.child = Child()
parent.child!.parent = parent

// A second thread keeps an object alive in a local and blocks.
var ready = false
var mutex = pthread_mutex_t()
var condition = pthread_cond_t()
pthread_mutex_init(&mutex, nil)
pthread_cond_init(&condition, nil)
var stackHeldBytes = (0, 0)
// Unoptimised even in -O builds, so the local is a real heap object in this frame.
@_optimize(none) @inline(never) func holdOnStack() {
    let local = StackHeld()
    pthread_mutex_lock(&mutex)
    stackHeldBytes = (chunk(local), chunk(arrayStorage(local.payload)))
    ready = true
    pthread_cond_signal(&condition)
    pthread_mutex_unlock(&mutex)
    while true { _ = withExtendedLifetime(local) { pause() } }
}
var thread = pthread_t()
pthread_create(&thread, nil, { _ in holdOnStack(); return nil }, nil)
pthread_mutex_lock(&mutex)
while !ready { pthread_cond_wait(&condition, &mutex) }
pthread_mutex_unlock(&mutex)

// The figures the walk must reproduce, computed in a function so no global holds them.
@inline(never) func printExpectations() {
    let dictionaryStorage = unsafeBitCast(registry, to: UnsafeRawPointer.self)
    expect(1, chunk(dictionaryStorage), ["paths.registry"])
    expect(sessionCount, registry.values.reduce(0) { $0 + chunk($1) }, ["paths.registry", "$mapval. (paths.Session)"])
    expect(sessionCount, registry.values.reduce(0) { $0 + chunk(arrayStorage($1.buffer)) },
           ["paths.registry", "$mapval. (paths.Session)", "buffer. ([UInt8])"])
    expect(1, chunk(arrayStorage(entries)), ["paths.entries"])
    for i in 0..<10 { expect(1, chunk(entries[i].owner), ["paths.entries", "[\(i)].owner. (paths.Owner)"]) }
    expect(2, chunk(entries[10].owner) + chunk(entries[11].owner), ["paths.entries", "[10+].owner. (paths.Owner)"])
    let context = unsafeBitCast(callback, to: (UInt, UnsafeRawPointer).self).1
    expect(1, chunk(context), ["paths.callback", "closure #2 () -> Swift.Int in paths"])
    expect(1, chunk(captured), ["paths.captured"])
    expect(1, chunk(anyClass as AnyObject), ["paths.anyClass"])
    let big = anyBig as! BigStruct
    let bigBox = withUnsafeBytes(of: &anyBig) { $0.load(as: UnsafeRawPointer.self) }
    expect(1, chunk(bigBox), ["paths.anyBig"])
    expect(1, chunk(big.a), ["paths.anyBig", "a. (paths.Item)"])
    expect(1, chunk(big.b), ["paths.anyBig", "b. (paths.Item)"])
    expect(1, chunk(parent), ["paths.parent"])
    expect(1, chunk(parent.child!), ["paths.parent", "child. (paths.Child)"])
    if _isDebugAssertConfiguration() {
        // -Onone: DWARF places the local in its frame, so it is a named root.
        expect(1, stackHeldBytes.0, ["thread 2 › paths.holdOnStack() -> () › local"])
    } else {
        // -O: no location for the local; the frame is scanned word by word and which frame holds
        // the object depends on the optimiser, so any frame of thread 2 matches ("*").
        expect(1, stackHeldBytes.0, ["thread 2 › *", "(paths.StackHeld)"])
    }
    // Five boxes: two hold .node payloads, three hold .leaf payloads.
    func box(_ t: Tree) -> UnsafeRawPointer { UnsafeRawPointer(bitPattern: unsafeBitCast(t, to: UInt.self) & 0x7FFF_FFFF_FFF8)! }
    func item(_ t: Tree) -> Item { if case .leaf(let item) = t { return item }; fatalError() }
    guard case .node(let left, let right) = tree, case .node(let leftLeft, let leftRight) = left else { fatalError() }
    let nodeBox = "$value. (box<(paths.Tree, paths.Tree)>)", leafBox = "$value. (box<paths.Item>)"
    expect(1, chunk(box(tree)), ["paths.tree"])
    expect(1, chunk(box(left)), ["paths.tree", nodeBox])
    expect(1, chunk(box(right)), ["paths.tree", leafBox])
    expect(2, chunk(box(leftLeft)) + chunk(box(leftRight)), ["paths.tree", nodeBox, leafBox])
    expect(1, chunk(item(right)), ["paths.tree", leafBox, "$value. (paths.Item)"])
    expect(2, chunk(item(leftLeft)) + chunk(item(leftRight)), ["paths.tree", nodeBox, leafBox, "$value. (paths.Item)"])
}
printExpectations()

let info = mallinfo2()
print("READY \(info.uordblks) \(info.hblkhd)")
fflush(stdout)
while true { pause() }
