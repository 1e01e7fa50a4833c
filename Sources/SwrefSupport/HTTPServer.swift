import Glibc

/// A small HTTP/1.1 server on Glibc sockets for `swref serve`: one request per connection, served
/// in turn on the calling thread. A client gets a bounded request size and a deadline for sending
/// it and reading the reply, so a slow or silent client delays the others by seconds at most and
/// never blocks the server.
public final class HTTPServer {
    public struct Request {
        public var method: String
        /// Without the query string.
        public var path: String
        public var query: String
        /// Lower-cased names.
        public var headers: [String: String]
    }

    public struct Response {
        public var status: Int
        public var contentType: String
        public var body: [UInt8]
        public var headers: [(String, String)] = []

        public init(status: Int, contentType: String = "text/plain; charset=utf-8", body: [UInt8], headers: [(String, String)] = []) {
            self.status = status
            self.contentType = contentType
            self.body = body
            self.headers = headers
        }

        public static func text(_ status: Int, _ text: String) -> Response {
            Response(status: status, body: Array(text.utf8))
        }
    }

    public static let maxRequestBytes = 16 * 1024
    /// Time a client has to send its request, and then (from when the reply is ready) to take it.
    public var clientTimeoutMilliseconds: Int32 = 5000

    private let listener: Int32
    /// The port bound (the kernel's choice when 0 was asked for).
    public let port: UInt16
    public let host: String
    /// When set, every request must carry `Authorization: Bearer TOKEN`.
    public var bearerToken: String?

    /// Binds and listens on `host` (an IPv4 address) and `port`.
    public init(host: String, port: UInt16) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw SwrefError.invalidInput("\(host): not an IPv4 address") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SwrefError.system("socket", errno: errno, "listening on \(host):\(port)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            let error = errno
            close(fd)
            throw SwrefError.system("bind", errno: error, "listening on \(host):\(port)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        self.port = UInt16(bigEndian: actual.sin_port)
        self.host = host
    }

    deinit { close(listener) }

    /// Whether `host` is a loopback address (127.0.0.0/8).
    public static func isLoopback(_ host: String) -> Bool {
        var address = in_addr()
        guard inet_pton(AF_INET, host, &address) == 1 else { return false }
        return UInt32(bigEndian: address.s_addr) >> 24 == 127
    }

    /// Serves until `stop` returns true (checked at least every `tick` milliseconds); `idle` runs
    /// on every tick without a request.
    public func serve(tick: Int32 = 1000, stop: () -> Bool = { false }, idle: () -> Void = {},
                      handler: (Request) -> Response) {
        while !stop() {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, tick)
            if ready <= 0 { idle(); continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            handle(client, handler)
            close(client)
        }
    }

    private func handle(_ client: Int32, _ handler: (Request) -> Response) {
        let deadline = monotonicNanoseconds() + UInt64(clientTimeoutMilliseconds) * 1_000_000
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var headerEnd: Int? = nil
        while headerEnd == nil {
            guard wait(client, for: Int16(POLLIN), until: deadline) else { return }
            let n = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n > 0 else { return }
            buffer += chunk[0..<n]
            headerEnd = HTTPServer.endOfHeaders(buffer)
            if headerEnd == nil && buffer.count > HTTPServer.maxRequestBytes {
                send(client, .text(431, "request too large\n"), deadline: deadline)
                return
            }
        }
        guard let request = HTTPServer.parse(buffer[..<headerEnd!]) else {
            send(client, .text(400, "bad request\n"), deadline: deadline)
            return
        }
        if let bearerToken, !HTTPServer.sameToken(request.headers["authorization"] ?? "", "Bearer " + bearerToken) {
            send(client, Response(status: 401, body: Array("a bearer token is required\n".utf8),
                                  headers: [("WWW-Authenticate", "Bearer")]), deadline: deadline)
            return
        }
        guard request.method == "GET" || request.method == "HEAD" else {
            send(client, Response(status: 405, body: Array("GET only\n".utf8), headers: [("Allow", "GET, HEAD")]), deadline: deadline)
            return
        }
        var response = handler(request)
        if request.method == "HEAD" {
            response.headers.append(("Content-Length", "\(response.body.count)"))
            response.body = []
        }
        // The client's time to take the reply starts now: a capture in the handler may have taken longer.
        send(client, response, deadline: monotonicNanoseconds() + UInt64(clientTimeoutMilliseconds) * 1_000_000)
    }

    /// Compares in time that depends on the length only, so a remote client cannot find the token
    /// byte by byte.
    static func sameToken(_ given: String, _ expected: String) -> Bool {
        let a = Array(given.utf8), b = Array(expected.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    static func endOfHeaders(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4) where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }

    static func parse(_ head: ArraySlice<UInt8>) -> Request? {
        let lines = String(decoding: head, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        let parts = lines.first?.split(separator: " ") ?? []
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1."), parts[1].hasPrefix("/") else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" })
        }
        let target = parts[1]
        let question = target.firstIndex(of: "?")
        return Request(method: String(parts[0]), path: String(target[..<(question ?? target.endIndex)]),
                       query: question.map { String(target[target.index(after: $0)...]) } ?? "", headers: headers)
    }

    private func wait(_ fd: Int32, for events: Int16, until deadline: UInt64) -> Bool {
        while true {
            let now = monotonicNanoseconds()
            guard now < deadline else { return false }
            var poller = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&poller, 1, Int32(min((deadline - now) / 1_000_000 + 1, 60_000)))
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { return false }
        }
    }

    private static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 431: return "Request Header Fields Too Large"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }

    /// Writes the reply; gives up at the deadline (a client that does not read).
    private func send(_ client: Int32, _ response: Response, deadline: UInt64) {
        var head = "HTTP/1.1 \(response.status) \(HTTPServer.reason(response.status))\r\nContent-Type: \(response.contentType)\r\n"
        if !response.headers.contains(where: { $0.0 == "Content-Length" }) { head += "Content-Length: \(response.body.count)\r\n" }
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        head += "Connection: close\r\n\r\n"
        let bytes = Array(head.utf8) + response.body
        var sent = 0
        while sent < bytes.count {
            guard wait(client, for: Int16(POLLOUT), until: deadline) else { return }
            // MSG_NOSIGNAL: a client gone away must not raise SIGPIPE in swref.
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n > 0 else { return }
            sent += n
        }
        shutdown(client, Int32(SHUT_WR))
    }
}
