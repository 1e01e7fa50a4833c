import SwrefRuntimes
import SwrefTestSupport
import XCTest

/// A task laid out by hand as Swift 6.3's runtime lays it out: the chain of async frames from
/// ResumeContext up to the initial context, and the operation's context in the prefix before it.
final class AsyncTaskTests: XCTestCase {
    let task: UInt64 = 0x10_0000, usable: UInt64 = 432
    /// The initial context, past the task's header and fragments (+384 in the Hummingbird server's
    /// group children), and a frame of the task's allocator elsewhere.
    let initial: UInt64 = 0x10_0000 + 384, frame: UInt64 = 0x20_0000

    func makeTask(resumeContext: UInt64) -> InMemoryTarget {
        let target = InMemoryTarget()
        target.map(task, size: 0x1000)
        target.map(frame, size: 0x1000)
        target.put(0x7000_1000, at: task + AsyncTask.resumeTask)
        target.put(resumeContext, at: task + AsyncTask.resumeContext)
        // The running closure's frame: {Parent: the initial context, ResumeParent}.
        target.put(words: [initial, 0x7000_2000], at: frame)
        // The prefix, then the initial context {Parent: null, ResumeParent: completeTask…}.
        target.put(words: [0x7000_3000, 0x55_0000, 0], at: initial - 24)
        target.put(words: [0, 0x7000_4000], at: initial)
        return target
    }

    func testTheOperationIsBeforeTheInitialContext() throws {
        let parsed = try XCTUnwrap(AsyncTask(at: task, source: makeTask(resumeContext: frame)))
        XCTAssertEqual(parsed.frames.map(\.context), [frame, initial])
        XCTAssertEqual(parsed.initialContext, initial)
        XCTAssertEqual(parsed.operationContextSlot(usable: usable), initial - 16)
        // Not yet started: ResumeContext is the initial context itself.
        let fresh = try XCTUnwrap(AsyncTask(at: task, source: makeTask(resumeContext: initial)))
        XCTAssertEqual(fresh.operationContextSlot(usable: usable), initial - 16)
    }

    func testAnInitialContextOutsideTheTaskIsNotRead() throws {
        let target = makeTask(resumeContext: frame)
        // The chain ends in the frame itself (a torn or hostile chain): no initial context in the task.
        target.put(0, at: frame)
        let torn = try XCTUnwrap(AsyncTask(at: task, source: target))
        XCTAssertEqual(torn.initialContext, frame)
        XCTAssertNil(torn.operationContextSlot(usable: usable), "past the task's block")
        XCTAssertNil(try XCTUnwrap(AsyncTask(at: task, source: makeTask(resumeContext: frame))).operationContextSlot(usable: 300),
                     "a block too small for its initial context")
        // Inside the task's header: no prefix there.
        let early = makeTask(resumeContext: task + 160)
        early.put(words: [0, 0x7000_4000], at: task + 160)
        let parsed = try XCTUnwrap(AsyncTask(at: task, source: early))
        XCTAssertEqual(parsed.initialContext, task + 160)
        XCTAssertNil(parsed.operationContextSlot(usable: usable))
    }
}
