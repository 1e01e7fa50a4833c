// Builds a known heap, prints READY, then dies by SIGABRT so the kernel writes a core.
// Usage: crash NODES
import Glibc

final class Node {
    let id: Int
    var next: Node?
    var payload: [UInt8]
    init(id: Int, next: Node?) {
        self.id = id
        self.next = next
        payload = [UInt8](repeating: 1, count: 32)
    }
}

let count = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1])! : 1000
var head: Node? = nil
for i in 0..<count { head = Node(id: i, next: head) }
print("READY \(count)")
fflush(stdout)
abort()
