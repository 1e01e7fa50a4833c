import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// The reference scan cut into tasks that threads take in turn: runs of whole objects of about
/// equal work, and a large container — a dictionary of millions of objects — in pieces of its
/// own, so that no thread is left with one block that carries most of the work. Each task's
/// references follow the previous task's, so the graph is the tasks' parts in order.
public struct ScanPlan {
    public struct Task {
        public var objects: Range<Int>
        /// Piece `index` of `count` of the one object in `objects`, or nil for whole objects.
        public var piece: (index: Int, count: Int)? = nil
        /// The pages in [floor, ceiling) hold only this task's objects: given back once scanned.
        public var floor: UInt64 = 0
        public var ceiling: UInt64 = 0
        /// The bytes of the task's objects (of its piece, for a piece): a bound on its references.
        public var bytes: UInt64 = 0
    }

    public private(set) var tasks: [Task] = []
    /// An object costs about as much as 64 bytes of scanned words.
    @inline(__always)
    private static func work(_ size: UInt64) -> Int { 1 + Int(truncatingIfNeeded: size >> 6) }

    /// The tasks of one object that costs more than a task's share, to cut into pieces.
    private var large: [Int] = []
    private var share = 1

    /// - Parameters:
    ///   - pieces: for an object, how many parts its scan can be cut into (elements, bitmap
    ///     words…), or nil when it cannot.
    public init(objects: ObjectTable, threads: Int, pieces: (Int) -> Int?) {
        self.init(objects: objects, threads: threads)
        cut(objects: objects, pieces: pieces)
    }

    /// The runs of objects, each object that costs more than a run's share a task of its own: what
    /// can be planned before the layouts say how such an object is cut (`cut(objects:pieces:)`).
    public init(objects: ObjectTable, threads: Int) {
        let count = objects.count, sizes = objects.sizes, work = ScanPlan.work
        var total = 0
        for size in sizes { total &+= work(size) }
        // Enough tasks that the last one taken leaves the other threads little to wait for.
        let share = max(total / max(threads * 16, 1), 1)
        var first = 0, sum = 0, bytes: UInt64 = 0
        var tasks: [Task] = [], large: [Int] = []
        for (index, size) in sizes.enumerated() {
            let cost = work(size)
            if cost > share {
                if first < index { tasks.append(Task(objects: first..<index, bytes: bytes)) }
                large.append(tasks.count)
                tasks.append(Task(objects: index..<index + 1, bytes: size))
                first = index + 1
                sum = 0
                bytes = 0
                continue
            }
            sum &+= cost
            bytes &+= size
            if sum >= share {
                tasks.append(Task(objects: first..<index + 1, bytes: bytes))
                first = index + 1
                sum = 0
                bytes = 0
            }
        }
        if first < count { tasks.append(Task(objects: first..<count, bytes: bytes)) }
        self.tasks = tasks
        self.large = large
        self.share = share
    }

    /// Cuts each large object that `pieces` can cut into pieces of about a share each, and sets
    /// every task's page window. Once.
    public mutating func cut(objects: ObjectTable, pieces: (Int) -> Int?) {
        var cutTasks: [Task] = []
        cutTasks.reserveCapacity(tasks.count)
        var next = 0
        for (position, task) in tasks.enumerated() {
            guard next < large.count, large[next] == position else { cutTasks.append(task); continue }
            next += 1
            let index = task.objects.lowerBound
            let cost = ScanPlan.work(task.bytes)
            guard let parts = pieces(index), parts > 1 else { cutTasks.append(task); continue }
            let count = min(max(cost / share, 2), parts)
            for piece in 0..<count {
                cutTasks.append(Task(objects: index..<index + 1, piece: (piece, count), bytes: task.bytes / UInt64(count) + 64))
            }
        }
        large = []
        // Page windows of whole-object tasks: from the first page past the start of the task's first
        // chunk to the page that holds the next task's first chunk. Pieces read one object
        // together: its pages wait for the end.
        func chunkStart(_ index: Int) -> UInt64 { objects.addresses[index] - MallocLayout.chunkHeader }
        for index in cutTasks.indices where cutTasks[index].piece == nil {
            let objectsOf = cutTasks[index].objects
            cutTasks[index].floor = (chunkStart(objectsOf.lowerBound) + 4095) & ~4095
            let last = objectsOf.upperBound - 1
            let end = index + 1 < cutTasks.count ? chunkStart(cutTasks[index + 1].objects.lowerBound)
                : objects.addresses[last] &+ objects.sizes[last]
            cutTasks[index].ceiling = max(end & ~4095, cutTasks[index].floor)
        }
        tasks = cutTasks
    }

    /// Units `index` of `count` pieces take of `units`.
    public static func share(of units: Int, piece: (index: Int, count: Int)) -> Range<Int> {
        (units * piece.index / piece.count)..<(units * (piece.index + 1) / piece.count)
    }
}
