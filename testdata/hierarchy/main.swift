// Class hierarchies whose every level has stored properties: three levels, a generic three-level
// chain, four levels, and `C: B: A` with one Int each. Instances are kept in globals; each
// inherited field holds an object of a type of its own, so a profile shows whether the field was
// laid out (a path through its name) or only found by a conservative scan (`$sub_objects$`).
// Arrays are built at run time: an -O build makes literals static, outside the heap.
// Prints READY, then waits.
import Glibc

final class Sock { var fd: Int32 = 3 }
class Base {
    let socket: Sock
    var name: String
    init(_ index: Int) {
        socket = Sock()
        name = "connection-\(index)-with-a-name-longer-than-fifteen-bytes"
    }
}
class Mid: Base { var pending: [String] = (0..<2).map { "queued request \($0), not inline" } }
final class Derived: Mid { var extra: [Int] = Array(0..<3) }

final class Payload { var bytes = [UInt8](repeating: 7, count: 40) }
class GenericBase<T> {
    let item: T
    var label = "generic"
    init(_ item: T) { self.item = item }
}
class GenericMid<T>: GenericBase<T> { var items: [T] = [] }
final class GenericDerived<T>: GenericMid<T> { var tail: [Int] = Array(4..<7) }

final class Tag1 {}
final class Tag2 {}
final class Tag4 {}
class Level1 { var first = Tag1() }
class Level2: Level1 { var second = Tag2() }
class Level3: Level2 { var third: [Int] = Array(7..<9) }
final class Level4: Level3 { var fourth = Tag4() }

class A { var a = 1 }
class B: A { var b = 2 }
final class C: B { var c = 3 }

let connections: [Derived] = (0..<8).map { Derived($0) }
let generics: [GenericDerived<Payload>] = (0..<4).map { _ in
    let object = GenericDerived(Payload())
    object.items = [Payload()]
    return object
}
let deep: [Level4] = (0..<4).map { _ in Level4() }
let plain: [C] = (0..<4).map { _ in C() }


print("READY")
fflush(stdout)
while true { sleep(100) }
