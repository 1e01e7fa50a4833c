import Foundation
import SwrefKit
import XCTest

/// RPC-framework-aware mode on a real SwiftNIO server (testdata/nio-server, its own package).
final class FrameworkTests: XCTestCase {
    static let serverPackage = TestPrograms.testdata.appendingPathComponent("nio-server")
    static var built: String?

    /// Builds the server once per test run (the first build of swift-nio takes about a minute).
    static func server() throws -> String {
        if let built { return built }
        let build = try Shell.run("/usr/bin/env", ["swift", "build", "--package-path", serverPackage.path, "--product", "NIOServer"],
                                  timeout: 1200)
        guard build.status == 0 else { throw TestFailure("building testdata/nio-server failed:\n\(build.stdout)\n\(build.stderr)") }
        let path = serverPackage.appendingPathComponent(".build/debug/NIOServer").path
        built = path
        return path
    }

    /// One connection per request: 8 bytes of id, then filler; waits for the server's "OK".
    func sendRequests(port: UInt16, count: Int, size: Int = 100) throws {
        for id in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            XCTAssertGreaterThanOrEqual(fd, 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw TestFailure("connect failed: errno \(errno)") }
            var request = [UInt8](repeating: 0x61, count: size)
            withUnsafeBytes(of: UInt64(id).littleEndian) { for (i, byte) in $0.enumerated() { request[i] = byte } }
            XCTAssertEqual(request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }, size)
            var reply = [UInt8](repeating: 0, count: 2)
            XCTAssertEqual(reply.withUnsafeMutableBytes { read(fd, $0.baseAddress, 2) }, 2)
        }
    }

    func testSlicesInAUserCachePinReceiveBuffers() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let binary = try FrameworkTests.server()
        let requests = 32
        let receiveCapacity: Int64 = 2048 // NIO's adaptive receive allocator starts at 2 KiB

        for caching in [true, false] {
            let server = try RunningProgram(binary, caching ? ["--cache"] : [])
            defer { server.stop() }
            try sendRequests(port: UInt16(server.readyNumbers[0]), count: requests)
            usleep(200_000)
            let out = TestPrograms.buildDirectory.appendingPathComponent("nio-\(caching).pb.gz").path
            // First-path: the cache, a global, is the first root to reach every slice it holds.
            let run = try Shell.swref(["attach", "\(server.pid)", "--attribution", "first-path", "-o", out])
            XCTAssertEqual(run.status, 0, run.stderr)
            let profile = try PprofReader(path: out)
            let cached = profile.samples.filter { $0.frames.first == "NIOServer.cache" && ($0.frames.last ?? "").contains("ByteBuffer (NIOCore)") }
            if caching {
                let bytes = cached.reduce(0) { $0 + $1.values[1] }
                XCTAssertGreaterThanOrEqual(bytes, Int64(requests) * receiveCapacity, "the cache pins a receive buffer per request")
                XCTAssertEqual(cached.reduce(0) { $0 + $1.values[0] }, Int64(2 * requests), "storage and bytes of each buffer")
                let frame = cached.first?.frames.last ?? ""
                XCTAssertTrue(frame.hasPrefix("$mapval. (ByteBuffer (NIOCore) ") && frame.hasSuffix(" pinned, 8 B viewed)"), frame)
                XCTAssertEqual(cached.first?.labels["framework"], "nio")
                XCTAssertEqual(cached.first?.labels["charged_to"], "NIOServer.cache")
                XCTAssertEqual(cached.first?.labels["viewed_bytes"], "8 bytes")
                XCTAssertEqual(cached.first.map { Int64($0.labels["pinned_bytes"]?.split(separator: " ").first ?? "") ?? 0 }, receiveCapacity)
                // A buffer's bytes are data: nothing below them is found by a word-by-word scan.
                XCTAssertFalse(profile.samples.contains { sample in
                    zip(sample.frames, sample.frames.dropFirst()).contains { $0.contains("ByteBuffer (NIOCore)") && $1 == ReferenceScanner.subObjects }
                })

                let text = try Shell.swref(["attach", "\(server.pid)", "--format", "text", "--attribution", "first-path"])
                XCTAssertTrue(text.stdout.contains("in \(requests) buffers  NIOServer.cache"), text.stdout)
                XCTAssertTrue(text.stdout.contains("\(requests) × 2.0 KiB pinned for 8 B viewed (256×)"), text.stdout)

                // Without the mode, the same objects on a plain path.
                let plain = TestPrograms.buildDirectory.appendingPathComponent("nio-plain.pb.gz").path
                XCTAssertEqual(try Shell.swref(["attach", "\(server.pid)", "--framework", "none", "-o", plain]).status, 0)
                let plainProfile = try PprofReader(path: plain)
                XCTAssertFalse(plainProfile.samples.contains { $0.frames.contains { $0.contains("ByteBuffer (NIOCore)") } })
                XCTAssertTrue(plainProfile.samples.contains { $0.frames.last == "$mapval. (NIOCore.ByteBuffer._Storage)" })
            } else {
                XCTAssertEqual(cached.count, 0, "no cache, no pinned buffers under it")
                let pinning = profile.samples.filter { ($0.frames.last ?? "").contains("ByteBuffer (NIOCore)") }.reduce(0) { $0 + $1.values[1] }
                XCTAssertLessThan(pinning, Int64(requests) * receiveCapacity, "no path retains the requests' buffers")
            }
        }
    }
}

