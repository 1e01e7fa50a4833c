// A heap with known contents: the census test counts these objects exactly.
// Usage: census NODES LEAVES [BIG_MIB] ; prints "READY <uordblks> <hblkhd>" then waits.
import Glibc

final class Node {
    let id: Int
    var next: Node?
    var payload: [UInt8]
    init(id: Int, next: Node?) {
        self.id = id
        self.next = next
        self.payload = [UInt8](repeating: UInt8(truncatingIfNeeded: id), count: 64 + id % 7)
    }
}

final class Lock {
    var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    func lock() { pthread_mutex_lock(&mutex) }
    func unlock() { pthread_mutex_unlock(&mutex) }
}
let workersLock = Lock()

final class Leaf<T> {
    var item: T
    init(_ item: T) { self.item = item }
}

class Animal { var legs = 4 }
final class Dog: Animal { var name = "rex" }

let nodeCount = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1])! : 1000
let leafCount = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2])! : 500

// The first print allocates stdout's buffer: do it before measuring.
print("starting")
fflush(stdout)

var head: Node? = nil
for i in 0..<nodeCount { head = Node(id: i, next: head) }
var leaves: [Leaf<Int>] = (0..<leafCount).map { Leaf($0) }
var stringLeaves: [Leaf<String>] = (0..<10).map { Leaf("leaf number \($0) with a long enough name") }
var dogs: [Animal] = (0..<7).map { _ in Dog() }
var counter = 0
// Two captures (a Dog and an Int) force a heap context even at -O.
var closures: [() -> Int] = (0..<5).map { i in
    let dog = dogs[i]
    return { counter += i; return counter + dog.legs }
}
// Plain malloc blocks that are not Swift objects.
var raw: [UnsafeMutableRawPointer] = (0..<100).map { _ in malloc(1000)! }
// Large enough to be mmapped (third argument: MiB, default 1); before the threads, whose arenas
// and stacks are mapped below it, so it is the highest block.
let bigMiB = CommandLine.arguments.count > 3 ? Int(CommandLine.arguments[3])! : 1
var big = [UInt8](repeating: 1, count: bigMiB << 20)
// Objects made on another thread live in that thread's malloc arena.
final class Worker { var id: Int; var data = [Int](repeating: 0, count: 32); init(id: Int) { self.id = id } }
nonisolated(unsafe) var workers: [Worker] = []
let threadCount = 3
var threads: [pthread_t] = []
for t in 0..<threadCount {
    var thread = pthread_t()
    pthread_create(&thread, nil, { arg in
        let base = Int(bitPattern: arg)
        let made = (0..<100).map { Worker(id: base * 1000 + $0) }
        workersLock.lock(); workers += made; workersLock.unlock()
        return nil
    }, UnsafeMutableRawPointer(bitPattern: t + 1))
    threads.append(thread)
}
for thread in threads { pthread_join(thread, nil) }

let info = mallinfo2()
print("READY \(info.uordblks) \(info.hblkhd)")
fflush(stdout)
while true { pause() }
