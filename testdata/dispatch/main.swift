// Work queued on a suspended DispatchQueue: the blocks, not yet run, hold the objects they capture.
// Usage: dispatch N ; prints READY, then waits.
import Dispatch
import Glibc

final class Job { let id: Int; var input = [UInt8](repeating: 5, count: 64); init(id: Int) { self.id = id } }

let count = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1])! : 5
let queue = DispatchQueue(label: "swref.work")
queue.suspend()
var done = 0
@inline(never) func enqueue(_ id: Int) {
    let job = Job(id: id)
    let weight = id * 3
    queue.async { done += job.input.count + weight }  // two captures: a context object per block
}
for id in 0..<count { enqueue(id) }
print("READY \(count)")
fflush(stdout)
while true { pause() }
