// A small HTTP/1.1 server for the fleet tests (swref serve, swref watch) under wrk: plain sockets,
// a thread per connection, keep-alive. With --grow every GET adds an entry to `mockCache` (the
// leak that grows with load); `stableTable` is filled once at start and never changes.
// Prints `READY <port>` once it listens on 127.0.0.1 (port 0: the kernel's choice).
import Foundation
import Glibc

final class Entry {
    let id: Int
    let payload: [UInt8]
    init(id: Int, size: Int) { self.id = id; payload = [UInt8](repeating: UInt8(truncatingIfNeeded: id), count: size) }
}

final class MockCache {
    let lock = NSLock()
    var entries: [Entry] = []
    func add(_ entry: Entry) { lock.lock(); entries.append(entry); lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return entries.count }
}

final class StableTable { var rows: [Int: Entry] = [:] }

let grow = CommandLine.arguments.contains("--grow")
let mockCache = MockCache()
let stableTable = StableTable()
for i in 0..<2000 { stableTable.rows[i] = Entry(id: i, size: 256) }

func handle(_ fd: Int32) {
    defer { close(fd) }
    var pending: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return }
        pending += buffer[0..<n]
        // Requests without bodies (wrk's GETs): each ends at an empty line.
        while let end = pending.indices.dropLast(3).first(where: { pending[$0] == 13 && pending[$0 + 1] == 10 && pending[$0 + 2] == 13 && pending[$0 + 3] == 10 }) {
            pending.removeSubrange(0...(end + 3))
            if grow { mockCache.add(Entry(id: mockCache.count, size: 512)) }
            // Simulated work: 4 ms per request keeps the growth in step with time (about 250 entries a
            // second per connection) and the heap small enough for a debug swref to capture in a second.
            usleep(4000)
            let body = "ok \(grow ? mockCache.count : stableTable.rows.count)\n"
            let reply = Array("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nContent-Type: text/plain\r\n\r\n\(body)".utf8)
            var sent = 0
            while sent < reply.count {
                let w = reply[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if w <= 0 { return }
                sent += w
            }
        }
    }
}

let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
var one: Int32 = 1
setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
var address = sockaddr_in()
address.sin_family = sa_family_t(AF_INET)
address.sin_port = UInt16(Int(CommandLine.arguments.dropFirst().first { Int($0) != nil } ?? "0")!).bigEndian
address.sin_addr.s_addr = inet_addr("127.0.0.1")
let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
precondition(bound == 0 && listen(listener, 128) == 0, "bind/listen failed: errno \(errno)")
var length = socklen_t(MemoryLayout<sockaddr_in>.size)
_ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
print("READY \(UInt16(bigEndian: address.sin_port))")
fflush(stdout)
while true {
    let client = accept(listener, nil, nil)
    if client < 0 { continue }
    Thread.detachNewThread { handle(client) }
}
