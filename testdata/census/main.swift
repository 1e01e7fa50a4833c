// A heap with known contents: the census test counts these objects exactly.
// Usage: census NODES LEAVES ; prints "READY <uordblks> <hblkhd>" then waits.
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
var closures: [() -> Int] = (0..<5).map { i in { counter += i; return counter + (head?.id ?? 0) } }
// Plain malloc blocks that are not Swift objects.
var raw: [UnsafeMutableRawPointer] = (0..<100).map { _ in malloc(1000)! }
// Large enough to be mmapped.
var big = [UInt8](repeating: 1, count: 1 << 20)

let info = mallinfo2()
print("READY \(info.uordblks) \(info.hblkhd)")
fflush(stdout)
while true { pause() }
