import Foundation
import SwrefKit
import XCTest

/// The memory budget: what swref may use (meminfo, cgroups, --max-memory), what a capture would
/// need (the target's mappings), and the refusal — exit 3, one line, the target never touched.
final class MemoryBudgetTests: XCTestCase {
    // MARK: Parsers on sample texts

    func testParsesMeminfoAndSizes() {
        let meminfo = "MemTotal:       24683792 kB\nMemFree:        16134424 kB\nMemAvailable:   22598880 kB\nBuffers: 1 kB\n"
        XCTAssertEqual(MemoryBudget.memAvailable(meminfo), 22598880 * 1024)
        XCTAssertNil(MemoryBudget.memAvailable("MemTotal: 1 kB\n"))
        XCTAssertEqual(MemoryBudget.parseSize("512M"), 512 << 20)
        XCTAssertEqual(MemoryBudget.parseSize("2G"), 2 << 30)
        XCTAssertEqual(MemoryBudget.parseSize("2GiB"), 2 << 30)
        XCTAssertEqual(MemoryBudget.parseSize("1.5g"), 3 << 29)
        XCTAssertEqual(MemoryBudget.parseSize("64k"), 64 << 10)
        XCTAssertEqual(MemoryBudget.parseSize("1048576"), 1 << 20)
        XCTAssertNil(MemoryBudget.parseSize("lots"))
        XCTAssertNil(MemoryBudget.parseSize("-1G"))
        XCTAssertNil(MemoryBudget.parseSize("G"))
        XCTAssertNil(MemoryBudget.parseSize("0"))
    }

    func testParsesLimitsAndStats() {
        XCTAssertNil(MemoryBudget.limitValue("max\n"))
        XCTAssertNil(MemoryBudget.limitValue("9223372036854771712\n"), "v1's unlimited")
        XCTAssertEqual(MemoryBudget.limitValue("104857600\n"), 104857600)
        XCTAssertNil(MemoryBudget.limitValue(""))
        XCTAssertEqual(MemoryBudget.inactiveFile("anon 5\nfile 9\nactive_file 3\ninactive_file 4096\n", v1: false), 4096)
        XCTAssertEqual(MemoryBudget.inactiveFile("cache 1\ninactive_file 7\ntotal_inactive_file 8192\n", v1: true), 8192)
        XCTAssertEqual(MemoryBudget.inactiveFile("anon 5\n", v1: false), 0)
    }

    func testParsesProcCgroupAndMountinfo() {
        let hybrid = """
        9:name=systemd:/
        4:memory:/process_api/de38
        1:cpu,cpuacct:/
        0::/user.slice/x.scope
        """
        let paths = MemoryBudget.cgroupPaths(hybrid)
        XCTAssertEqual(paths.v1Memory, "/process_api/de38")
        XCTAssertEqual(paths.v2, "/user.slice/x.scope")
        XCTAssertEqual(MemoryBudget.cgroupPaths("0::/\n").v1Memory, nil)

        let mountinfo = """
        25 1 0:22 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        30 25 0:26 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
        31 25 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        36 25 0:31 /docker/abc /sys/fs/cgroup/unified\\040dir rw,relatime - cgroup2 cgroup2 rw
        """
        let mounts = MemoryBudget.cgroupMounts(mountinfo)
        XCTAssertEqual(mounts, [.init(mountPoint: "/sys/fs/cgroup/memory", root: "/", version: 1),
                                .init(mountPoint: "/sys/fs/cgroup/unified dir", root: "/docker/abc", version: 2)])
    }

