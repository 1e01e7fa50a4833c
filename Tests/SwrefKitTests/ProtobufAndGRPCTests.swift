import Foundation
import SwrefKit
import XCTest

/// Framework mode on swift-protobuf messages and a real grpc-swift-2 server (testdata/grpc-server,
/// its own package: about 4.5 minutes for its first debug build here).
final class ProtobufAndGRPCTests: XCTestCase {
    static let package = TestPrograms.testdata.appendingPathComponent("grpc-server")
    static var built = false

    /// Builds both programs of the package once per test run.
    static func program(_ name: String) throws -> String {
        if !built {
            let build = try Shell.run("/usr/bin/env", ["swift", "build", "--package-path", package.path], timeout: 2400)
            guard build.status == 0 else { throw TestFailure("building testdata/grpc-server failed:\n\(build.stdout)\n\(build.stderr)") }
            built = true
        }
        return package.appendingPathComponent(".build/debug/\(name)").path
    }

    /// `FIGURE name count bytes` lines: what the program measured of its own blocks.
    func figures(_ output: String) -> [String: (count: Int64, bytes: Int64)] {
        var result: [String: (Int64, Int64)] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("FIGURE ") {
            let parts = line.split(separator: " ")
            result[String(parts[1])] = (Int64(parts[2])!, Int64(parts[3])!)
        }
        return result
    }

    func total(_ samples: [PprofReader.Sample]) -> (count: Int64, bytes: Int64) {
        samples.reduce((0, 0)) { ($0.0 + $1.values[0], $0.1 + $1.values[1]) }
    }

    func testProtobufMessageCacheExactFigures() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let program = try RunningProgram(try ProtobufAndGRPCTests.program("ProtoCache"))
        defer { program.stop() }
        let figures = figures(program.outputBeforeReady)
        XCTAssertEqual(figures.count, 7, program.outputBeforeReady)
        let out = TestPrograms.buildDirectory.appendingPathComponent("protocache.pb.gz").path
        let run = try Shell.swref(["attach", "\(program.pid)", "--attribution", "first-path", "-o", out])
        XCTAssertEqual(run.status, 0, run.stderr)
        let samples = try PprofReader(path: out).samples
        let dictionary = "entries. (Dictionary<Int, CacheProto.Entry>)"
        let message = "$mapval. (CacheProto.Entry (SwiftProtobuf message))"

        // Entry keeps its fields in a heap _StorageClass: the storage objects are the message's frame.
        let storages = samples.filter { $0.frames == ["ProtoCache.store", dictionary, message] }
        XCTAssertEqual(total(storages).count, figures["store.storage"]?.count)
        XCTAssertEqual(total(storages).bytes, figures["store.storage"]?.bytes)
        XCTAssertTrue(storages.allSatisfy { $0.labels["framework"] == "protobuf" && $0.labels["charged_to"] == "ProtoCache.store" })
        let payloads = samples.filter { $0.frames.count == 4 && Array($0.frames.prefix(3)) == ["ProtoCache.store", dictionary, message] }
        XCTAssertEqual(total(payloads).count, figures["store.payload"]?.count)
        XCTAssertEqual(total(payloads).bytes, figures["store.payload"]?.bytes)
        XCTAssertTrue(payloads.allSatisfy { $0.frames[3].hasPrefix("payload. (Data (Foundation) ") && $0.frames[3].hasSuffix(" pinned, 1000 B viewed)") },
                      "\(payloads.map(\.frames))")
        XCTAssertEqual(total(samples.filter { $0.frames == ["ProtoCache.store", dictionary] }).bytes, figures["store.dictionary"]?.bytes)

        // PutRequest keeps its fields inline; its unknown fields are a Data of their own.
        let unknown = samples.filter { $0.frames.first == "ProtoCache.small" && $0.frames.last?.contains(".unknownFields. (UnknownStorage (SwiftProtobuf) 303 B pinned, 303 B viewed)") == true }
        XCTAssertEqual(total(unknown).count, figures["small.unknown"]?.count)
        XCTAssertEqual(total(unknown).bytes, figures["small.unknown"]?.bytes)
        XCTAssertTrue(unknown.allSatisfy { $0.labels["framework"] == "protobuf" && $0.labels["viewed_bytes"] == "303 bytes" })
        let smallPayloads = samples.filter { $0.frames.first == "ProtoCache.small" && $0.frames.last?.contains(".payload. (Data (Foundation) ") == true }
        XCTAssertEqual(total(smallPayloads).count, figures["small.payload"]?.count)
        XCTAssertEqual(total(smallPayloads).bytes, figures["small.payload"]?.bytes)

