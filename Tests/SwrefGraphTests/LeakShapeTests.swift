import SwrefGraph
import XCTest

/// A leak shape names each hop by its field: the closure through which an object that is its
/// closure's context is held stays out of it, as suppressions written for the shape expect.
final class LeakShapeTests: XCTestCase {
    func testFieldNamesOfLabels() {
        XCTAssertEqual(LeakFinder.fieldName("child. (leaks.Child)"), "child")
        XCTAssertEqual(LeakFinder.fieldName("callback.{closure #1 () -> () in leaks.Handler.arm() -> ()}. (leaks.Handler)"), "callback")
        XCTAssertEqual(LeakFinder.fieldName("[3].{closure #1 () -> Swift.Int in app}. (app.Listener)"), "[3]")
        XCTAssertEqual(LeakFinder.fieldName("{closure #1 () -> Swift.Int in app}. (app.Listener)"), "closure #1 () -> Swift.Int in app")
        XCTAssertEqual(LeakFinder.fieldName("handlers. (closure #2 () -> () in app)"), "handlers")
        XCTAssertEqual(LeakFinder.fieldName(""), "?")
    }
}
