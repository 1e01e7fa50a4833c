import CSwrefSystem
import Glibc
import SwrefImages
import SwrefMemory
import SwrefSupport

/// What the fork snapshot and the pre-copy share about their injection holder
/// (SwrefInjectionHolder.c): where to inject, and how its report reads.
public enum InjectionHolder {
    /// A `syscall` instruction in the target's code, for the holder to point a thread at.
    public static func findSyscallInstruction(_ map: MemoryMap, pid: Int32) -> UInt64? {
        // Prefer libc's code; the vDSO is a fallback.
        let code = map.regions.filter { $0.executable && $0.readable && $0.path.contains("libc.so") }
            + map.regions.filter { $0.executable && $0.readable && $0.path == "[vdso]" }
        for region in code {
            var buffer = [UInt8](repeating: 0, count: Int(min(region.size, 1 << 20)))
            let n = buffer.withUnsafeMutableBytes { LiveCapture.readRemote(pid: pid, into: $0.baseAddress!, at: region.start, count: $0.count) }
            guard n > 2 else { continue }
            for index in 0..<(n - 1) where buffer[index] == 0x0f && buffer[index + 1] == 0x05 {
                return region.start + UInt64(index)
            }
        }
        return nil
    }

    /// The holder's first report; its failure as swref's error (`injected`: what the target was
    /// made to do, for "the target could not …").
    public static func readReport(_ fd: Int32, pid: Int32, injected: String) throws -> swref_fork_report {
        var report = swref_fork_report()
        guard swref_read_all(fd, &report, MemoryLayout<swref_fork_report>.size) == 0 else {
            throw SwrefError.processExited(pid)
        }
        guard report.error != 0 else { return report }
        let err = -report.error
        switch err {
        case ESRCH: throw ProcFS.exists(pid) ? SwrefError.processExited(pid) : SwrefError.noSuchProcess(pid)
        case EPERM where report.failed_stage == 1:
            throw SwrefError.permissionDenied(pid, ProcFS.permissionHint(pid))
        case _ where report.failed_stage == 2:
            throw SwrefError.notSupported("the target could not \(injected) (\(String(cString: strerror(err))))")
        default: throw SwrefError.system("injection", errno: err, "stopping or injecting into PID \(pid)")
        }
    }
}