        // Raw gRPC transport bytes held by user code: a ByteBuffer each, named as gRPC's.
        let raw = samples.filter { $0.frames.first == "ProtoCache.raw" && $0.frames.count == 2 }
        XCTAssertEqual(total(raw).count, 6, "\(raw.map(\.frames))")
        XCTAssertGreaterThanOrEqual(total(raw).bytes, 3 * 3000)
        XCTAssertTrue(raw.allSatisfy { $0.frames[1].contains(". (GRPCNIOTransportBytes (GRPCNIOTransportCore) ")
                && $0.labels["viewed_bytes"] == "3000 bytes" && $0.labels["framework"] == "grpc"
                && $0.labels["charged_to"] == "ProtoCache.raw" }, "\(raw.map(\.frames))")

        // Dominator attribution (the default) gives each global the sum of what it holds.
        let dominated = TestPrograms.buildDirectory.appendingPathComponent("protocache-dom.pb.gz").path
        XCTAssertEqual(try Shell.swref(["attach", "\(program.pid)", "-o", dominated]).status, 0)
        let byGlobal = try PprofReader(path: dominated).samples
        let storeBytes = ["store.object", "store.dictionary", "store.storage", "store.payload"].compactMap { figures[$0]?.bytes }.reduce(0, +)
        XCTAssertEqual(total(byGlobal.filter { $0.frames.first == "ProtoCache.store" }).bytes, storeBytes)
        let smallBytes = ["small.array", "small.payload", "small.unknown"].compactMap { figures[$0]?.bytes }.reduce(0, +)
        XCTAssertEqual(total(byGlobal.filter { $0.frames.first == "ProtoCache.small" }).bytes, smallBytes)

