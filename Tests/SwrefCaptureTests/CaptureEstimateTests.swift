import SwrefCapture
import SwrefMemory
import XCTest

/// What a capture is estimated to cost, from a map or smaps text instead of a live process.
final class CaptureEstimateTests: XCTestCase {
    let smaps = """
    55afff655000-55afff65b000 r-xp 00000000 fe:00 16220350                   /app/server
    Size:                 24 kB
    Rss:                  24 kB
    55afff65b000-55afff65c000 r--p 00006000 fe:00 16220350                   /app/server
    Rss:                   4 kB
    55b000000000-55b000100000 rw-p 00000000 00:00 0                          [heap]
    Size:               1024 kB
    Rss:                 100 kB
    Swap:                 20 kB
    7ffd00000000-7ffd00800000 rw-p 00000000 00:00 0                          [stack]
    Rss:                  12 kB
    7ffd00900000-7ffd00902000 r--p 00000000 00:00 0                          [vvar]
    Rss:                   8 kB
    """ + "\n7fcc39a00000-7fcc39b00000 ---p 00000000 00:00 0 \nRss:                   0 kB\n"  // an anonymous line ends in a space

    func testPrecopyCountsResidentAndSwappedAnonymousBytes() {
        // Heap 120 KiB present, stack 12 KiB, the read-only file page whole (4 KiB); not the code,
        // not [vvar], not the unreadable guard.
        XCTAssertEqual(CaptureEstimate.copyBytes(smaps: smaps), (120 + 12 + 4) * 1024)
        XCTAssertEqual(CaptureEstimate.copyBytes(smaps: ""), 0)
    }

    func testStopTheWorldCopiesWholeMappingsAndAQuarterMoreOfTheHeap() {
        let map = MemoryMap(parsing: smaps.split(separator: "\n").filter { !$0.contains(":") || $0.contains("-") }.joined(separator: "\n"))
        XCTAssertEqual(map.regions.count, 6)
        let heap: UInt64 = 1 << 20, stack: UInt64 = 8 << 20
        XCTAssertEqual(CaptureEstimate.copyBytes(map: map, method: .stopTheWorld),
                       heap + heap / 4 + stack + stack / 4 + 4096)
        XCTAssertEqual(CaptureEstimate.copyBytes(map: map, method: .precopy), heap + stack + 4096, "no resident sizes: whole mappings")
    }

    func testAnalysisEstimates() {
        XCTAssertEqual(CaptureEstimate.analysisBytes(copy: 400 << 20), CaptureEstimate.analysisFixedBytes + (100 << 20))
        let map = MemoryMap(parsing: """
        55b000000000-55b010000000 rw-p 00000000 00:00 0                          [heap]
        55afff655000-55afff65b000 rw-p 00000000 fe:00 16220350                   /app/server
        """)
        let full = CaptureEstimate.core(map, fileSize: 1 << 40)
        XCTAssertEqual(full.copyBytes, 0)
        XCTAssertEqual(full.analysisBytes, CaptureEstimate.coreAnalysisBytes(heap: 256 << 20))
        XCTAssertEqual(full.basis, "core")
        // A kernel core that left holes out: no more than the file holds.
        XCTAssertEqual(CaptureEstimate.core(map, fileSize: 4 << 20).analysisBytes, CaptureEstimate.coreAnalysisBytes(heap: 4 << 20))
    }
}
