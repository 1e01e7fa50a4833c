// Benchmark target: a Dictionary of class instances of a chosen size, and a heartbeat thread
// that ticks every millisecond and prints "GAP <microseconds>" whenever a tick came late,
// which is how the benchmark measures the pause the target observed.
// Usage: bench OBJECTS PAYLOAD_BYTES [--write] [--no-heartbeat]   (--write keeps mutating the heap;
// --no-heartbeat keeps the heap still, for tests that compare captures)
import Glibc

final class Record {
    let id: Int
    var payload: [UInt8]
    var next: Record?
    init(id: Int, payload: Int) {
        self.id = id
        self.payload = payload > 0 ? [UInt8](repeating: UInt8(truncatingIfNeeded: id), count: payload) : []
    }
}

let count = Int(CommandLine.arguments[1]) ?? 1_000_000
let payload = Int(CommandLine.arguments[2]) ?? 0
let keepWriting = CommandLine.arguments.contains("--write")
let heartbeatOn = !CommandLine.arguments.contains("--no-heartbeat")

print("starting")
fflush(stdout)

var table: [Int: Record] = [:]
table.reserveCapacity(count)
for i in 0..<count {
    let record = Record(id: i, payload: payload)
    record.next = table[i - 1]
    table[i] = record
}

func now() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1_000_000 + ts.tv_nsec / 1000
}

var heartbeat = pthread_t()
if heartbeatOn { pthread_create(&heartbeat, nil, { _ in
    var last = now()
    while true {
        usleep(1000)
        let t = now()
        if t - last > 3000 {
            print("GAP \(t - last)")
            fflush(stdout)
        }
        last = t
    }
}, nil) }

print("READY \(count)")
fflush(stdout)
var round = 0
while true {
    if keepWriting {
        // Replace a slice of the records continuously: the heap keeps changing under swref.
        for i in 0..<1000 {
            let key = (round * 1000 + i) % count
            table[key] = Record(id: key, payload: payload)
        }
        round += 1
        usleep(1000)
    } else {
        pause()
    }
}
