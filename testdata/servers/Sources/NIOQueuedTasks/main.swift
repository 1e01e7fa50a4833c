// Tasks waiting in a SwiftNIO event loop's queue (`SelectableEventLoop._immediateTasks`, a
// swift-collections Deque): the loop's thread is held inside the first task, so the next ones stay
// queued, each closure capturing a `Queued`. Only the queue holds them.
//   NIOQueuedTasks [N]   queues N tasks (default 10), prints "READY N", then waits.
import Glibc
import NIOCore
import NIOPosix

final class Queued {
    let id: Int
    init(id: Int) { self.id = id }
}

let count = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 10
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let loop = group.next()

// The loop's thread stays in this task for good; the semaphore says it got there (a pointer:
// a global passed inout to two threads at once trips the exclusivity check).
let started = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
sem_init(started, 0, 0)
loop.execute {
    sem_post(started)
    while true { pause() }
}
while sem_wait(started) != 0 {}

for i in 0..<count {
    let queued = Queued(id: i)
    loop.execute { if queued.id < 0 { print(queued.id) } }
}
print("READY \(count)")
fflush(stdout)
while true { pause() }
