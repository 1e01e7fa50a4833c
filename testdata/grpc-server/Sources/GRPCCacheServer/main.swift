// A gRPC server and client for the Cache service of proto/cache.proto, over plaintext HTTP/2.
//
//   GRPCCacheServer serve [--cache]                    prints "READY <port>" once bound, serves forever
//   GRPCCacheServer client <port> <count> <payloadBytes>   sends count Puts one at a time
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
    default:
        fail("usage: serve [--cache] | client <port> <count> <payloadBytes>")
    }
} catch {
    fail("\(error)")
}
