import SwrefMemory
import XCTest

final class MemoryMapTests: XCTestCase {
    func testParsesProcMapsLines() {
        let text = """
        55afff655000-55afff65b000 r-xp 00000000 fe:00 16220350                   /tmp/census onone
        55b000000000-55b000021000 rw-p 00000000 00:00 0                          [heap]
        7fcc39a00000-7fcc39b00000 rw-p 00000000 00:00 0 
        garbage line
        """
        let map = MemoryMap(parsing: text)
        XCTAssertEqual(map.regions.count, 3)
        XCTAssertEqual(map.regions[0].path, "/tmp/census onone")
        XCTAssertTrue(map.regions[0].executable && map.regions[0].isFileBacked && !map.regions[0].writable)
        XCTAssertEqual(map.regions[1].path, "[heap]")
        XCTAssertEqual(map.regions[1].size, 0x21000)
        XCTAssertTrue(map.regions[2].isAnonymous)
        XCTAssertEqual(map.region(containing: 0x55b000000010)?.path, "[heap]")
        XCTAssertNil(map.region(containing: 0x55b000021000))
    }
}
