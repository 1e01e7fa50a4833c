// Threads contending Swift's Mutex, a priority-inheritance futex (as the concurrency runtime's and
// libdispatch's own locks are): when a thread waits, the kernel itself writes the lock word. One
// thread holds the lock 100 ms at a time, three others keep asking for it. A capture that made the
// kernel's write fail (EFAULT) would make Mutex trap. Usage: mutexes ; prints "READY", then runs
// until killed.
import Glibc
import Synchronization

final class Shared: @unchecked Sendable {
    let lock = Mutex<Int>(0)
}

let shared = Shared()

var holder = pthread_t()
pthread_create(&holder, nil, { _ in
    while true {
        shared.lock.withLock { count in
            count += 1
            usleep(100_000)
        }
        usleep(500)
    }
}, nil)
for _ in 0..<3 {
    var contender = pthread_t()
    pthread_create(&contender, nil, { _ in
        while true {
            shared.lock.withLock { $0 += 1 }
            usleep(2_000)
        }
    }, nil)
}
usleep(300_000)
print("READY \(shared.lock.withLock { $0 })")
fflush(stdout)
while true { sleep(1) }
