import SwrefMemory
import SwrefSupport

/// A `Target` whose memory is byte buffers at chosen addresses: the analogue of NIO's
/// `EmbeddedChannel` for swref. Tests map regions (with permissions and paths, as
/// `/proc/PID/maps` would list them), put words, bytes and strings into them, give threads
/// registers, and hand the target to any layer — the allocator walks, the object recognizer, the
/// scan — without ptrace, a compiler or a process.
///
/// A region can be mapped without bytes (`backed: false`): it is in the memory map but every
/// read of it fails, like a snapshot region that was never copied and has no fallback.
public final class InMemoryTarget: Target {
    public private(set) var memoryMap = MemoryMap(regions: [])
    public var threads: [ThreadState] = []
    public var identity: TargetIdentity
    public var files: FileResolver = .host
    /// What `readsAreLocal` answers (a snapshot says true, a live process false).
    public var localReads = true
    public var readsAreLocal: Bool { localReads }
    /// Whether `localBytes` hands out the regions' bytes (as a snapshot does); false sends every
    /// read through `read`, as a live process or a core's fallback would.
    public var servesLocalBytes = true
    /// How many times `read` was called: lets a test see whether a hot path used local bytes.
    public private(set) var readCalls = 0

    /// Parallel to `memoryMap.regions`: each region's bytes, or nil when it has none.
    private var storage: [UnsafeMutableRawBufferPointer?] = []

    public init(pid: Int32? = 4242, executablePath: String? = "/app/server", name: String? = nil) {
        identity = TargetIdentity(pid: pid, executablePath: executablePath,
                                  name: name ?? pid.map { "in-memory PID \($0)" } ?? "an in-memory target")
    }

    deinit {
        for buffer in storage { buffer?.deallocate() }
    }

    // MARK: Regions

    /// Maps `size` bytes at `start`, zero-filled. `permissions` reads as in `/proc/PID/maps`
    /// (`rw-p`, `r-xp`, `---p`, `rw-s`). Regions may not overlap; they are kept sorted.
    @discardableResult
    public func map(_ start: UInt64, size: UInt64, _ permissions: String = "rw-p", path: String = "",
                    inode: UInt64? = nil, fileOffset: UInt64 = 0, backed: Bool = true) -> MemoryRegion {
        let perms = Array(permissions)
        precondition(perms.count == 4, "permissions look like rw-p")
        // The highest region ends at 2^64 - 1 (an end past it is not a UInt64).
        precondition(size > 0 && size <= UInt64.max - start, "a region of \(size) bytes does not fit at 0x\(String(start, radix: 16))")
        let region = MemoryRegion(start: start, end: start + size, readable: perms[0] == "r", writable: perms[1] == "w",
                                  executable: perms[2] == "x", shared: perms[3] == "s", fileOffset: fileOffset,
                                  inode: inode ?? (path.hasPrefix("/") ? 1000 + UInt64(memoryMap.regions.count) : 0), path: path)
        precondition(!memoryMap.regions.contains { $0.start < region.end && region.start < $0.end },
                     "region 0x\(String(start, radix: 16)) overlaps another")
        let index = memoryMap.regions.firstIndex { $0.start > start } ?? memoryMap.regions.count
        var buffer: UnsafeMutableRawBufferPointer? = nil
        if backed {
            buffer = .allocate(byteCount: Int(region.size), alignment: 16)
            buffer!.initializeMemory(as: UInt8.self, repeating: 0)
        }
        var regions = memoryMap.regions
        regions.insert(region, at: index)
        memoryMap = MemoryMap(regions: regions)
        storage.insert(buffer, at: index)
        return region
    }

    /// The bytes of the region holding `address`, and the offset of `address` in them.
    private func bytes(at address: UInt64, count: Int) -> UnsafeMutableRawPointer? {
        guard let index = MemoryMap.index(in: memoryMap.regions, containing: address), let buffer = storage[index] else { return nil }
        let region = memoryMap.regions[index]
        guard UInt64(count) <= region.end - address else { return nil }
        return buffer.baseAddress! + Int(address - region.start)
    }

    // MARK: Writing