    /// A fake v2 hierarchy: the tightest level wins, "max" and missing files add nothing, the
    /// inactive page cache counts as free, and a container's mount root is taken off the path.
    func testCgroupLimitsWalkUpNestedPaths() {
        let files: [String: String] = [
            "/proc/meminfo": "MemAvailable: 8388608 kB\n",
            "/proc/self/cgroup": "0::/kubepods/pod1/swref\n",
            "/proc/self/mountinfo": "40 1 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
            // swref's own: no limit.
            "/sys/fs/cgroup/kubepods/pod1/swref/memory.max": "max\n",
            "/sys/fs/cgroup/kubepods/pod1/swref/memory.current": "1048576\n",
            // The pod (which the target shares): 1 GiB, 900 MiB in use of which 100 MiB inactive cache.
            "/sys/fs/cgroup/kubepods/pod1/memory.max": "1073741824\n",
            "/sys/fs/cgroup/kubepods/pod1/memory.current": "\(900 << 20)\n",
            "/sys/fs/cgroup/kubepods/pod1/memory.stat": "anon 1\ninactive_file \(100 << 20)\n",
            // kubepods: a limit but its usage file is missing — skipped; the root has no files.
            "/sys/fs/cgroup/kubepods/memory.max": "4294967296\n",
        ]
        let budget = MemoryBudget.budget(maxMemory: nil) { files[$0] }
        XCTAssertEqual(budget.limits.count, 2, "\(budget.limits)")
        XCTAssertEqual(budget.tightest?.bytes, 224 << 20)
        XCTAssertEqual(budget.tightest?.kind, .cgroup)
        XCTAssertEqual(budget.tightest?.source, "cgroup /kubepods/pod1 memory.max 1.0 GiB, 800.0 MiB in use")

        let capped = MemoryBudget.budget(maxMemory: 100 << 20) { files[$0] }
        XCTAssertEqual(capped.tightest, .init(bytes: 100 << 20, source: "--max-memory 100.0 MiB", kind: .option))

        // A container without a cgroup namespace: its own cgroup is the mount's root (v1 here).
        let container: [String: String] = [
            "/proc/self/cgroup": "5:memory:/docker/abc/inner\n0::/\n",
            "/proc/self/mountinfo": "30 25 0:26 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n",
            "/sys/fs/cgroup/memory/inner/memory.limit_in_bytes": "9223372036854771712\n",
            "/sys/fs/cgroup/memory/inner/memory.usage_in_bytes": "5\n",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes": "\(512 << 20)\n",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes": "\(12 << 20)\n",
            "/sys/fs/cgroup/memory/memory.stat": "total_inactive_file \(2 << 20)\n",
        ]
        let limits = MemoryBudget.budget(maxMemory: nil) { container[$0] }.limits
        XCTAssertEqual(limits, [.init(bytes: 502 << 20, source: "cgroup /docker/abc memory.limit_in_bytes 512.0 MiB, 10.0 MiB in use",
                                      kind: .cgroup, cgroupPath: "/docker/abc", cgroupVersion: 1)])
        // Which processes that limit holds: its cgroup and those below, in the same hierarchy.
        let pod = try! XCTUnwrap(budget.tightest)
        XCTAssertEqual(pod.cgroupPath, "/kubepods/pod1")
        XCTAssertTrue(pod.holds(procCgroup: "0::/kubepods/pod1/app\n"), "the target beside swref in its pod")
        XCTAssertTrue(pod.holds(procCgroup: "0::/kubepods/pod1\n"))
        XCTAssertFalse(pod.holds(procCgroup: "0::/kubepods/pod10/app\n"), "a prefix of the name is not a parent")
        XCTAssertFalse(pod.holds(procCgroup: "0::/kubepods/pod2/app\n"))
        XCTAssertFalse(pod.holds(procCgroup: "4:memory:/kubepods/pod1/app\n"), "another hierarchy")
        XCTAssertTrue(limits[0].holds(procCgroup: "4:memory:/docker/abc/inner\n0::/\n"))
        XCTAssertFalse(MemoryBudget.Limit(bytes: 1, source: "MemAvailable", kind: .machine).holds(procCgroup: "0::/\n"))

        // Nothing readable: no limit at all (no check is made).
        XCTAssertEqual(MemoryBudget.budget(maxMemory: nil) { _ in nil }.limits, [])
        // Everything "max": only the machine's.
        let unlimited = files.filter { !$0.key.hasPrefix("/sys") }
            .merging(["/sys/fs/cgroup/kubepods/pod1/swref/memory.max": "max\n",
                      "/sys/fs/cgroup/kubepods/pod1/swref/memory.current": "1\n"]) { $1 }
        XCTAssertEqual(MemoryBudget.budget(maxMemory: nil) { unlimited[$0] }.limits.map(\.kind), [.machine])
    }

