import SwrefMemory
import SwrefTestSupport
import XCTest

/// A snapshot over an in-memory "process" as its fallback: copied regions are read from the copy
/// (and locally), the rest from the fallback, and discarded pages read as zeros.
final class SnapshotTests: XCTestCase {
    /// The process: a heap, a read-only file mapping, a guard page; the snapshot copies the heap
    /// and leaves the file mapping to the fallback.
    func makeSnapshot() throws -> (Snapshot, InMemoryTarget) {
        let process = InMemoryTarget()
        process.map(0x10000, size: 0x4000, path: "[heap]")
        process.map(0x14000, size: 0x1000, "r--p", path: "/usr/lib/libdata.so")
        process.map(0x15000, size: 0x1000, "---p")
        for page in 0..<4 { process.put(bytes: [UInt8](repeating: UInt8(0x11 * (page + 1)), count: 0x1000), at: 0x10000 + UInt64(page) * 0x1000) }
        process.put(bytes: [UInt8](repeating: 0x77, count: 0x1000), at: 0x14000)
        let snapshot = Snapshot(memoryMap: process.memoryMap, threads: [], pid: nil, fallback: process)
        try snapshot.copyRegion(0) { buffer, region in
            XCTAssertTrue(process.read(region.start, count: Int(region.size), into: buffer))
        }
        // The process goes on: the snapshot keeps what it copied.
        process.put(0xdead, at: 0x10000)
        return (snapshot, process)
    }

    func testCopiedRegionsAreReadFromTheCopyAndTheRestFromTheFallback() throws {
        let (snapshot, process) = try makeSnapshot()
        XCTAssertEqual(snapshot.readWord(0x10000), 0x1111_1111_1111_1111, "the copy, not the process as it is now")
        XCTAssertTrue(snapshot.isCopied(0x13fff))
        XCTAssertFalse(snapshot.isCopied(0x14000))
        let calls = process.readCalls
        XCTAssertEqual(snapshot.readWord(0x14008), 0x7777_7777_7777_7777)
        XCTAssertGreaterThan(process.readCalls, calls, "an uncopied region is read from the fallback")
        // A read across the copied heap into the file mapping joins both.
        XCTAssertEqual(snapshot.readBytes(0x13ffc, count: 8), [0x44, 0x44, 0x44, 0x44, 0x77, 0x77, 0x77, 0x77])
        XCTAssertNil(snapshot.readWord(0x15000), "the guard page")
        XCTAssertNil(snapshot.readBytes(0x14ffc, count: 8), "into the guard page")
        XCTAssertNil(snapshot.readWord(0x16000), "unmapped")
        XCTAssertNotNil(snapshot.localBytes(containing: 0x12000))
        XCTAssertNil(snapshot.localBytes(containing: 0x14000))
        XCTAssertEqual(snapshot.copiedBytes, 0x4000)
        XCTAssertTrue(snapshot.readsAreLocal)
    }

    func testDiscardedPagesReadAsZerosAndReleasedCopiesGoToTheFallback() throws {
        let (snapshot, _) = try makeSnapshot()
        // Only whole pages inside the range are given back.
        snapshot.discard(0x10800..<0x12800)
        XCTAssertEqual(snapshot.readWord(0x107f8), 0x1111_1111_1111_1111, "part of a page: kept")
        XCTAssertEqual(snapshot.readWord(0x11000), 0, "a whole page: given back")
        XCTAssertEqual(snapshot.readWord(0x11ff8), 0)
        XCTAssertEqual(snapshot.readWord(0x12000), 0x3333_3333_3333_3333, "part of a page: kept")
        snapshot.releaseCopies()
        XCTAssertFalse(snapshot.isCopied(0x10000))
        XCTAssertEqual(snapshot.readWord(0x10000), 0xdead, "the process as it is now")
    }
}
