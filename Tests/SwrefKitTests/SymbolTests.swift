import Foundation
import XCTest

/// Stack frames inside a stripped library are named through its separate debug file (found by build
/// id under /usr/lib/debug, Debian's libc6-dbg): `start_thread`, not `libc.so.6+0x891f4`.
final class SymbolTests: XCTestCase {
    func testLibcFramesAreNamedFromTheDebugFile() throws {
        guard FileManager.default.fileExists(atPath: "/usr/lib/debug/.build-id") else { throw XCTSkip("libc6-dbg is not installed") }
        let program = try RunningProgram(try TestPrograms.binary("census", .optimized), ["100", "10"])
        defer { program.stop() }
        let stacks = try Shell.swref(["stacks", "\(program.pid)"])
        XCTAssertEqual(stacks.status, 0, stacks.stderr)
        XCTAssertTrue(stacks.stdout.contains("__libc_start_call_main"), stacks.stdout)
        XCTAssertFalse(stacks.stdout.contains("libc.so.6+0x"), stacks.stdout)
    }
}
