// Foundation Data held by user code: a cache of whole Data values, and 8-byte slices of one large
// Data that nothing else holds (each slice pins the whole 64 KiB). Prints EXPECT lines like
// testdata/paths, then READY, then waits.
import Foundation
import Glibc

final class Cache { var items: [Int: Data] = [:] }
let cache = Cache()
var slices: [Data] = []

@inline(never) func chunk(_ pointer: UnsafeRawPointer) -> Int { malloc_usable_size(UnsafeMutableRawPointer(mutating: pointer)) + 8 }
/// A Data's storage object: its second word, less the representation's tag bits.
func storage(_ data: Data) -> UnsafeRawPointer {
    let words = unsafeBitCast(data, to: (UInt, UInt).self)
    return UnsafeRawPointer(bitPattern: words.1 & 0x00FF_FFFF_FFFF_FFF8)!
}
func bytes(_ data: Data) -> UnsafeRawPointer { data.withUnsafeBytes { $0.baseAddress! } }

print("starting")
fflush(stdout)
for i in 0..<10 { cache.items[i] = Data(repeating: UInt8(i), count: 1000) }
do {
    let big = Data(repeating: 1, count: 65536)
    for i in 1...4 { slices.append(big[(i * 1000)..<(i * 1000 + 8)]) }
}

@inline(never) func printExpectations() {
    let whole = cache.items.values.reduce(0) { $0 + chunk(storage($1)) + chunk(bytes($1)) }
    // The pinned figure is the storage's capacity, which Data rounds up: matched by prefix ("*").
    print("EXPECT 20 \(whole) datacache.cache|items. (Dictionary<Int, FoundationEssentials.Data>)|$mapval. (Data (Foundation) *")
    let first = slices[0]
    let pinned = chunk(storage(first)) + chunk(bytes(first) - first.startIndex)
    print("EXPECT 2 \(pinned) datacache.slices|[0]. (Data (Foundation) *")
}
printExpectations()
print("READY")
fflush(stdout)
while true { pause() }