    /// What a pre-copy copies: the resident and swapped bytes of anonymous mappings, file mappings
    /// that are written whole, no code or [vvar]; stop-the-world: every mapping's whole size.
    func testEstimateFromSmaps() {
        let smaps = """
        55afff655000-55afff65b000 r-xp 00000000 fe:00 16220350                   /tmp/census
        Size:                 24 kB
        Rss:                  24 kB
        55afff65b000-55afff65c000 rw-p 00006000 fe:00 16220350                   /tmp/census
        Size:                  4 kB
        Rss:                   4 kB
        55b000000000-55b000400000 rw-p 00000000 00:00 0                          [heap]
        Size:               4096 kB
        Rss:                1000 kB
        Pss:                1000 kB
        Swap:                 24 kB
        VmFlags: rd wr mr mw me ac sd
        7fcc39a00000-7fcc3a200000 rw-p 00000000 00:00 0 
        Size:               8192 kB
        Rss:                  20 kB
        7ffd1c5f0000-7ffd1c5f4000 r--p 00000000 00:00 0                          [vvar]
        Rss:                   0 kB
        """
        XCTAssertEqual(CaptureEstimate.copyBytes(smaps: smaps), (4 + 1000 + 24 + 20) * 1024)
        let map = MemoryMap(parsing: smaps)
        XCTAssertEqual(map.regions.count, 5)
        let stopped: UInt64 = 4096 + 5120 * 1024 + 10240 * 1024
        XCTAssertEqual(CaptureEstimate.copyBytes(map: map, method: .stopTheWorld), stopped)
        let core = CaptureEstimate.core(map, fileSize: 1 << 40)
        let coreHeap: UInt64 = 12288 * 1024
        XCTAssertEqual(core.analysisBytes, (32 << 20) + coreHeap / 4 * 3)
        XCTAssertEqual(CaptureEstimate.core(map, fileSize: 1 << 20).analysisBytes, (32 << 20) + (3 << 18))
    }

    // MARK: Real programs

    /// Context switches of every thread: a stop (ptrace interrupt), an injection or a fork wakes a
    /// thread sleeping in pause(); reading smaps or maps does not.
    private func contextSwitches(_ pid: Int32) -> [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.sorted().map { tid in
            let status = (try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/status", encoding: .utf8)) ?? ""
            return tid + ":" + status.split(separator: "\n").filter { $0.hasSuffix("ctxt_switches") || $0.contains("ctxt_switches:") }
                .joined(separator: ",")
        }
    }

    /// The same once the target sleeps (it has printed READY and is on its way into pause()).
    private func settledContextSwitches(_ pid: Int32) -> [String] {
        var last = contextSwitches(pid)
        for _ in 0..<50 {
            usleep(50_000)
            let now = contextSwitches(pid)
            if now == last { return now }
            last = now
        }
        return last
    }

    private func assertRefused(_ result: Shell.Result, contains texts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, 3, result.stderr, file: file, line: line)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "one line: \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stderr.hasPrefix("swref: "), result.stderr, file: file, line: line)
        XCTAssertFalse(result.stderr.contains("paused"), result.stderr, file: file, line: line)
        for text in texts { XCTAssertTrue(result.stderr.contains(text), "\(text) in: \(result.stderr)", file: file, line: line) }
    }

