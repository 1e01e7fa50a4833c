// A private static array of tuples beside one-byte statics, as NIOHPACK's Huffman decoder table
// sits in the binary: swiftc wraps the array's type in an anonymous struct in DWARF, and a global
// of one byte just before it once claimed a whole word, hiding the array's reference from every
// root — the table was reported leaked on every gRPC server that had decoded a header.
// Usage: statics ; prints "READY <sum>" then waits.
import Glibc

struct Flags: OptionSet {
    let rawValue: UInt8
    static let none = Flags([])
    static let accepted = Flags(rawValue: 1)
}

typealias Entry = (state: UInt8, flags: Flags, sym: UInt8)

struct Table {
    private static let raw: [Entry] = (0..<4000).map { (UInt8(truncatingIfNeeded: $0), Flags.accepted, UInt8(truncatingIfNeeded: $0 &* 3)) }
    static func entry(_ index: Int) -> Entry { raw[index % raw.count] }
}

var sum = 0
for index in 0..<10 { sum += Int(Table.entry(index).sym) }
print("READY \(sum)")
fflush(stdout)
while true { pause() }
