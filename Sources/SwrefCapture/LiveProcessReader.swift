import CSwrefSystem
import Glibc
import SwrefImages
import SwrefMemory
import SwrefSupport

/// Reads a live process with `process_vm_readv`; once the process is gone, file-backed mappings
/// are still served from their files.
public final class LiveProcessReader: MemorySource {
    public let pid: Int32
    public let memoryMap: MemoryMap
    private let files: MappedFileReader

    public init(pid: Int32, memoryMap: MemoryMap) {
        self.pid = pid
        self.memoryMap = memoryMap
        self.files = MappedFileReader(memoryMap: memoryMap)
    }

    public func read(_ address: UInt64, count: Int, into buffer: UnsafeMutableRawPointer) -> Bool {
        if count == 0 { return true }
        if swref_read_remote(pid, buffer, address, count) == count { return true }
        return files.read(address, count: count, into: buffer)
    }
}
