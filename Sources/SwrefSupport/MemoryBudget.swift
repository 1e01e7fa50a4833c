import Glibc

/// How much memory swref may use before it touches a target: the tightest of what the machine has
/// available (`MemAvailable`), what the memory cgroups swref runs in leave under their limits
/// (cgroup v2 `memory.max`, v1 `memory.limit_in_bytes`, every level up to the mount's root), and
/// `--max-memory`. The parsers work on strings and the reader on a file-reading function, so the
/// tests feed them sample texts and fake hierarchies.
public struct MemoryBudget: Sendable, Equatable {
    /// One limit: the bytes it leaves swref, and where they come from ("MemAvailable",
    /// "cgroup /system.slice/x memory.max 2.0 GiB", "--max-memory").
    public struct Limit: Sendable, Equatable {
        public var bytes: UInt64
        public var source: String
        /// Which knob the user turns to raise it.
        public var kind: Kind
        /// For a cgroup's limit: its path (as `/proc/self/cgroup` names it) and hierarchy (2 or 1).
        public var cgroupPath: String?
        public var cgroupVersion: Int

        public enum Kind: Sendable, Equatable { case machine, cgroup, option }

        public init(bytes: UInt64, source: String, kind: Kind, cgroupPath: String? = nil, cgroupVersion: Int = 0) {
            self.bytes = bytes
            self.source = source
            self.kind = kind
            self.cgroupPath = cgroupPath
            self.cgroupVersion = cgroupVersion
        }

        /// Whether the process whose `/proc/PID/cgroup` this is sits in this limit's cgroup or
        /// below it — its memory then counts against the same limit (a sidecar in the target's pod).
        public func holds(procCgroup: String) -> Bool {
            guard let cgroupPath else { return false }
            let paths = MemoryBudget.cgroupPaths(procCgroup)
            guard let path = cgroupVersion == 2 ? paths.v2 : paths.v1Memory else { return false }
            return cgroupPath == "/" || path == cgroupPath || path.hasPrefix(cgroupPath + "/")
        }
    }

    /// Every limit found; none means nothing could be read (no check is made then).
    public var limits: [Limit]

    public init(limits: [Limit]) { self.limits = limits }

    /// The limit that leaves the least.
    public var tightest: Limit? { limits.min { $0.bytes < $1.bytes } }

    /// The budget now: `/proc/meminfo`, swref's own memory cgroups (`/proc/self/cgroup`, located
    /// through `/proc/self/mountinfo`) and `maxMemory`.
    public static func current(maxMemory: UInt64?) -> MemoryBudget {
        budget(maxMemory: maxMemory, read: ProcFS.readFile)
    }

    /// The same with another way to read files (the tests' fake `/proc` and `/sys/fs/cgroup`).
    public static func budget(maxMemory: UInt64?, read: (String) -> String?) -> MemoryBudget {
        var limits: [Limit] = []
        if let available = read("/proc/meminfo").flatMap(memAvailable) {
            limits.append(Limit(bytes: available, source: "MemAvailable", kind: .machine))
        }
        if let cgroup = read("/proc/self/cgroup"), let mountinfo = read("/proc/self/mountinfo") {
            limits += cgroupLimits(procCgroup: cgroup, mountinfo: mountinfo, read: read)
        }
        if let maxMemory { limits.append(Limit(bytes: maxMemory, source: "--max-memory \(formatBytes(maxMemory))", kind: .option)) }
        return MemoryBudget(limits: limits)
    }

    // MARK: Parsers

