import Glibc
import Widgets
import XCTest

final class WidgetTests: XCTestCase {
    func testPairing() {
        if getenv("SWREF_TEST_LEAK") != nil { pairUp() }
        XCTAssertTrue(getenv("SWREF_TEST_FAIL") == nil, "asked to fail")
    }
}
