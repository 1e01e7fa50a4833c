import SwrefReports
import XCTest

/// The pprof writer against swref's own decoder (Go's pprof reads it in SwrefKitTests'
/// PprofRoundTripTests), and the validation that refuses a malformed profile before it is written.
final class PprofProfileTests: XCTestCase {
    func sampleProfile() -> PprofProfile {
        var profile = PprofProfile()
        profile.samples = [
            .init(frames: ["app.registry", "sessions. (Swift.Dictionary<Swift.Int, app.Session>)"], values: [3, 300],
                  labels: ["root": "global"]),
            .init(frames: ["app.registry"], values: [1, 48], labels: ["root": "global"]),
            .init(frames: ["<malloc>"], values: [5, 1 << 40]),
        ]
        return profile
    }

    func testRoundTripThroughTheDecoder() throws {
        let profile = sampleProfile()
        XCTAssertNil(profile.validationError())
        for bytes in [profile.encoded(), try profile.gzipped()] {
            let read = try PprofDecoder.decode(bytes)
            XCTAssertEqual(read.sampleTypes, PprofProfile.heapSampleTypes)
            XCTAssertEqual(read.samples.count, 3)
            XCTAssertEqual(read.samples[0].frames, ["app.registry", "sessions. (Swift.Dictionary<Swift.Int, app.Session>)"])
            XCTAssertEqual(read.samples[0].values, [3, 300])
            XCTAssertEqual(read.samples[0].labels["root"], "global")
            XCTAssertEqual(read.samples[1].frames, ["app.registry"])
            XCTAssertEqual(read.samples[2].values, [5, 1 << 40])
        }
        XCTAssertEqual(try profile.gzipped().prefix(2), [0x1f, 0x8b])
    }

    func testValidationCatchesWrongValueCount() {
        var profile = PprofProfile()
        profile.samples = [.init(frames: ["x"], values: [1])]
        XCTAssertNotNil(profile.validationError())
    }

    func testDecoderRefusesGarbage() {
        XCTAssertThrowsError(try PprofDecoder.decode([0x1f, 0x8b, 0, 1, 2, 3]), "a broken gzip stream")
        XCTAssertThrowsError(try PprofDecoder.decode([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), "a length past the end")
    }
}
