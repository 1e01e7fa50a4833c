import Foundation
import SwrefKit
import XCTest

/// swref's pprof output read back by Go's own pprof (Support/PprofReader): needs `go`, so it
/// stays with the end-to-end tests; the decoder round trip is in SwrefReportsTests.
final class PprofRoundTripTests: XCTestCase {
    func testRoundTripThroughRealPprof() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        var profile = PprofProfile()
        profile.samples = [
            .init(frames: ["app.registry", "sessions. (Swift.Dictionary<Swift.Int, app.Session>)"], values: [3, 300],
                  labels: ["root": "global"]),
            .init(frames: ["app.registry"], values: [1, 48], labels: ["root": "global"]),
            .init(frames: ["<malloc>"], values: [5, 1 << 40]),
        ]
        XCTAssertNil(profile.validationError())
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("roundtrip-\(getpid()).pb.gz").path
        try Data(try profile.gzipped()).write(to: URL(fileURLWithPath: path))
        let read = try PprofReader(path: path)
        XCTAssertEqual(read.samples.count, 3)
        XCTAssertEqual(read.samples[0].frames, ["app.registry", "sessions. (Swift.Dictionary<Swift.Int, app.Session>)"])
        XCTAssertEqual(read.samples[0].values, [3, 300])
        XCTAssertEqual(read.samples[0].labels["root"], "global")
        XCTAssertEqual(read.samples[2].values, [5, 1 << 40])
    }
}
