// A heap with known contents under whichever allocator serves malloc (glibc, jemalloc linked,
// static or preloaded, mimalloc or tcmalloc preloaded): the allocator tests count these objects
// exactly under every one, and compare swref's total with the allocator's own figure.
// Usage: allocators [SESSIONS] [exit] [clean] ; prints "READY <allocator> <bytes in use>" then
// waits, or with `exit` exits (for `swref run`); `clean` makes no retain cycles.
import Glibc

final class Item {
    let id: Int
    var payload: [UInt8]
    init(id: Int) {
        self.id = id
        payload = [UInt8](repeating: UInt8(truncatingIfNeeded: id), count: 200 + id % 300)
    }
}

final class Session {
    var name: String
    var items: [Item]
    init(id: Int) {
        name = "session number \(id) with a name too long to be inline"
        items = (0..<8).map { Item(id: id * 8 + $0) }
    }
}

/// Made and dropped by the hundred thousand: none of them may be counted.
final class Freed {
    var value: Int
    init(_ value: Int) { self.value = value }
}

/// Retain cycles: each pair is leaked.
final class CycleA { var other: CycleB? }
final class CycleB { var other: CycleA? }

/// Made on other threads, which stay alive with their own arenas or caches.
final class Worker {
    let id: Int
    var data = [Int](repeating: 0, count: 24)
    init(id: Int) { self.id = id }
}

final class Lock {
    var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    func locked<T>(_ body: () -> T) -> T { pthread_mutex_lock(&mutex); defer { pthread_mutex_unlock(&mutex) }; return body() }
}

let sessionCount = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1])! : 2000
print("starting", swref_test_allocator().map { String(cString: $0) } ?? "?")
fflush(stdout)

var sessions: [Session] = (0..<sessionCount).map { Session(id: $0) }
do {
    var dropped: [Freed] = (0..<100_000).map { Freed($0) }
    dropped.removeAll()
}
// Held in a global while the links are made, so that the optimizer cannot keep them on the stack.
let clean = CommandLine.arguments.contains("clean")
nonisolated(unsafe) var cycles: [CycleA] = (0..<(clean ? 0 : 40)).map { _ in CycleA() }
for a in cycles {
    let b = CycleB()
    a.other = b
    b.other = a
}
cycles.removeAll()

let lock = Lock()
nonisolated(unsafe) var workers: [Worker] = []
nonisolated(unsafe) var workerBytes: UInt64 = 0
let threadCount = 4
var ready = sem_t()
sem_init(&ready, 0, 0)
var park = sem_t()
sem_init(&park, 0, 0)
var threads: [pthread_t] = []
for t in 0..<threadCount {
    var thread = pthread_t()
    pthread_create(&thread, nil, { arg in
        let base = Int(bitPattern: arg)
        let made = (0..<250).map { Worker(id: base * 1000 + $0) }
        // Some garbage of this thread's own, freed into its cache.
        var garbage = (0..<2000).map { Freed($0) }
        garbage.removeAll()
        lock.locked { workers += made }
        swref_test_flush_thread_cache()
        let mine = swref_test_mimalloc_thread_bytes()
        lock.locked { workerBytes += mine }
        sem_post(&ready)
        // Parked, alive: its arena or cache stays as it is.
        while true { sem_wait(&park) }
    }, UnsafeMutableRawPointer(bitPattern: t + 1))
    threads.append(thread)
}
for _ in 0..<threadCount { sem_wait(&ready) }

swref_test_flush_thread_cache()
let mainBytes = swref_test_mimalloc_thread_bytes()
let inUse = swref_test_bytes_in_use() + mainBytes + workerBytes
print("READY \(String(cString: swref_test_allocator())) \(inUse)")
fflush(stdout)
if CommandLine.arguments.contains("exit") { exit(0) }
while true { pause() }
