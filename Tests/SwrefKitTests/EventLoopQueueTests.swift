import Foundation
import XCTest

/// Tasks queued on a SwiftNIO event loop are held by its queue, a swift-collections Deque whose
/// elements in use swref reads (`DequeStorage`). testdata/servers' NIOQueuedTasks holds its loop's
/// thread in one task and queues closures behind it, each capturing a `Queued`: under load, the
/// Hummingbird server's responses waiting to be written sit there the same way.
final class EventLoopQueueTests: XCTestCase {
    func testQueuedTasksAreHeldByTheLoopsQueue() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        let count = 10
        let binary = try ServerLoadTests.binaries(.debugGlibc).appendingPathComponent("NIOQueuedTasks").path
        let program = try RunningProgram(binary, ["\(count)"])
        defer { program.stop() }

        let leaks = try Shell.swref(["leaks", "\(program.pid)"])
        XCTAssertEqual(leaks.status, 0, leaks.stdout)
        let out = TestPrograms.buildDirectory.appendingPathComponent("nio-queued-tasks.pb.gz").path
        let run = try Shell.swref(["attach", "\(program.pid)", "--attribution", "first-path", "-o", out])
        XCTAssertEqual(run.status, 0, run.stderr)
        // Each on its path from the global loop through the queue, by its place in the queue.
        let queue = "_immediateTasks._storage._buffer. (DequeModule._DequeBuffer<NIOPosix.UnderlyingTask>)"
        let queued = try PprofReader(path: out).samples.filter { ($0.frames.last ?? "").hasSuffix("(NIOQueuedTasks.Queued)") }
        XCTAssertEqual(queued.reduce(0) { $0 + $1.values[0] }, Int64(count), "\(queued.map(\.frames))")
        XCTAssertTrue(queued.allSatisfy { $0.frames.first == "NIOQueuedTasks.loop" && $0.frames.contains(queue) }, "\(queued.map(\.frames))")
        XCTAssertEqual(Set(queued.compactMap(\.frames.last)), Set((0..<count).map { "[\($0)]. (NIOQueuedTasks.Queued)" }))
    }
}
