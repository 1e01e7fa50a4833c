// A Vapor 4 app for swref's load tests, with the routes of HBApp.
//   VaporApp [PORT]   listens on 127.0.0.1:PORT (0 or none: a port the kernel picks) and prints
//   "READY <port>" on stdout once listening.
// Routes:
//   GET  /                 hello
//   POST /cache/:key       stores the request body (a ByteBuffer) in `responseCache` under key
//   GET  /cache            "<entries> <bytes>"
//   GET  /malloc           the allocator's own in-use figure: "<bytes> <allocator>"
import CAllocatorStats
import ServerCache
import Vapor

#if canImport(Glibc)
import Glibc
#endif

/// A global, so that the cache's path starts at a root swref names from DWARF or the symbol table.
let responseCache = ResponseCache()

let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 0

// The environment's own arguments, not the process's: Vapor would read PORT as a command.
var environment = Environment(name: "production", arguments: ["VaporApp"])
let app = try await Application.make(environment)
app.logger.logLevel = .error
app.get { _ in "hello\n" }
app.on(.POST, "cache", ":key", body: .collect(maxSize: "1mb")) { request -> String in
    let key = request.parameters.get("key") ?? ""
    let body = request.body.data ?? ByteBuffer()
    responseCache.store(key, body)
    return "stored \(body.readableBytes)\n"
}
app.get("cache") { _ -> String in
    let summary = responseCache.summary
    return "\(summary.count) \(summary.bytes)\n"
}
app.get("malloc") { _ -> String in
    "\(servers_allocator_bytes_in_use()) \(String(cString: servers_allocator_name()))\n"
}

try await app.asyncBoot()
try await app.server.start(address: .hostname("127.0.0.1", port: port))
print("READY \(app.http.server.shared.localAddress?.port ?? 0)")
fflush(stdout)
// Serves until killed.
while true { try await Task.sleep(nanoseconds: 3_600_000_000_000) }
