// A gRPC server and client for the Cache service of proto/cache.proto, over plaintext HTTP/2.
//
//   GRPCCacheServer serve [--cache]                    prints "READY <port>" once bound, serves forever
//   GRPCCacheServer client <port> <count> <payloadBytes>   sends count Puts one at a time
//   GRPCCacheServer load <port> <seconds> <streams> <payloadBytes> <keys>
//                      Puts on `streams` concurrent tasks for `seconds`, ids cycling through `keys`;
//                      prints "LOAD <requests> <errors>" and exits 1 if any failed
//
// With --cache, the server keeps every PutRequest message it receives in the global `cache`, so
// the requests' payloads stay reachable from a global of this module for swref to find.
import CacheProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2

final class RequestCache: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var entries: [UInt64: PutRequest] = [:]
    init() { pthread_mutex_init(&mutex, nil) }
    func store(_ request: PutRequest) {
        pthread_mutex_lock(&mutex); entries[request.id] = request; pthread_mutex_unlock(&mutex)
    }
}

let cache = RequestCache()

struct CacheService: Cache.SimpleServiceProtocol {
    let caching: Bool
    func put(request: PutRequest, context: ServerContext) async throws -> PutReply {
        if caching { cache.store(request) }
        return PutReply.with { $0.id = request.id }
    }
}

func serve(caching: Bool) async throws {
    let server = GRPCServer(
        transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext),
        services: [CacheService(caching: caching)]
    )
    try await withThrowingDiscardingTaskGroup { group in
        group.addTask { try await server.serve() }
        // The port is only known once the transport has bound; a failed bind returns nil here and
        // the error surfaces from serve().
        if let port = try await server.listeningAddress?.ipv4?.port {
            print("READY \(port)")
            fflush(stdout)
        }
    }
}

func client(port: Int, count: Int, payloadBytes: Int) async throws {
    try await withGRPCClient(
        transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
    ) { client in
        let service = Cache.Client(wrapping: client)
        let payload = Data(repeating: 0xAB, count: payloadBytes)
        for id in 0..<UInt64(count) {
            let reply = try await service.put(PutRequest.with { $0.id = id; $0.payload = payload; $0.tag = "t" })
            guard reply.id == id else { throw RPCError(code: .internalError, message: "reply \(reply.id) to Put \(id)") }
        }
    }
}

/// Load for swref's tests (wrk speaks no gRPC): unary Puts as fast as the server answers.
func load(port: Int, seconds: Int, streams: Int, payloadBytes: Int, keys: Int) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    let (requests, errors) = try await withGRPCClient(
        transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
    ) { client in
        let service = Cache.Client(wrapping: client)
        let payload = Data(repeating: 0xCD, count: payloadBytes)
        return await withTaskGroup(of: (Int, Int).self) { group in
            for stream in 0..<streams {
                group.addTask {
                    var sent = 0, failed = 0
                    var id = UInt64(stream)
                    while ContinuousClock.now < deadline {
                        do {
                            let reply = try await service.put(PutRequest.with { $0.id = id % UInt64(keys); $0.payload = payload; $0.tag = "load" })
                            if reply.id != id % UInt64(keys) { failed += 1 }
                        } catch {
                            failed += 1
                        }
                        sent += 1
                        id += UInt64(streams)
                    }
                    return (sent, failed)
                }
            }
            var total = (0, 0)
            for await (sent, failed) in group { total = (total.0 + sent, total.1 + failed) }
            return total
        }
    }
    print("LOAD \(requests) \(errors)")
    if errors > 0 { exit(1) }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("GRPCCacheServer: \(message)\n".utf8))
    exit(1)
}

let arguments = CommandLine.arguments.dropFirst()
do {
    switch arguments.first {
    case "serve":
        try await serve(caching: arguments.contains("--cache"))
    case "client":
        let numbers = arguments.dropFirst().compactMap { Int($0) }
        guard numbers.count == 3 else { fail("usage: client <port> <count> <payloadBytes>") }
        try await client(port: numbers[0], count: numbers[1], payloadBytes: numbers[2])
    case "load":
        let numbers = arguments.dropFirst().compactMap { Int($0) }
        guard numbers.count == 5, numbers[4] > 0 else { fail("usage: load <port> <seconds> <streams> <payloadBytes> <keys>") }
        try await load(port: numbers[0], seconds: numbers[1], streams: numbers[2], payloadBytes: numbers[3], keys: numbers[4])
    default:
        fail("usage: serve [--cache] | client <port> <count> <payloadBytes> | load <port> <seconds> <streams> <payloadBytes> <keys>")
    }
} catch {
    fail("\(error)")
}
