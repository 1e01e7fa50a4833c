import Glibc

/// One HTTP/1.1 request to 127.0.0.1 on its own connection, read to the end: what the benchmark
/// and the tests ask `swref serve` and the test servers. Not a general client (no TLS, no
/// redirects, no chunked decoding: the servers it talks to send `Connection: close` replies).
public enum LoopbackHTTP {
    public static func request(port: Int, path: String, method: String = "GET", headers: [String: String] = [:],
                               body: String = "", timeoutSeconds: Int = 60) throws -> (status: Int, body: String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SwrefError.system("socket", errno: errno, "connecting to port \(port)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw SwrefError.system("connect", errno: errno, "connecting to port \(port)") }
        let request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + headers.map { "\($0.key): \($0.value)\r\n" }.joined()
            + (body.isEmpty ? "" : "Content-Length: \(body.utf8.count)\r\n") + "\r\n" + body
        try Array(request.utf8).withUnsafeBytes { try FileAccess.writeAll(fd, $0, path: "127.0.0.1:\(port)") }
        var reply = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { raw in retryingOnInterrupt { read(fd, raw.baseAddress, raw.count) } }
            if n <= 0 { break }
            reply.append(contentsOf: chunk[0..<n])
        }
        let text = String(decoding: reply, as: UTF8.self)
        guard let end = text.range(of: "\r\n\r\n") else {
            throw SwrefError.invalidInput("no HTTP reply from port \(port) for \(path)")
        }
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, String(text[end.upperBound...]))
    }
}
