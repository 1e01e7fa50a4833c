// A heap for the jemalloc walk: exact counts of Swift objects, 8-byte malloc blocks between them
// (two to a 16-byte granule), and freed blocks parked in the thread caches of two live threads
// (they must not count). Build it linked with jemalloc (-Xlinker -ljemalloc, libjemalloc.a, or
// run it with LD_PRELOAD=libjemalloc.so.2) or without (glibc).
// Usage: jemalloc NODES ; prints "READY <stats.allocated> <tcache_bytes> <pid>" (0 0 without
// jemalloc's mallctl), then waits.
import Glibc

final class Node {
    let id: Int
    var next: Node?
    var payload: [UInt8]
    init(id: Int, next: Node?) {
        self.id = id
        self.next = next
        payload = [UInt8](repeating: UInt8(truncatingIfNeeded: id), count: 1 + id % 200)
    }
}

final class Parked { var value = 0 }

let nodeCount = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1])! : 1000

print("starting")
fflush(stdout)

// 8-byte blocks, every other one freed into the thread cache; the kept ones sit two to a granule.
var tiny: [UnsafeMutableRawPointer] = (0..<400).map { _ in malloc(8)! }
for index in stride(from: 0, to: tiny.count, by: 2) { free(tiny[index]) }
tiny = stride(from: 1, to: tiny.count, by: 2).map { tiny[$0] }

var head: Node? = nil
for id in 0..<nodeCount { head = Node(id: id, next: head) }

// Large blocks: one in a tcache size class (freed and re-made), one beyond it.
var large = [malloc(20_000)!, malloc(1 << 20)!]
free(malloc(20_000))

// Two threads that allocate, free half (into their own tcaches) and stay alive.
final class Lock {
    var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
}
let lock = Lock()
nonisolated(unsafe) var parked: [Parked] = []
nonisolated(unsafe) var started = 0
var threads: [pthread_t] = []
for _ in 0..<2 {
    var thread = pthread_t()
    pthread_create(&thread, nil, { _ in
        var made = (0..<200).map { _ in Parked() }
        made.removeLast(100)
        pthread_mutex_lock(&lock.mutex)
        parked += made
        started += 1
        pthread_mutex_unlock(&lock.mutex)
        while true { pause() }
    }, nil)
    threads.append(thread)
}
while true {
    pthread_mutex_lock(&lock.mutex)
    let ready = started == 2
    pthread_mutex_unlock(&lock.mutex)
    if ready { break }
    usleep(1000)
}

// jemalloc's own figures, when jemalloc is the allocator: `stats.allocated` counts blocks in the
// thread caches and the caches' stack arrays too.
typealias MallCtl = @convention(c) (UnsafePointer<CChar>, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?,
                                    UnsafeMutableRawPointer?, Int) -> Int32
var allocated = 0, tcacheBytes = 0
if let symbol = dlsym(nil, "mallctl") {
    let mallctl = unsafeBitCast(symbol, to: MallCtl.self)
    var epoch: UInt64 = 1, newEpoch: UInt64 = 1, epochSize = 8, size = 8
    _ = mallctl("epoch", &epoch, &epochSize, &newEpoch, 8)
    _ = mallctl("stats.allocated", &allocated, &size, nil, 0)
    size = 8
    _ = mallctl("stats.arenas.4096.tcache_bytes", &tcacheBytes, &size, nil, 0)
}
print("READY \(allocated) \(tcacheBytes) \(getpid())")
fflush(stdout)
while true { pause() }
