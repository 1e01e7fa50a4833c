// A line-less request server on 127.0.0.1: each request is one write of REQUEST_SIZE bytes whose
// first 8 bytes are the request id. With --cache, the handler keeps an 8-byte readSlice of each
// request in a global cache keyed by id: a small slice that pins the whole receive buffer.
// Prints "READY <port>" once listening; replies "OK" to each request.
import NIOCore
import NIOPosix
import Glibc

final class RequestCache: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var entries: [UInt64: ByteBuffer] = [:]
    init() { pthread_mutex_init(&mutex, nil) }
    func store(_ id: UInt64, _ slice: ByteBuffer) {
        pthread_mutex_lock(&mutex); entries[id] = slice; pthread_mutex_unlock(&mutex)
    }
}

let cache = RequestCache()
let caching = CommandLine.arguments.contains("--cache")

final class Handler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if let head = buffer.readSlice(length: 8) {
            if caching, let id = head.getInteger(at: head.readerIndex, as: UInt64.self) { cache.store(id, head) }
        }
        var reply = context.channel.allocator.buffer(capacity: 2)
        reply.writeString("OK")
        context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(ChannelOptions.backlog, value: 16)
    .childChannelInitializer { $0.pipeline.addHandler(Handler()) }
    .bind(host: "127.0.0.1", port: 0).wait()
print("READY \(channel.localAddress!.port!)")
fflush(stdout)
try channel.closeFuture.wait()
