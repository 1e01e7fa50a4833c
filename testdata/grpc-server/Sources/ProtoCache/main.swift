// swift-protobuf messages held by globals: a class whose dictionary holds Entry messages (which
// keep their fields in a heap `_StorageClass` object, because Entry is recursive), and an array
// of PutRequest messages (fields inline) that carry unknown fields. Prints, for each kind of heap
// block a global retains, "FIGURE <name> <count> <bytes>" with bytes the sum of glibc chunk sizes
// (malloc_usable_size + 8), all measured from the live objects; then READY, then waits.
import CacheProto
import Foundation
import Glibc
import GRPCNIOTransportHTTP2
import SwiftProtobuf

final class Store { var entries: [Int: Entry] = [:] }
let store = Store()
var small: [PutRequest] = []

for i in 0..<10 {
    var entry = Entry()
    entry.id = UInt64(i)
    entry.payload = Data(repeating: UInt8(i), count: 1000)
    entry.name = "entry\(i)"  // at most 15 UTF-8 bytes: a small string, stored inline
    store.entries[i] = entry
}

// Unknown fields only come from decoding, so each PutRequest is decoded from its own encoding
// followed by a field 9 (length-delimited, 300 bytes) that PutRequest does not declare.
for i in 0..<5 {
    var bytes: [UInt8] = try PutRequest.with {
        $0.id = UInt64(i)
        $0.payload = Data(repeating: UInt8(i), count: 2000)
        $0.tag = "t"
    }.serializedBytes()
    bytes += [9 << 3 | 2, 0xAC, 0x02] + [UInt8](repeating: 0xEE, count: 300)  // tag, varint 300
    let request = try PutRequest(serializedBytes: bytes)
    precondition(!request.unknownFields.data.isEmpty)
    small.append(request)
}

// Raw message bytes as grpc-swift-nio-transport hands them over, kept by user code (as a proxy
// that forwards messages without decoding them would): each is a ByteBuffer of its own.
var raw: [GRPCNIOTransportBytes] = (0..<3).map { _ in GRPCNIOTransportBytes(repeating: 7, count: 3000) }

// glibc's, from <malloc.h>, which the Glibc module does not export (the testdata programs built
// with swiftc get it from testdata/mallinfo.h; a package target has no bridging header).
@_silgen_name("malloc_usable_size") func malloc_usable_size(_ pointer: UnsafeMutableRawPointer?) -> Int
@inline(never) func chunk(_ pointer: UnsafeRawPointer) -> Int { malloc_usable_size(UnsafeMutableRawPointer(mutating: pointer)) + 8 }
/// The object a single-reference value (Array, Dictionary, a class instance) points to.
func object<T>(_ value: T) -> UnsafeRawPointer { unsafeBitCast(value, to: UnsafeRawPointer.self) }
/// A Data's storage object (a __DataStorage): its second word, less the representation's tag bits.
/// Data of 15 bytes up to Int32.max is an InlineSlice: (Range<Int32>, __DataStorage).
func storage(_ data: Data) -> UnsafeRawPointer {
    let words = unsafeBitCast(data, to: (UInt, UInt).self)
    return UnsafeRawPointer(bitPattern: words.1 & 0x00FF_FFFF_FFFF_FFF8)!
}
/// A Data's byte buffer, a malloc block of its own (these Data are not slices: startIndex 0).
func bytes(_ data: Data) -> UnsafeRawPointer { data.withUnsafeBytes { $0.baseAddress! } }
/// Both blocks of a Data.
func dataBlocks(_ data: Data) -> [UnsafeRawPointer] { [storage(data), bytes(data)] }
/// An Entry's `_storage` object: the property is fileprivate to the generated file, but Mirror sees it.
func entryStorage(_ entry: Entry) -> AnyObject {
    Mirror(reflecting: entry).children.first { $0.label == "_storage" }!.value as AnyObject
}
func name(_ pointer: UnsafeRawPointer) -> String {
    String(reflecting: type(of: Unmanaged<AnyObject>.fromOpaque(pointer).takeUnretainedValue()))
}

@inline(never) func figure(_ name: String, _ blocks: [UnsafeRawPointer]) {
    precondition(Set(blocks).count == blocks.count, "\(name): a block counted twice")
    print("FIGURE \(name) \(blocks.count) \(blocks.reduce(0) { $0 + chunk($1) })")
}

@inline(never) func printFigures() {
    let entries = store.entries.values.sorted { $0.id < $1.id }
    let storages = entries.map { Unmanaged.passUnretained(entryStorage($0)).toOpaque() }.map { UnsafeRawPointer($0) }
    figure("store.object", [object(store)])
    figure("store.dictionary", [object(store.entries)])
    figure("store.storage", storages)
    figure("store.payload", entries.flatMap { dataBlocks($0.payload) })
    figure("small.array", [object(small)])
    figure("small.payload", small.flatMap { dataBlocks($0.payload) })
    figure("small.unknown", small.flatMap { dataBlocks($0.unknownFields.data) })
    print("NOTE store.object \(name(object(store)))")
    print("NOTE store.dictionary \(name(object(store.entries)))")
    print("NOTE store.storage \(name(storages[0]))")
    print("NOTE store.payload \(name(storage(entries[0].payload)))")
    print("NOTE small.array \(name(object(small)))")
}

printFigures()
print("READY")
fflush(stdout)
while true { pause() }
