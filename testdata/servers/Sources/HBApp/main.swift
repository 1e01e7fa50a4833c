// A Hummingbird 2 app for swref's load tests.
//   HBApp [PORT]   listens on 127.0.0.1:PORT (0 or none: a port the kernel picks) and prints
//   "READY <port>" on stdout once listening.
// Routes:
//   GET  /                 hello
//   POST /cache/:key       stores the request body (a ByteBuffer) in `responseCache` under key
//   GET  /cache/:key?size=N stores a generated body of N bytes (default 1024) under key
//   GET  /cache            "<entries> <bytes>"
//   GET  /malloc           the allocator's own in-use figure: "<bytes> <allocator>"
import CAllocatorStats
import ServerCache
import Hummingbird
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A global, so that the cache's path starts at a root swref names from DWARF or the symbol table.
let responseCache = ResponseCache()

let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 0

let router = Router()
router.get("/") { _, _ in "hello\n" }
router.post("/cache/:key") { request, context -> String in
    let key = try context.parameters.require("key")
    var request = request
    let body = try await request.collectBody(upTo: 1 << 20)
    responseCache.store(key, body)
    return "stored \(body.readableBytes)\n"
}
router.get("/cache/:key") { request, context -> String in
    let key = try context.parameters.require("key")
    let size = request.uri.queryParameters.get("size", as: Int.self) ?? 1024
    let body = ByteBuffer(repeating: UInt8(ascii: "a"), count: max(0, min(size, 1 << 20)))
    responseCache.store(key, body)
    return "stored \(body.readableBytes)\n"
}
router.get("/cache") { _, _ -> String in
    let summary = responseCache.summary
    return "\(summary.count) \(summary.bytes)\n"
}
router.get("/malloc") { _, _ -> String in
    "\(servers_allocator_bytes_in_use()) \(String(cString: servers_allocator_name()))\n"
}

var logger = Logger(label: "HBApp")
logger.logLevel = .error
let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: port)),
    onServerRunning: { channel in
        print("READY \(channel.localAddress?.port ?? 0)")
        fflush(stdout)
    },
    logger: logger
)
try await app.runService()
