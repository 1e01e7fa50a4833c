import SwrefMemory
import SwrefRuntimes
import XCTest

/// Class metadata as a damaged or hostile target could hold it: every value swref reads from
/// it must be checked, so a chain that makes no sense reads as nil instead of trapping or looping.
final class HostileLayoutTests: XCTestCase {
    /// Memory as a dictionary of little-endian 32-bit words; everything else is unreadable.
    final class FakeMemory: MemorySource {
        var words: [UInt64: UInt32] = [:]
        let memoryMap = MemoryMap(regions: [])
        func read(_ address: UInt64, count: Int, into buffer: UnsafeMutableRawPointer) -> Bool {
            for offset in stride(from: 0, to: count, by: 4) {
                let (at, overflow) = address.addingReportingOverflow(UInt64(offset))
                guard !overflow, let word = words[at] else { return false }
                withUnsafeBytes(of: word) { buffer.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: min(4, count - offset)) }
            }
            return true
        }
        func localBytes(containing address: UInt64) -> (start: UInt64, bytes: UnsafeRawBufferPointer)? { nil }

        func set64(_ address: UInt64, _ value: UInt64) {
            words[address] = UInt32(truncatingIfNeeded: value)
            words[address + 4] = UInt32(truncatingIfNeeded: value >> 32)
        }
        /// A class at `metadata` with `offsets` in its field offset vector (at word 10).
        func addClass(_ metadata: UInt64, superclass: UInt64, descriptor: UInt64, offsets: [UInt64], flags: UInt32 = 16) {
            set64(metadata + 8, superclass)
            set64(metadata + 40, descriptor)
            words[descriptor] = flags
            words[descriptor &+ 36] = UInt32(offsets.count)
            words[descriptor &+ 40] = 10
            for (index, offset) in offsets.enumerated() { set64(metadata + 80 + UInt64(index) * 8, offset) }
        }
    }

    func testChainReadsOffsetsRootFirst() {
        let memory = FakeMemory()
        memory.addClass(0x1000, superclass: 0, descriptor: 0x9000, offsets: [16, 24])
        memory.addClass(0x2000, superclass: 0x1000, descriptor: 0xa000, offsets: [40])
        memory.addClass(0x3000, superclass: 0x2000, descriptor: 0xb000, offsets: [48, 56])
        let chain = ClassChain(metadata: 0x3000, source: memory)
        XCTAssertEqual(chain?.levels.map(\.fieldOffsets), [[16, 24], [40], [48, 56]])
    }

    func testNonsenseChainsReadAsNil() {
        let memory = FakeMemory()
        // A superclass loop.
        memory.addClass(0x1000, superclass: 0x2000, descriptor: 0x9000, offsets: [16])
        memory.addClass(0x2000, superclass: 0x1000, descriptor: 0xa000, offsets: [24])
        XCTAssertNil(ClassChain(metadata: 0x1000, source: memory))
        // A descriptor at the top of the address space: its fields' addresses wrap.
        memory.addClass(0x3000, superclass: 0, descriptor: 0xFFFF_FFFF_FFFF_FFF0, offsets: [16])
        memory.words[0xFFFF_FFFF_FFFF_FFF0 &+ 36] = nil  // wrapped: no real mapping holds them
        memory.words[0xFFFF_FFFF_FFFF_FFF0 &+ 40] = nil
        XCTAssertNil(ClassChain(metadata: 0x3000, source: memory))
        // A field offset past 2^32; a field count past any class's.
        memory.addClass(0x4000, superclass: 0, descriptor: 0xc000, offsets: [1 << 40])
        XCTAssertNil(ClassChain(metadata: 0x4000, source: memory))
        memory.addClass(0x5000, superclass: 0, descriptor: 0xd000, offsets: [16])
        memory.words[0xd000 + 36] = .max
        XCTAssertNil(ClassChain(metadata: 0x5000, source: memory))
        // A resilient superclass whose stored bounds point nowhere, or put the vector out of reach.
        memory.addClass(0x6000, superclass: 0, descriptor: 0xe000, offsets: [16], flags: 16 | 1 << 29)
        memory.words[0xe000 + 24] = 0x7fff_ffff
        XCTAssertNil(ClassChain(metadata: 0x6000, source: memory))
        memory.words[0xe000 + 24] = 0x100
        memory.set64(0xe000 + 24 + 0x100, UInt64(bitPattern: Int64.max))
        XCTAssertNil(ClassChain(metadata: 0x6000, source: memory))
        // Not a class descriptor.
        memory.addClass(0x7000, superclass: 0, descriptor: 0xf000, offsets: [16], flags: 17)
        XCTAssertNil(ClassChain(metadata: 0x7000, source: memory))
    }
}
