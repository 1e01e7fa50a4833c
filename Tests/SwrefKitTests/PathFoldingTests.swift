import Foundation
import XCTest

/// A chain of untyped blocks (testdata/rawchain: 255 raw malloc blocks, each holding the next) is
/// one frame in the profile, `… (chain)`, holding all links after the second — not 254 frames deep.
final class PathFoldingTests: XCTestCase {
    func testRawBlockChainIsOneFrame() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let program = try RunningProgram(try TestPrograms.binary("rawchain", .optimized))
        defer { program.stop() }
        for attribution in ["dominator", "first-path"] {
            let out = TestPrograms.buildDirectory.appendingPathComponent("rawchain-\(attribution).pb.gz").path
            let run = try Shell.swref(["attach", "\(program.pid)", "--attribution", attribution, "-o", out])
            XCTAssertEqual(run.status, 0, run.stderr)
            let profile = try PprofReader(path: out)
            let chain = profile.samples.filter { $0.frames.first == "rawchain.head" }
            XCTAssertEqual(chain.reduce(0) { $0 + $1.values[0] }, 255, "\(attribution): every block under the global")
            XCTAssertLessThanOrEqual(chain.map(\.frames.count).max() ?? 0, 4, "\(attribution): \(chain.map(\.frames))")
            let folded = chain.filter { $0.frames.last?.hasSuffix("(chain)") == true }
            XCTAssertEqual(folded.reduce(0) { $0 + $1.values[0] }, 253,
                           "the first two links have frames of their own; \(attribution): \(chain.map(\.frames))")
        }
    }
}
