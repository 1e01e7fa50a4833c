import SwrefRuntimes
import XCTest

/// swift-collections' Deque storage header, as read from a target: which slots the elements in
/// use sit in, and the headers that make no sense for their block (hostile or torn).
final class DequeStorageTests: XCTestCase {
    /// 48-byte elements from +40, the block of NIO's task queue in the Hummingbird server (1360 B).
    let usable: UInt64 = 1344, stride = 48, start = DequeStorage.elementsStart(alignment: 8)

    func testElementsInUseWrapAtTheCapacity() throws {
        XCTAssertEqual(start, 40)
        XCTAssertEqual(DequeStorage.elementsStart(alignment: 16), 48)
        let ring = try XCTUnwrap(DequeStorage.Ring(capacity: 27, count: 5, startSlot: 25, usable: usable, stride: stride, start: start))
        XCTAssertEqual((0..<ring.count).map(ring.slot), [25, 26, 0, 1, 2])
        let empty = try XCTUnwrap(DequeStorage.Ring(capacity: 0, count: 0, startSlot: 0, usable: usable, stride: stride, start: start))
        XCTAssertEqual(empty.count, 0)
    }

    func testHeadersThatMakeNoSenseReadNothing() {
        func ring(_ capacity: UInt64, _ count: UInt64, _ startSlot: UInt64) -> DequeStorage.Ring? {
            DequeStorage.Ring(capacity: capacity, count: count, startSlot: startSlot, usable: usable, stride: stride, start: start)
        }
        XCTAssertNotNil(ring(27, 27, 26), "full")
        XCTAssertNil(ring(28, 1, 0), "more slots than the block holds")
        XCTAssertNil(ring(27, 28, 0), "more elements than slots")
        XCTAssertNil(ring(27, 1, 27), "a start past the last slot")
        XCTAssertNil(ring(.max, 1, 0), "a capacity that would overflow")
        XCTAssertNil(ring(27, .max, .max))
        XCTAssertNil(DequeStorage.Ring(capacity: 1, count: 1, startSlot: 0, usable: 40, stride: stride, start: start), "no room past the header")
        XCTAssertNil(DequeStorage.Ring(capacity: 1, count: 1, startSlot: 0, usable: usable, stride: 0, start: start))
    }
}
