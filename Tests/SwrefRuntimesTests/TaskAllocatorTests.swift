import SwrefMemory
import SwrefRuntimes
import SwrefTestSupport
import XCTest

/// A task allocator's slab laid out by hand: the walk back from the task's last allocation lists
/// each allocation up to the next one, and stops — without trapping or looping — at a header that
/// names another slab or goes back up its slab (a cycle).
final class TaskAllocatorTests: XCTestCase {
    static let task: UInt64 = 0x5555_0000_0000, slab: UInt64 = 0x5555_0000_1000

    /// A task whose one slab holds allocations at `headers` (each `{previous, slab}`), `used` bytes in all.
    func makeTask(_ headers: [(at: UInt64, previous: UInt64, slab: UInt64)], last: UInt64, used: UInt32) -> InMemoryTarget {
        let target = InMemoryTarget()
        target.map(TaskAllocatorTests.task, size: 0x4000)
        target.put(last, at: TaskAllocatorTests.task + AsyncTask.lastAllocation)
        target.put(TaskAllocatorTests.slab, at: TaskAllocatorTests.task + AsyncTask.firstSlab)
        target.put(0x1000, at: TaskAllocatorTests.slab)  // the slabs' metadata word: not read
        target.put32(used, at: TaskAllocatorTests.slab + AsyncTask.slabCurrentOffset)
        for header in headers { target.put(words: [header.previous, header.slab], at: header.at) }
        return target
    }

    func testAllocationsNewestFirstEachUpToTheNext() throws {
        let slab = TaskAllocatorTests.slab, data = slab + AsyncTask.slabHeader
        let target = makeTask([(data, 0, slab), (data + 0x40, data, slab), (data + 0x100, data + 0x40, slab)], last: data + 0x100, used: 0x130)
        let task = try XCTUnwrap(AsyncTask(at: TaskAllocatorTests.task, source: target))
        XCTAssertEqual(task.slabs, [slab])
        XCTAssertEqual(task.allocations, [(data + 0x110)..<(data + 0x130), (data + 0x50)..<(data + 0x100), (data + 0x10)..<(data + 0x40)])
    }

    func testWalkStopsAtAForeignSlabOrACycle() throws {
        let slab = TaskAllocatorTests.slab, data = slab + AsyncTask.slabHeader
        let foreign = makeTask([(data, 0, slab + 0x2000), (data + 0x40, data, slab)], last: data + 0x40, used: 0x80)
        XCTAssertEqual(try XCTUnwrap(AsyncTask(at: TaskAllocatorTests.task, source: foreign)).allocations, [(data + 0x50)..<(data + 0x80)])
        // The older allocation's `previous` points back up at the newer one.
        let cycle = makeTask([(data, data + 0x40, slab), (data + 0x40, data, slab)], last: data + 0x40, used: 0x80)
        XCTAssertEqual(try XCTUnwrap(AsyncTask(at: TaskAllocatorTests.task, source: cycle)).allocations,
                       [(data + 0x50)..<(data + 0x80), (data + 0x10)..<(data + 0x40)])
        // A current offset that puts the slab's end below its newest allocation: nothing.
        let short = makeTask([(data + 0x40, 0, slab)], last: data + 0x40, used: 0x20)
        XCTAssertEqual(try XCTUnwrap(AsyncTask(at: TaskAllocatorTests.task, source: short)).allocations, [])
        // A header at the top of the address space.
        let top = makeTask([], last: UInt64.max - 7, used: 0x20)
        XCTAssertEqual(try XCTUnwrap(AsyncTask(at: TaskAllocatorTests.task, source: top)).allocations, [])
    }
}
