import Foundation
import XCTest

/// Files swref is given: a core written over an old 0644 file is 0600; an output path that is a
/// symbolic link is refused before the target is touched; a FIFO or a directory as the core is
/// refused at once (a FIFO used to hang the open forever).
final class OutputFileTests: XCTestCase {
    func testOutputsAreNeverWrittenThroughLinksAndCoresArePrivate() throws {
        let program = try RunningProgram(try TestPrograms.binary("census", .optimized), ["50", "10"])
        defer { program.stop() }
        let directory = TestPrograms.buildDirectory.appendingPathComponent("outputs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let old = directory.appendingPathComponent("old.core").path
        XCTAssertTrue(FileManager.default.createFile(atPath: old, contents: Data("old".utf8), attributes: [.posixPermissions: 0o644]))
        let dump = try Shell.swref(["dump", "\(program.pid)", "-o", old])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let mode = try FileManager.default.attributesOfItem(atPath: old)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600, "a core is private whatever the file it replaced")

        let victim = directory.appendingPathComponent("victim").path
        let link = directory.appendingPathComponent("link.out").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: victim)
        for command in [["dump", "\(program.pid)", "-o", link], ["attach", "\(program.pid)", "-o", link]] {
            let result = try Shell.swref(command)
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertTrue(result.stderr.contains("symbolic link"), result.stderr)
            XCTAssertFalse(result.stderr.contains("paused"), "refused before the target was touched: \(result.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: victim), "written through the link")
        }
    }

    func testFifoAndDirectoryAreRefusedAsCores() throws {
        let directory = TestPrograms.buildDirectory.appendingPathComponent("fifo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let fifo = directory.appendingPathComponent("core.fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        for (core, kind) in [(fifo, "a FIFO"), (directory.path, "a directory")] {
            let result = try Shell.swref(["core", core, "--format", "text"], timeout: 30)
            XCTAssertFalse(result.timedOut, "\(kind): hung")
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertTrue(result.stderr.contains("not a regular file (\(kind))"), result.stderr)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        }
    }
}