    /// Writes raw bytes; every byte must lie in a backed region (a test's mistake otherwise). The
    /// bytes may run from one region into the next adjacent one.
    public func put(bytes: [UInt8], at address: UInt64) {
        var done = 0
        while done < bytes.count {
            let cursor = address + UInt64(done)
            guard let index = MemoryMap.index(in: memoryMap.regions, containing: cursor), let buffer = storage[index] else {
                preconditionFailure("0x\(String(cursor, radix: 16)) is not in a backed region")
            }
            let region = memoryMap.regions[index]
            let length = Int(min(UInt64(bytes.count - done), region.end - cursor))
            bytes[done..<done + length].withUnsafeBytes {
                (buffer.baseAddress! + Int(cursor - region.start)).copyMemory(from: $0.baseAddress!, byteCount: length)
            }
            done += length
        }
    }

    public func put(_ word: UInt64, at address: UInt64) {
        put(bytes: withUnsafeBytes(of: word.littleEndian) { Array($0) }, at: address)
    }

    public func put(words: [UInt64], at address: UInt64) {
        for (index, word) in words.enumerated() { put(word, at: address + UInt64(index * 8)) }
    }

    public func put32(_ value: UInt32, at address: UInt64) {
        put(bytes: withUnsafeBytes(of: value.littleEndian) { Array($0) }, at: address)
    }

    public func put16(_ value: UInt16, at address: UInt64) {
        put(bytes: withUnsafeBytes(of: value.littleEndian) { Array($0) }, at: address)
    }

    /// A NUL-terminated string.
    public func put(cString: String, at address: UInt64) {
        put(bytes: Array(cString.utf8) + [0], at: address)
    }

    /// A 32-bit relative pointer at `field` to `target`, as Swift metadata holds them.
    public func putRelative(to target: UInt64, at field: UInt64) {
        let offset = Int64(bitPattern: target &- field)
        precondition(offset >= Int64(Int32.min) && offset <= Int64(Int32.max), "a relative pointer reaches ±2 GiB")
        put32(UInt32(bitPattern: Int32(offset)), at: field)
    }

    /// The word at `address` as the test wrote it (no counting of reads).
    public func word(at address: UInt64) -> UInt64 {
        guard let pointer = bytes(at: address, count: 8) else { preconditionFailure("0x\(String(address, radix: 16)) is not backed") }
        return pointer.loadUnaligned(as: UInt64.self)
    }

    // MARK: Threads

    /// Adds a thread whose registers are zero but those named (`rsp`, `rip`, `rbx`, … as in
    /// `ThreadState.dwarfRegisterNames`).
    @discardableResult
    public func addThread(tid: Int32, registers: [String: UInt64] = [:], fsBase: UInt64 = 0) -> ThreadState {
        var dwarf = [UInt64](repeating: 0, count: ThreadState.dwarfRegisterNames.count)
        for (name, value) in registers {
            guard let slot = ThreadState.dwarfRegisterNames.firstIndex(of: name) else { preconditionFailure("no register \(name)") }
            dwarf[slot] = value
        }
        let thread = ThreadState(tid: tid, dwarfRegisters: dwarf, fsBase: fsBase, gsBase: 0)
        threads.append(thread)
        return thread
    }

    // MARK: MemorySource

    public func read(_ address: UInt64, count: Int, into buffer: UnsafeMutableRawPointer) -> Bool {
        readCalls += 1
        guard count >= 0 else { return false }
        var done = 0
        var cursor = address
        // Region by region: a read may span adjacent regions, as it may in a process.
        while done < count {
            guard let index = MemoryMap.index(in: memoryMap.regions, containing: cursor),
                  memoryMap.regions[index].readable, let bytes = storage[index] else { return false }
            let region = memoryMap.regions[index]
            let available = region.end - cursor
            let length = Int(min(UInt64(count - done), available))
            (buffer + done).copyMemory(from: bytes.baseAddress! + Int(cursor - region.start), byteCount: length)
            done += length
            cursor = region.end
        }
        return true
    }

    public func localBytes(containing address: UInt64) -> (start: UInt64, bytes: UnsafeRawBufferPointer)? {
        guard servesLocalBytes, let index = MemoryMap.index(in: memoryMap.regions, containing: address),
              memoryMap.regions[index].readable, let bytes = storage[index] else { return nil }
        return (memoryMap.regions[index].start, UnsafeRawBufferPointer(bytes))
    }
}