    /// `MemAvailable` of `/proc/meminfo`, in bytes.
    public static func memAvailable(_ meminfo: String) -> UInt64? {
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let value = UInt64(fields[1]) else { return nil }
            return fields.count >= 3 && fields[2] == "kB" ? value * 1024 : value
        }
        return nil
    }

    /// A limit file's value: nil for none ("max" in v2; v1 writes "unlimited" as a number near 2^63).
    public static func limitValue(_ text: String) -> UInt64? {
        let trimmed = text.trimmingCharacters(in: " \n\t")
        guard trimmed != "max", let value = UInt64(trimmed), value < 1 << 62 else { return nil }
        return value
    }

    /// A usage file's value (`memory.current`, `memory.usage_in_bytes`).
    public static func usageValue(_ text: String) -> UInt64? { UInt64(text.trimmingCharacters(in: " \n\t")) }

    /// The page cache the kernel reclaims before it would kill anything: `inactive_file` of a v2
    /// `memory.stat`, `total_inactive_file` of a v1 one (the "working set" container tools count
    /// is usage less this).
    public static func inactiveFile(_ stat: String, v1: Bool) -> UInt64 {
        let key = v1 ? "total_inactive_file" : "inactive_file"
        for line in stat.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, fields[0] == key, let value = UInt64(fields[1]) { return value }
        }
        return 0
    }

    /// A size as people write it: `512M`, `2G`, `1.5GiB`, `64k`, `1048576` (bytes); binary units.
    public static func parseSize(_ text: String) -> UInt64? {
        var digits = Substring(text.trimmingCharacters(in: " "))
        let lower = digits.lowercased()
        var shift = 0
        for (suffixes, bits) in [(["tib", "tb", "t"], 40), (["gib", "gb", "g"], 30), (["mib", "mb", "m"], 20),
                                 (["kib", "kb", "k"], 10), (["b"], 0)] {
            if let suffix = suffixes.first(where: { lower.hasSuffix($0) }) {
                digits = digits.dropLast(suffix.count)
                shift = bits
                break
            }
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isNumber || $0 == "." }),
              let value = Double(String(digits)), value > 0 else { return nil }
        let bytes = value * Double(UInt64(1) << shift)
        guard bytes < Double(UInt64(1) << 62) else { return nil }
        return UInt64(bytes)
    }

    /// A cgroup hierarchy mounted here: `root` is the mount's root inside the hierarchy (a
    /// container without a cgroup namespace mounts its own cgroup as the root).
    public struct CgroupMount: Equatable {
        public var mountPoint: String
        public var root: String
        /// 2, or 1 for a v1 hierarchy with the memory controller.
        public var version: Int

        public init(mountPoint: String, root: String, version: Int) {
            self.mountPoint = mountPoint
            self.root = root
            self.version = version
        }
    }

    /// The cgroup2 mount and the v1 hierarchy holding the memory controller, from `/proc/self/mountinfo`.
    public static func cgroupMounts(_ mountinfo: String) -> [CgroupMount] {
        var mounts: [CgroupMount] = []
        for line in mountinfo.split(separator: "\n") {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS
            let fields = line.split(separator: " ")
            guard fields.count >= 7, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { continue }
            let type = fields[dash + 1]
            let superOptions = dash + 3 < fields.count ? fields[dash + 3].split(separator: ",") : []
            let root = unescapeMountField(fields[3]), point = unescapeMountField(fields[4])
            if type == "cgroup2" {
                mounts.append(CgroupMount(mountPoint: point, root: root, version: 2))
            } else if type == "cgroup", superOptions.contains("memory") {
                mounts.append(CgroupMount(mountPoint: point, root: root, version: 1))
            }
        }
        return mounts
    }

    /// mountinfo writes a space as `\040` (and a few others in octal).
    private static func unescapeMountField(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "\\"), i + 3 < utf8.count,
               let value = UInt8(String(decoding: utf8[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                bytes.append(value)
                i += 4
            } else {
                bytes.append(utf8[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// swref's cgroup in the v2 hierarchy (`0::PATH`) and in the v1 memory hierarchy (`N:…memory…:PATH`).
    public static func cgroupPaths(_ procCgroup: String) -> (v2: String?, v1Memory: String?) {
        var v2: String? = nil, v1: String? = nil
        for line in procCgroup.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty { v2 = String(parts[2]) }
            if parts[1].split(separator: ",").contains("memory") { v1 = String(parts[2]) }
        }
        return (v2, v1)
    }

    /// What every memory cgroup from swref's own up to the mount's root leaves under its limit:
    /// the limit less the usage, less the inactive page cache the kernel reclaims first. A level
    /// without a limit ("max"), or whose files are missing, adds nothing.
    public static func cgroupLimits(procCgroup: String, mountinfo: String, read: (String) -> String?) -> [Limit] {
        let paths = cgroupPaths(procCgroup)
        var limits: [Limit] = []
        for mount in cgroupMounts(mountinfo) {
            guard let path = mount.version == 2 ? paths.v2 : paths.v1Memory else { continue }
            // Inside the mount: the path less the mount's root (a container's own cgroup mounted as /).
            var relative = path
            if mount.root != "/" {
                guard path == mount.root || path.hasPrefix(mount.root + "/") else { continue }
                relative = String(path.dropFirst(mount.root.count))
            }
            var components = relative.split(separator: "/").map(String.init)
            let (limitFile, usageFile) = mount.version == 2 ? ("memory.max", "memory.current")
                                                            : ("memory.limit_in_bytes", "memory.usage_in_bytes")
            while true {
                let directory = ([mount.mountPoint == "/" ? "" : mount.mountPoint] + components).joined(separator: "/")
                if let limit = read(directory + "/" + limitFile).flatMap(limitValue),
                   let usage = read(directory + "/" + usageFile).flatMap(usageValue) {
                    let reclaimable = read(directory + "/memory.stat").map { inactiveFile($0, v1: mount.version == 1) } ?? 0
                    let used = usage - min(usage, reclaimable)
                    let name = mount.root == "/" ? "/" + components.joined(separator: "/")
                                                 : mount.root + (components.isEmpty ? "" : "/" + components.joined(separator: "/"))
                    limits.append(Limit(bytes: limit - min(limit, used),
                                        source: "cgroup \(name) \(limitFile) \(formatBytes(limit)), \(formatBytes(used)) in use",
                                        kind: .cgroup, cgroupPath: name, cgroupVersion: mount.version))
                }
                if components.isEmpty { break }
                components.removeLast()
            }
        }
        return limits
    }
}

/// The capture or analysis would need more memory (or disk) than swref may use: refused before
/// the target is touched (exit 3).
public struct BudgetExceeded: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
