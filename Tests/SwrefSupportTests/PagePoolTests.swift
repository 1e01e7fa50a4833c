import SwrefSupport
import SwrefTestSupport
import Glibc
import XCTest

/// The page pool moves resident pages between mappings instead of faulting fresh ones, and the
/// arrays built on it behave as `Array` does.
final class PagePoolTests: XCTestCase {
    let mib = 1 << 20

    override func tearDown() {
        PagePool.shared.limit = 0
        super.tearDown()
    }

    /// A private anonymous mapping of `bytes`, every byte written with `pattern`.
    func writtenMapping(_ bytes: Int, pattern: UInt8) -> UnsafeMutableRawPointer {
        let start = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        XCTAssertNotEqual(start, MAP_FAILED)
        memset(start, Int32(pattern), bytes)
        return start
    }

    func minorFaults() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_minflt
    }

    /// Pages adopted from a mapping leave zeros behind, arrive in the next allocation with their
    /// contents (they moved, not copied), and cost no fault when written again.
    func testAdoptedPagesMoveIntoTheNextAllocation() {
        let pool = PagePool.shared
        pool.limit = 64 * mib
        let source = writtenMapping(32 * mib, pattern: 0xA5)
        defer { munmap(source, 32 * mib) }
        // The middle 16 MiB; the pool has room for all of it.
        pool.adopt(source + 8 * mib, bytes: 16 * mib)
        XCTAssertEqual(pool.kept, 16 * mib)
        XCTAssertEqual(source.load(fromByteOffset: 8 * mib, as: UInt8.self), 0, "the adopted range reads zeros")
        XCTAssertEqual(source.load(fromByteOffset: 24 * mib - 1, as: UInt8.self), 0)
        XCTAssertEqual(source.load(fromByteOffset: 8 * mib - 1, as: UInt8.self), 0xA5, "the rest is untouched")
        XCTAssertEqual(source.load(fromByteOffset: 24 * mib, as: UInt8.self), 0xA5)

        let before = minorFaults()
        let taken = pool.allocate(bytes: 12 * mib)!
        memset(taken, 0x5A, 12 * mib)
        let faults = minorFaults() - before
        // 3072 pages: fresh ones would fault once each.
        XCTAssertLessThan(faults, 300, "writing pooled pages faulted \(faults) times")
        XCTAssertEqual(pool.kept, 4 * mib)
        pool.deallocate(taken, bytes: 12 * mib)
        XCTAssertEqual(pool.kept, 16 * mib)

        // A stale page arrives with what was last written in it: the caller initializes.
        let again = pool.allocate(bytes: 4 * mib)!
        let byte = again.load(as: UInt8.self)
        XCTAssert(byte == 0x5A || byte == 0xA5, "a pooled page came without its contents: \(byte)")
        pool.deallocate(again, bytes: 4 * mib)

        // Past the limit, pages go back to the system.
        pool.limit = 8 * mib
        XCTAssertLessThanOrEqual(pool.kept, 8 * mib)
        pool.limit = pool.kept
        let kept = pool.kept
        pool.adopt(source, bytes: 8 * mib)
        XCTAssertEqual(pool.kept, kept, "a full pool takes nothing")
        XCTAssertEqual(source.load(as: UInt8.self), 0, "what the pool does not take goes back to the system")

        // Pages never touched are not taken: they would cost a fault in the next allocation.
        pool.limit = 64 * mib
        let sparse = mmap(nil, 8 * mib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        defer { munmap(sparse, 8 * mib) }
        memset(sparse + 2 * mib, 1, mib)
        let before2 = pool.kept
        pool.adopt(sparse, bytes: 8 * mib)
        XCTAssertEqual(pool.kept - before2, mib, "only the written MiB is kept")
    }

    /// `PooledArray` against `Array` under random appends, writes, copies and growth, small and
    /// past the pool's threshold, with the pool holding stale pages.
    func testPooledArrayKeepsEveryValue() {
        let pool = PagePool.shared
        pool.limit = 256 * mib
        let stale = writtenMapping(64 * mib, pattern: 0xEE)
        pool.adopt(stale, bytes: 64 * mib)
        XCTAssertEqual(pool.kept, 64 * mib)
        munmap(stale, 64 * mib)
        var random = SplitMix(seed: 7)
        for round in 0..<6 {
            var pooled = PooledArray<UInt32>()
            var plain: [UInt32] = []
            if round % 3 == 0 {
                let reserve = Int(random.next() % 1_000_000)
                pooled.reserveCapacity(reserve)
            }
            var copies: [(PooledArray<UInt32>, [UInt32])] = []
            let steps = 40 + Int(random.next() % 60)
            for _ in 0..<steps {
                switch random.next() % 10 {
                case 0...5:
                    let run = Int(random.next() % 5_000)
                    for _ in 0..<run {
                        let value = UInt32(truncatingIfNeeded: random.next())
                        // `appendUnshared` only while no copy shares the storage (its contract).
                        if copies.isEmpty && random.next() % 2 == 0 { pooled.appendUnshared(value) } else { pooled.append(value) }
                        plain.append(value)
                    }
                case 6:
                    guard !plain.isEmpty else { continue }
                    let index = Int(random.next() % UInt64(plain.count))
                    let value = UInt32(truncatingIfNeeded: random.next())
                    pooled[index] = value
                    plain[index] = value
                case 7:
                    // A copy keeps its values while the original goes on changing.
                    if copies.count < 3 { copies.append((pooled, plain)) }
                case 8:
                    let other = PooledArray<UInt32>(repeating: UInt32(round), count: Int(random.next() % 300_000))
                    pooled.append(contentsOf: other)
                    plain += Array(repeating: UInt32(round), count: other.count)
                default:
                    pooled.withUnsafeMutableBufferPointer { buffer in
                        for i in stride(from: 0, to: buffer.count, by: 97) { buffer[i] &+= 1 }
                    }
                    for i in stride(from: 0, to: plain.count, by: 97) { plain[i] &+= 1 }
                }
            }
            XCTAssertEqual(pooled.count, plain.count, "round \(round): count")
            if let first = zip(pooled, plain).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
                XCTFail("round \(round): element \(first.offset) is \(first.element.0), not \(first.element.1)")
            }
            for (index, (copy, expected)) in copies.enumerated() where !Array(copy).elementsEqual(expected) {
                XCTFail("round \(round): copy \(index) changed")
            }
        }
        let repeated = PooledArray<UInt64>(repeating: 3, count: 1_000_000)
        XCTAssert(repeated.allSatisfy { $0 == 3 }, "stale pages showed through an initialized array")
    }
}
