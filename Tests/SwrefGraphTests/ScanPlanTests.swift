import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefTestSupport
import XCTest

/// The reference scan's plan: every object in exactly one run or cut into pieces, in order.
final class ScanPlanTests: XCTestCase {
    /// A table of blocks of `sizes` bytes, one after the other.
    func table(_ sizes: [UInt64]) -> ObjectTable {
        var blocks = HeapBlocks(allocator: "test", overhead: 0)
        var address: UInt64 = 0x10_0000
        for size in sizes {
            blocks.addresses.append(address + MallocLayout.chunkHeader)
            blocks.sizes.append(size)
            address += size
        }
        let target = InMemoryTarget()
        return ObjectTable(heap: blocks, recognizer: SwiftObjectRecognizer(source: target, images: ImageList(memoryMap: target.memoryMap),
                                                                           reflection: nil))
    }

    func testTasksCoverEveryObjectInOrderAndLargeOnesAreCutWhereTheyCanBe() {
        var random = SplitMix(seed: 99)
        for round in 0..<100 {
            let count = 1 + Int(random.next() % 300)
            // Mostly small blocks, now and then one large enough to be a task of its own.
            let sizes = (0..<count).map { _ in random.next() % 10 == 0 ? 16 * (1 + random.next() % 4096) : 16 * (1 + random.next() % 8) }
            let objects = table(sizes)
            // Every third object cannot be cut; the others into up to 5 parts.
            let parts = { (index: Int) -> Int? in index % 3 == 0 ? nil : 1 + index % 5 }
            let plan = ScanPlan(objects: objects, threads: 2, pieces: parts)
            var next = 0
            var index = 0
            let tasks = plan.tasks
            while index < tasks.count {
                let task = tasks[index]
                XCTAssertEqual(task.objects.lowerBound, next, "round \(round): task \(index) starts where the last ended")
                if let piece = task.piece {
                    // The pieces of one object, 0..<count, in a row, and only for an object that can be cut.
                    XCTAssertEqual(task.objects.count, 1, "round \(round)")
                    XCTAssertEqual(piece.index, 0, "round \(round): pieces start at 0")
                    XCTAssertGreaterThan(piece.count, 1, "round \(round)")
                    XCTAssertLessThanOrEqual(piece.count, parts(task.objects.lowerBound) ?? 0, "round \(round)")
                    for offset in 0..<piece.count {
                        XCTAssertEqual(tasks[index + offset].objects, task.objects, "round \(round)")
                        XCTAssertEqual(tasks[index + offset].piece?.index, offset, "round \(round)")
                        XCTAssertEqual(tasks[index + offset].piece?.count, piece.count, "round \(round)")
                    }
                    index += piece.count
                } else {
                    XCTAssertFalse(task.objects.isEmpty, "round \(round)")
                    XCTAssertLessThanOrEqual(task.floor, task.ceiling, "round \(round): page window")
                    index += 1
                }
                next = task.objects.upperBound
            }
            XCTAssertEqual(next, count, "round \(round): every object planned")
        }
    }
}
