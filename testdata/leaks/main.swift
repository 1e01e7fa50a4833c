// Leaks and non-leaks with known shapes.
// Usage: leaks leaky|clean [wait|exit N]
//   leaky: builds the leaks below (and the clean constructs), printing one line per leak shape:
//          "EXPECT-LEAK <instances> <kind> <objects each> <bytes each> <shape>"
//   clean: only the constructs that must not be called leaks.
//   wait (default): print READY and wait; exit N: return from main with status N.
import Dispatch
import Foundation
import Glibc

@inline(never) func chunk(_ object: AnyObject) -> Int { malloc_usable_size(Unmanaged.passUnretained(object).toOpaque()) + 8 }
func arrayChunk<T>(_ array: [T]) -> Int { array.withUnsafeBufferPointer { malloc_usable_size(UnsafeMutableRawPointer(mutating: $0.baseAddress!) - 32) + 8 } }
/// The side table an object gets once it is weakly referenced (48-byte block).
@inline(never) func sideTableChunk(_ object: AnyObject) -> Int {
    let word = UnsafeRawPointer(Unmanaged.passUnretained(object).toOpaque()).load(fromByteOffset: 8, as: UInt64.self)
    guard word >> 62 == 0b11 else { return 0 }
    return malloc_usable_size(UnsafeMutableRawPointer(bitPattern: UInt((word & 0x3FFF_FFFF_FFFF_FFFF) << 3))) + 8
}

// MARK: Leaks

final class Leaky { var other: Leaky? }
final class Parent { var child: Child? }
final class Child { var parent: Parent? }
final class RingA { var next: RingB? }
final class RingB { var next: RingC? }
final class RingC { var next: RingA? }
final class Handler {
    var callback: (() -> Void)?
    var fired = 0
    func arm() { callback = { self.fired += 1 } }
}
final class Orphan { var payload = [UInt8](repeating: 9, count: 200) }

func expectLeak(_ instances: Int, _ kind: String, _ objects: Int, _ bytes: Int, _ shape: String) {
    print("EXPECT-LEAK \(instances) \(kind) \(objects) \(bytes) \(shape)")
}

@inline(never) func makeLeaks() {
    var bytes = 0
    for _ in 0..<40 {
        let a = Leaky(), b = Leaky()
        a.other = b
        b.other = a
        bytes = chunk(a) + chunk(b)
    }
    expectLeak(40, "cycle", 2, bytes, "leaks.Leaky.other → leaks.Leaky.other → leaks.Leaky")
    for _ in 0..<5 {
        let parent = Parent(), child = Child()
        parent.child = child
        child.parent = parent
        bytes = chunk(parent) + chunk(child)
    }
    expectLeak(5, "cycle", 2, bytes, "leaks.Child.parent → leaks.Parent.child → leaks.Child")
    for _ in 0..<3 {
        let a = RingA(), b = RingB(), c = RingC()
        a.next = b; b.next = c; c.next = a
        bytes = chunk(a) + chunk(b) + chunk(c)
    }
    expectLeak(3, "cycle", 3, bytes, "leaks.RingA.next → leaks.RingB.next → leaks.RingC.next → leaks.RingA")
    do {
        let handler = Handler()
        handler.arm()
        expectLeak(1, "cycle", 1, chunk(handler), "leaks.Handler.callback → leaks.Handler")
    }
    do {
        let orphan = Orphan()
        _ = Unmanaged.passRetained(orphan)   // a +1 nobody will release: leaked, in no cycle
        expectLeak(1, "leak", 2, chunk(orphan) + arrayChunk(orphan.payload), "leaks.Orphan")
    }
}

// MARK: Not leaks

final class Delegating { var delegate: Owner? }
final class Owner {
    var helper = Delegating()
    var back: Backed?
    init() { helper.delegate = nil }
}
final class WeakChild { weak var owner: WeakOwner? }
final class WeakOwner {
    let child = WeakChild()
    init() { child.owner = self }
}
final class UnownedChild {
    unowned let owner: UnownedOwner
    init(owner: UnownedOwner) { self.owner = owner }
}
final class UnownedOwner {
    var child: UnownedChild?
    init() { child = UnownedChild(owner: self) }
}
final class Backed { var id = 1 }
final class Registry {
    static let shared = Registry()
    var entries = [String: Backed]()
}
final class OnStack { var payload = [Int](repeating: 3, count: 20) }

var weakOwners = (0..<10).map { _ in WeakOwner() }
var unownedOwners = (0..<10).map { _ in UnownedOwner() }
var table: [Int: Backed] = Dictionary(uniqueKeysWithValues: (0..<50).map { ($0, Backed()) })

func useFoundationAndDispatch() {
    Registry.shared.entries["a"] = Backed()
    let group = DispatchGroup()
    let queue = DispatchQueue(label: "swref.test", attributes: .concurrent)
    final class Results: @unchecked Sendable { var counts = [Int](repeating: 0, count: 8); let lock = NSLock() }
    let results = Results()
    for i in 0..<8 {
        queue.async(group: group) {
            let data = Data(repeating: UInt8(i), count: 1000)
            let text = String(decoding: try! JSONEncoder().encode(["n": i, "size": data.count]), as: UTF8.self)
            results.lock.lock(); results.counts[i] = text.count; results.lock.unlock()
        }
    }
    group.wait()
    _ = Date().timeIntervalSince1970
    _ = URL(fileURLWithPath: "/tmp").appendingPathComponent("x").path
}

var ready = false
var mutex = pthread_mutex_t()
var condition = pthread_cond_t()
pthread_mutex_init(&mutex, nil)
pthread_cond_init(&condition, nil)
@_optimize(none) func holdOnStack() {
    let local = OnStack()
    pthread_mutex_lock(&mutex)
    ready = true
    pthread_cond_signal(&condition)
    pthread_mutex_unlock(&mutex)
    while true { _ = withExtendedLifetime(local) { pause() } }
}

print("starting")
fflush(stdout)
let mode = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "clean"
if mode == "leaky" { makeLeaks() }
useFoundationAndDispatch()
var thread = pthread_t()
pthread_create(&thread, nil, { _ in holdOnStack(); return nil }, nil)
pthread_mutex_lock(&mutex)
while !ready { pthread_cond_wait(&condition, &mutex) }
pthread_mutex_unlock(&mutex)

print("READY")
fflush(stdout)
if CommandLine.arguments.count > 3 && CommandLine.arguments[2] == "exit" {
    exit(Int32(CommandLine.arguments[3])!)
}
while true { pause() }
