// Objects held only through stdlib atomics: a `Mutex<Held?>` and an `Atomic<Unmanaged<Cached>?>`
// (retained by hand, the way a date cache keeps its current value). Reflection cannot lay out
// their raw storage; swref must still read it as references, or these objects look leaked.
// Prints READY, then waits.
import Glibc
import Synchronization

final class Held { var bytes = [UInt8](repeating: 1, count: 64) }
final class Cached { var text = "Fri, 04 Dec 2026 14:00:00 GMT, longer than inline" }
final class Owner {
    let lock = Mutex<Held?>(Held())
    let counter = Atomic<Int>(0)
    let current = Atomic<Unmanaged<Cached>?>(Unmanaged.passRetained(Cached()))
}

let owners = (0..<3).map { _ in Owner() }
print("READY")
fflush(stdout)
while true { sleep(100) }