    /// A 200 MiB heap against --max-memory 64M: refused before the target is touched (no thread of
    /// it woke, no tracer), exit 3; with 4G it is captured (and then its thread did wake: the
    /// check of the check).
    func testMaxMemorySmallerThanTheHeapRefusesBeforeTouchingTheTarget() throws {
        let program = try RunningProgram(try TestPrograms.binary("census", .optimized), ["1000", "500", "200"])
        defer { program.stop() }
        let out = TestPrograms.buildDirectory.appendingPathComponent("budget.out").path
        let before = settledContextSwitches(program.pid)
        XCTAssertFalse(before.isEmpty)
        for method in ["precopy", "fork", "stop-the-world"] {
            let refused = try Shell.swref(["attach", "\(program.pid)", "--capture", method, "--max-memory", "64M", "-o", out])
            assertRefused(refused, contains: ["the copy of PID \(program.pid) and its analysis would need about",
                                              "more than the 64.0 MiB available (--max-memory 64.0 MiB): raise --max-memory",
                                              method == "stop-the-world" ? "mapped to copy" : "resident to copy", "swref dump"])
            XCTAssertEqual(contextSwitches(program.pid), before, "the target was woken (\(method))")
            XCTAssertEqual(program.tracerPid, "0")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
        // The figure: 200 MiB resident to copy at least, and the analysis on top.
        let refused = try Shell.swref(["attach", "\(program.pid)", "--max-memory", "64M", "-o", out])
        let need = refused.stderr.components(separatedBy: "need about ").last?.split(separator: " ").first.flatMap { Double($0) } ?? 0
        XCTAssertGreaterThan(need, 200, refused.stderr)
        XCTAssertLessThan(need, 400, refused.stderr)

        let leaks = try Shell.swref(["leaks", "\(program.pid)", "--max-memory", "100M"])
        assertRefused(leaks, contains: ["raise --max-memory"])
        let dump = try Shell.swref(["dump", "\(program.pid)", "--max-memory", "100M", "--capture", "precopy", "-o", out + ".core"])
        assertRefused(dump, contains: ["the copy of PID \(program.pid) would need about", "writes the core through a window"])
        XCTAssertEqual(contextSwitches(program.pid), before, "the target was woken")

        let passed = try Shell.swref(["attach", "\(program.pid)", "--max-memory", "4G", "--timings", "-o", out])
        XCTAssertEqual(passed.status, 0, passed.stderr)
        XCTAssertTrue(passed.stderr.contains("paused PID \(program.pid)"), passed.stderr)
        XCTAssertTrue(passed.stderr.contains("swref: memory estimated "), passed.stderr)
        XCTAssertTrue(passed.stderr.contains("of 4.0 GiB available (--max-memory 4.0 GiB)")
                      || passed.stderr.contains("available (MemAvailable)") || passed.stderr.contains("available (cgroup"), passed.stderr)
        XCTAssertNotEqual(contextSwitches(program.pid), before, "a capture that did happen went unseen: the check is blind")
        XCTAssertEqual(try Shell.swref(["attach", "\(program.pid)", "--max-memory", "lots"]).status, 64)

        // With no method named, the same dump is written from a pre-copy spilled to disk, and reads back.
        let inPlace = try Shell.swref(["dump", "\(program.pid)", "--max-memory", "100M", "-o", out + ".core"])
        XCTAssertEqual(inPlace.status, 0, inPlace.stderr)
        XCTAssertTrue(inPlace.stderr.contains("copying it to an unlinked file in"), inPlace.stderr)
        XCTAssertTrue(inPlace.stderr.contains("(pre-copy, spilled to disk)"), inPlace.stderr)
        let core = try Shell.swref(["core", program.process.executableURL!.path, out + ".core", "--format", "text"])
        XCTAssertEqual(core.status, 0, core.stderr)
        XCTAssertTrue(core.stdout.contains("census.Node"), core.stdout)
        try? FileManager.default.removeItem(atPath: out + ".core")
    }

    /// A pre-copy that fits but cannot be made (the target has no free descriptor for the
    /// userfaultfd) falls back to stop-the-world, whose buffers cost every mapping's whole size: the
    /// check is made again on that figure, and the fallback refused — the target left running,
    /// untraced, with its descriptors as they were.
    func testStopTheWorldFallbackIsCheckedAgain() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else { throw XCTSkip("no prlimit") }
        let program = try RunningProgram(try TestPrograms.binary("census", .optimized), ["1000", "500", "200"])
        defer { program.stop() }
        let descriptors = { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(program.pid)/fd"))?.sorted() ?? [] }
        let open = descriptors()
        var limit = 0
        while open.contains(String(limit)) { limit += 1 }
        XCTAssertEqual(try Shell.run("/usr/bin/prlimit", ["--pid", "\(program.pid)", "--nofile=\(limit):4096"]).status, 0)
        // Between the two estimates: the pre-copy's (resident) fits, stop-the-world's (mapped) does not.
        let resident = try Shell.swref(["attach", "\(program.pid)", "--max-memory", "1M"])
        let mapped = try Shell.swref(["attach", "\(program.pid)", "--capture", "stop-the-world", "--max-memory", "1M"])
        func need(_ result: Shell.Result) -> UInt64? {
            // "need about 287.0 MiB (…": "287.0MiB"
            (result.stderr.components(separatedBy: "need about ").last?.split(separator: " ").prefix(2).joined())
                .flatMap { MemoryBudget.parseSize($0) }
        }
        let low = try XCTUnwrap(need(resident), resident.stderr), high = try XCTUnwrap(need(mapped), mapped.stderr)
        XCTAssertLessThan(low + (16 << 20), high)
        let between = (low + high) / 2
        let refused = try Shell.swref(["attach", "\(program.pid)", "--max-memory", "\(between)", "-o",
                                       TestPrograms.buildDirectory.appendingPathComponent("fallback.out").path])
        assertRefused(refused, contains: ["stopping PID \(program.pid) for the whole copy instead (no pre-copy (",
                                          "Too many open files", "mapped to copy", "raise --max-memory"])
        XCTAssertEqual(program.tracerPid, "0")
        XCTAssertEqual(descriptors(), open)
        XCTAssertTrue(["S", "R"].contains(program.state), program.state)
    }

    /// `swref core`: only the analysis counts (the core is mapped); `swref dump`: the core's size
    /// against the free space of the file system it goes to (a 16 MiB tmpfs here).
    func testCoreAndDumpChecks() throws {
        let program = try RunningProgram(try TestPrograms.binary("census", .optimized), ["100", "50", "40"])
        defer { program.stop() }
        let core = TestPrograms.buildDirectory.appendingPathComponent("budget.core").path
        let dumped = try Shell.swref(["dump", "\(program.pid)", "-o", core])
        XCTAssertEqual(dumped.status, 0, dumped.stderr)
        let refused = try Shell.swref(["core", core, "--max-memory", "8M", "-o", core + ".out"])
        assertRefused(refused, contains: ["the analysis of \(core) would need about", "the core itself is mapped, not copied",
                                          "raise --max-memory"])
        let leaks = try Shell.swref(["leaks", "--core", core, "--max-memory", "8M"])
        assertRefused(leaks, contains: ["the analysis of \(core)"])
        let read = try Shell.swref(["core", core, "--max-memory", "1G", "--timings", "-o", core + ".out"])
        XCTAssertEqual(read.status, 0, read.stderr)
        XCTAssertTrue(read.stderr.contains("for the analysis; the core itself is mapped, not copied) of "), read.stderr)

        let small = try TestPrograms.smallFilesystem("small-fs")
        defer { TestPrograms.unmount(small) }
        let before = settledContextSwitches(program.pid)
        let full = try Shell.swref(["dump", "\(program.pid)", "-o", small + "/core"])
        assertRefused(full, contains: ["the core of PID \(program.pid) would take about", "on disk, more than the",
                                       "free where \(small)/core goes"])
        XCTAssertEqual(contextSwitches(program.pid), before, "the target was woken")
        XCTAssertFalse(FileManager.default.fileExists(atPath: small + "/core"))
    }

    /// A real memory cgroup (v2, or v1's memory hierarchy where v2 has no memory controller, as on
    /// this hybrid host): swref started inside a child cgroup with a 150 MiB limit refuses a 200 MiB
    /// heap and names the cgroup; with a 2 GiB limit it captures it.
    func testRefusesInsideASmallCgroup() throws {
        guard getuid() == 0 else { throw XCTSkip("creating a cgroup needs root") }
        let read: (String) -> String? = { try? String(contentsOfFile: $0, encoding: .utf8) }
        let paths = MemoryBudget.cgroupPaths(read("/proc/self/cgroup") ?? "")
        let mounts = MemoryBudget.cgroupMounts(read("/proc/self/mountinfo") ?? "")
        var parent: (directory: String, version: Int)? = nil
        for mount in mounts.sorted(by: { $0.version > $1.version }) {
            guard let path = mount.version == 2 ? paths.v2 : paths.v1Memory else { continue }
            let relative = mount.root == "/" ? path : String(path.dropFirst(mount.root.count))
            let directory = mount.mountPoint + (relative == "/" ? "" : relative)
            if mount.version == 2 {
                // The memory controller must be enabled for children (and is, only if it is there).
                let controllers = read(directory + "/cgroup.controllers") ?? ""
                guard controllers.split(separator: " ").contains(where: { $0.hasPrefix("memory") }) else { continue }
                _ = try? "+memory".write(toFile: directory + "/cgroup.subtree_control", atomically: false, encoding: .utf8)
            }
            parent = (directory, mount.version)
            break
        }
        guard let parent else { throw XCTSkip("no memory cgroup controller (v2 or v1) here") }
        let child = parent.directory + "/swref-budget-\(getpid())"
        guard mkdir(child, 0o755) == 0 || errno == EEXIST else {
            throw XCTSkip("cannot create a cgroup under \(parent.directory): \(String(cString: strerror(errno)))")
        }
        defer { rmdir(child) }
        let limitFile = child + (parent.version == 2 ? "/memory.max" : "/memory.limit_in_bytes")

        let program = try RunningProgram(try TestPrograms.binary("census", .optimized), ["1000", "500", "200"])
        defer { program.stop() }
        let before = settledContextSwitches(program.pid)
        let out = TestPrograms.buildDirectory.appendingPathComponent("cgroup.out").path
        let swref = try TestPrograms.swrefExecutable()
        func attachInside(limit: String, _ flags: String = "--capture precopy") throws -> Shell.Result {
            try limit.write(toFile: limitFile, atomically: false, encoding: .utf8)
            return try Shell.run("/bin/sh", ["-c", "echo $$ > \(child)/cgroup.procs && exec \(swref) attach \(program.pid) -o \(out) \(flags)"])
        }
        let refused = try attachInside(limit: "\(150 << 20)")
        let name = parent.version == 2 ? "memory.max 150.0 MiB" : "memory.limit_in_bytes 150.0 MiB"
        assertRefused(refused, contains: ["the copy of PID \(program.pid) and its analysis would need about",
                                          "/swref-budget-\(getpid()) \(name)", "raise that cgroup's limit or run swref outside it"])
        XCTAssertEqual(contextSwitches(program.pid), before, "the target was woken")
        XCTAssertEqual(program.tracerPid, "0")

        // With no method named, the same limit takes a pre-copy spilled to disk, which fits: the kernel
        // would have killed swref inside this cgroup had it gone over.
        let inPlace = try attachInside(limit: "\(150 << 20)", "")
        XCTAssertEqual(inPlace.status, 0, inPlace.stderr)
        XCTAssertTrue(inPlace.stderr.contains("/swref-budget-\(getpid()) \(name)"), inPlace.stderr)
        XCTAssertTrue(inPlace.stderr.contains("copying it to an unlinked file in"), inPlace.stderr)
        XCTAssertTrue(inPlace.stderr.contains("(pre-copy, spilled to disk)"), inPlace.stderr)

        let passed = try attachInside(limit: "\(2 << 30)")
        XCTAssertEqual(passed.status, 0, passed.stderr)
        XCTAssertTrue(passed.stderr.contains("paused PID \(program.pid) for"), passed.stderr)
        XCTAssertTrue(passed.stderr.contains("(pre-copy)"), passed.stderr)
        program.stop()

        // The sidecar case: the target in the same cgroup. A 400 MiB limit holds its 200 MiB, and
        // what is left is too little for swref's copy: refused, saying the target shares the limit.
        try "\(400 << 20)".write(toFile: limitFile, atomically: false, encoding: .utf8)
        let inside = try RunningProgram("/bin/sh", ["-c", "echo $$ > \(child)/cgroup.procs && exec \(try TestPrograms.binary("census", .optimized)) 1000 500 200"])
        defer { inside.stop() }
        let shared = try Shell.run("/bin/sh", ["-c", "echo $$ > \(child)/cgroup.procs && exec \(swref) attach \(inside.pid) -o \(out) --capture precopy"])
        assertRefused(shared, contains: ["/swref-budget-\(getpid()) \(parent.version == 2 ? "memory.max" : "memory.limit_in_bytes") 400.0 MiB",
                                         "; PID \(inside.pid) is in it too)"])
        inside.stop()
    }
}
