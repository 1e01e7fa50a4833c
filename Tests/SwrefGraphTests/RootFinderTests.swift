import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefTestSupport
import XCTest

/// Roots from a thread's registers and stack and from anonymous memory, on an in-memory target
/// with no images (no symbols, no DWARF: the conservative paths).
final class RootFinderTests: XCTestCase {
    func testStackRedZoneRegistersAndAnonymousMemory() {
        let target = InMemoryTarget()
        let heap = GlibcHeapBuilder(target: target)
        var user: [String: UInt64] = [:]
        for name in ["onStack", "inRedZone", "inRegister", "inAnonymous", "belowRedZone", "inHeapOnly"] { user[name] = heap.malloc(32) }
        heap.finish()
        target.put(user["inHeapOnly"]!, at: heap.heapEnd - 0x100)   // free memory in the top chunk
        let stack: UInt64 = 0x7ffd_0000_0000
        target.map(stack, size: 0x2000, path: "[stack]")
        let rsp = stack + 0x1000
        target.put(user["onStack"]! + 8, at: rsp + 0x100)
        target.put(user["inRedZone"]!, at: rsp - 64)
        target.put(user["belowRedZone"]!, at: rsp - 0x400)     // a dead frame's word
        target.addThread(tid: 42, registers: ["rsp": rsp, "rbx": user["inRegister"]!])
        target.map(0x7fff_a000_0000, size: 0x1000)            // an mmap'd buffer, no blocks in it
        target.put(user["inAnonymous"]!, at: 0x7fff_a000_0800)
        let noImages = ImageList(memoryMap: MemoryMap(regions: []))
        let objects = ObjectTable(heap: MallocHeap(source: target).walk(),
                                  recognizer: SwiftObjectRecognizer(source: target, images: noImages, reflection: nil))
        let scanner = ReferenceScanner(source: target, objects: objects, layouts: ObjectLayouts(reflection: nil, source: target),
                                       symbolizer: Symbolizer(images: noImages))
        let roots = RootFinder(source: target, threads: target.threads, images: noImages, objects: objects, scanner: scanner,
                               values: nil, symbolizer: Symbolizer(images: noImages)).findRoots()
        func kinds(of name: String) -> [RootKind] {
            let object = Int32(objects.addresses.index(of: user[name]!)!)
            return roots.filter { $0.targets.contains(object) }.map(\.kind)
        }
        XCTAssertEqual(kinds(of: "onStack"), [.stack])
        XCTAssertEqual(kinds(of: "inRedZone"), [.stack], "the innermost frame's red zone is live")
        XCTAssertEqual(kinds(of: "inRegister"), [.register])
        XCTAssertEqual(kinds(of: "inAnonymous"), [.conservative])
        XCTAssertEqual(kinds(of: "belowRedZone"), [], "below the red zone is dead stack")
        XCTAssertEqual(kinds(of: "inHeapOnly"), [], "the heap's free memory is not a root")
        XCTAssertTrue(roots.contains { $0.kind == .register && $0.name.hasPrefix("thread 1") }, roots.map(\.name).joined(separator: ", "))
    }
}