/// Foundation Data in framework mode: whole values in a cache and 8-byte slices pinning 64 KiB.
final class FoundationDataTests: XCTestCase {
    func testDataCacheAndSlices() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        for variant in [BuildVariant.debug, .optimized] {
            let program = try RunningProgram(try TestPrograms.binary("datacache", variant))
            defer { program.stop() }
            let expectations = ReferencePathTests.expectations(program.outputBeforeReady)
            XCTAssertEqual(expectations.count, 2)
            let out = TestPrograms.buildDirectory.appendingPathComponent("datacache-\(variant).pb.gz").path
            let run = try Shell.swref(["attach", "\(program.pid)", "--attribution", "first-path", "-o", out])
            XCTAssertEqual(run.status, 0, run.stderr)
            let profile = try PprofReader(path: out)
            for expectation in expectations {
                let matching = profile.samples.filter { ReferencePathTests.matches($0.frames, expectation.frames) }
                XCTAssertEqual(matching.reduce(0) { $0 + $1.values[0] }, expectation.count, "\(variant) \(expectation.frames)")
                XCTAssertEqual(matching.reduce(0) { $0 + $1.values[1] }, expectation.bytes, "\(variant) \(expectation.frames)")
                XCTAssertTrue(matching.allSatisfy { $0.labels["framework"] == "foundation" && $0.labels["charged_to"] == expectation.frames[0] })
            }
            let cached = profile.samples.filter { $0.frames.first == "datacache.cache" && $0.frames.count == 3 }
            XCTAssertTrue(cached.allSatisfy { $0.frames[2].hasSuffix(" pinned, 1000 B viewed)") && $0.labels["viewed_bytes"] == "1000 bytes" })
            let slice = profile.samples.first { $0.frames.first == "datacache.slices" && $0.frames.count == 2 }
            XCTAssertTrue(slice?.frames[1].hasSuffix(" pinned, 8 B viewed)") == true, "\(slice?.frames ?? [])")
            XCTAssertGreaterThanOrEqual(Int(slice?.labels["pinned_bytes"]?.split(separator: " ").first ?? "") ?? 0, 65536)
            let text = try Shell.swref(["attach", "\(program.pid)", "--format", "text", "--attribution", "first-path"])
            XCTAssertTrue(text.stdout.contains("Small views pinning large buffers:"), text.stdout)
            XCTAssertTrue(text.stdout.contains("pinned for 8 B viewed") && text.stdout.contains("datacache.slices › [0]. (Data (Foundation)"), text.stdout)
        }
    }
}
