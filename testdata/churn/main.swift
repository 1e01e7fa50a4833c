// A heap that changes under swref: a thread keeps swapping objects between random slots of two
// arrays, so a copy that is not one instant in time finds some objects in two slots and others in
// none (then they look leaked). Usage: churn COUNT ; prints "READY <uordblks> <hblkhd>" then swaps
// until killed.
import Glibc

final class Payload {
    let id: Int
    init(id: Int) { self.id = id }
}

let count = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1])! : 50_000

// The first print allocates stdout's buffer: do it before measuring.
print("starting")
fflush(stdout)

var left = (0..<count / 2).map { Payload(id: $0) }
var right = (count / 2..<count).map { Payload(id: $0) }

// The kernel may split the main heap's mapping in several (a write-tracked heap that was written
// to was in eleven): split it here, in three, so that swref has to read the pieces as one heap.
let heapEnd = UInt(bitPattern: sbrk(0)) & ~UInt(4095)
madvise(UnsafeMutableRawPointer(bitPattern: heapEnd - 64 * 1024), 16 * 1024, MADV_NOHUGEPAGE)

var mover = pthread_t()
pthread_create(&mover, nil, { _ in
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    var swaps = 0
    while true {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        let i = Int(state % UInt64(left.count)), j = Int((state >> 32) % UInt64(right.count))
        swap(&left[i], &right[j])
        swaps += 1
        if swaps % 4096 == 0 { sched_yield() }
    }
}, nil)

let info = mallinfo2()
print("READY \(info.uordblks) \(info.hblkhd)")
fflush(stdout)
while true { pause() }