        // Without the mode the storage is a plain object at the message's path.
        let plain = TestPrograms.buildDirectory.appendingPathComponent("protocache-plain.pb.gz").path
        XCTAssertEqual(try Shell.swref(["attach", "\(program.pid)", "--attribution", "first-path", "--framework", "none", "-o", plain]).status, 0)
        let plainSamples = try PprofReader(path: plain).samples
        XCTAssertFalse(plainSamples.contains { $0.frames.contains { $0.contains("SwiftProtobuf") } })
        let plainStorages = plainSamples.filter { $0.frames.count == 3 && $0.frames[2].hasPrefix("$mapval. (CacheProto.Entry.(_StorageClass") }
        XCTAssertEqual(total(plainStorages).count, figures["store.storage"]?.count)
    }

    func testGRPCServiceCachingRequestMessages() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let binary = try ProtobufAndGRPCTests.program("GRPCCacheServer")
        let requests = 16, payload = 4096
        for caching in [true, false] {
            let server = try RunningProgram(binary, ["serve"] + (caching ? ["--cache"] : []))
            defer { server.stop() }
            let client = try Shell.run(binary, ["client", "\(server.readyNumbers[0])", "\(requests)", "\(payload)"], timeout: 120)
            XCTAssertEqual(client.status, 0, client.stderr)
            let out = TestPrograms.buildDirectory.appendingPathComponent("grpc-\(caching).pb.gz").path
            let run = try Shell.swref(["attach", "\(server.pid)", "--attribution", "first-path", "-o", out])
            XCTAssertEqual(run.status, 0, run.stderr)
            let samples = try PprofReader(path: out).samples
            let cached = samples.filter { $0.frames.first == "GRPCCacheServer.cache" }
            let payloads = cached.filter { $0.frames.last?.hasPrefix("$mapval.payload. (Data (Foundation) ") == true }
            if caching {
                // Each cached request message holds its payload: a Data (storage + bytes) of at least
                // `payload` bytes, charged to the cache.
                XCTAssertEqual(total(payloads).count, Int64(2 * requests), "\(cached.map(\.frames))")
                XCTAssertGreaterThanOrEqual(total(payloads).bytes, Int64(requests * payload))
                XCTAssertTrue(payloads.allSatisfy { $0.labels["framework"] == "foundation" && $0.labels["charged_to"] == "GRPCCacheServer.cache" })
                XCTAssertTrue(payloads.allSatisfy { $0.frames.last!.hasSuffix(" pinned, 4.0 KiB viewed)") }, "\(payloads.map(\.frames))")
                XCTAssertTrue(cached.contains { $0.frames == ["GRPCCacheServer.cache", "entries. (Dictionary<UInt64, CacheProto.PutRequest>)"] })
                // grpc-swift-2 decodes each message out of the transport's ByteBuffer: the cache pins none.
                XCTAssertFalse(cached.contains { $0.frames.contains { $0.contains("ByteBuffer (NIOCore)") || $0.contains("GRPCNIOTransportBytes") } })
                // Framework internals (NIO's zero-capacity singleton buffer) are framework-owned.
                let singleton = samples.filter { $0.frames.first?.contains("zeroCapacityWithDefaultAllocator") == true && $0.labels["framework"] != nil }
                XCTAssertFalse(singleton.isEmpty)
                XCTAssertTrue(singleton.allSatisfy { $0.labels["charged_to"] == FrameworkCharges.frameworkOwned }, "\(singleton.map(\.labels))")
                let text = try Shell.swref(["attach", "\(server.pid)", "--format", "text", "--attribution", "first-path"])
                XCTAssertTrue(text.stdout.contains("in \(requests) buffers  GRPCCacheServer.cache"), text.stdout)
            } else {
                XCTAssertEqual(payloads.count, 0, "no cache, no payloads under it")
                XCTAssertLessThan(total(samples.filter { $0.labels["framework"] == "foundation" }).bytes, Int64(requests * payload))
            }
        }
    }

    /// The gRPC server under load (wrk speaks no gRPC: the program's own `load` client, four
    /// concurrent streams of unary Puts over HTTP/2, ids cycling through 200 keys) while swref
    /// attaches by every capture method and runs leaks and top (for 60 s: then the load ends):
    /// every command exits 0, the client sees no failed call, and at a quiet moment no leak is reported and the cache's 200 requests
    /// hold their payloads.
    func testGRPCServiceUnderLoad() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let binary = try ProtobufAndGRPCTests.program("GRPCCacheServer")
        let server = try RunningProgram(binary, ["serve", "--cache"])
        defer { server.stop() }
        let port = server.readyNumbers[0]
        let keys = 200, payload = 2048
        let client = Process()
        client.executableURL = URL(fileURLWithPath: binary)
        client.arguments = ["load", "\(port)", "60", "4", "\(payload)", "\(keys)"]
        let output = Pipe()
        client.standardOutput = output
        client.standardError = output
        try client.run()
        defer { if client.isRunning { client.terminate() } }
        sleep(2)
        for capture in ["precopy", "fork", "fork-in-place", "precopy-to-disk", "stop-the-world"] {
            let out = TestPrograms.buildDirectory.appendingPathComponent("grpc-load-\(capture).pb.gz").path
            let run = try Shell.swref(["attach", "\(server.pid)", "-o", out, "--capture", capture], timeout: 300)
            XCTAssertEqual(run.status, 0, "\(capture): \(run.stderr)")
            XCTAssertTrue(client.isRunning, "the load ended before the \(capture) attach")
            let samples = try PprofReader(path: out).samples
            XCTAssertTrue(samples.contains { $0.frames.first == "GRPCCacheServer.cache" }, "\(capture): nothing under the cache")
            print("GRPCLoad: attach \(capture): \(samples.count) samples, \(run.stderr.split(separator: "\n").last ?? "")")
        }
        for command in [["leaks", "\(server.pid)"], ["top", "\(server.pid)"]] {
            let run = try Shell.swref(command, timeout: 300)
            XCTAssertTrue([0, 1].contains(run.status), "\(command): \(run.stderr)")
            XCTAssertFalse(run.stderr.contains("internal error"), run.stderr)
        }
        // The load runs its 60 s out: every call made while swref attached was answered.
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        client.waitUntilExit()
        print("GRPCLoad: client: \(report.trimmingCharacters(in: .whitespacesAndNewlines))")
        XCTAssertEqual(client.terminationStatus, 0, report)
        let numbers = report.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        XCTAssertTrue(report.hasPrefix("LOAD ") && numbers.count == 2, report)
        XCTAssertGreaterThan(numbers.first ?? 0, 0, report)
        XCTAssertEqual(numbers.last, 0, "failed calls: \(report)")

        let quiet = try Shell.swref(["leaks", "\(server.pid)"], timeout: 300)
        print("GRPCLoad: leaks at a quiet moment (exit \(quiet.status)):\n\(quiet.stdout.prefix(2000))")
        XCTAssertEqual(quiet.status, 0, quiet.stdout)
        let out = TestPrograms.buildDirectory.appendingPathComponent("grpc-load-quiet.pb.gz").path
        let run = try Shell.swref(["attach", "\(server.pid)", "--attribution", "first-path", "-o", out])
        XCTAssertEqual(run.status, 0, run.stderr)
        let payloads = try PprofReader(path: out).samples.filter {
            $0.frames.first == "GRPCCacheServer.cache" && $0.frames.last?.hasPrefix("$mapval.payload. (Data (Foundation) ") == true
        }
        XCTAssertEqual(total(payloads).count, Int64(2 * keys), "\(payloads.map(\.frames))")
        XCTAssertGreaterThanOrEqual(total(payloads).bytes, Int64(keys * payload))
    }
}
