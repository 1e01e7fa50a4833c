import Foundation
import SwrefKit
import XCTest

/// `swref core` on real cores: gcore's, `swref dump`'s and the kernel's.
final class CoreFileTests: XCTestCase {
    var scratch: URL { TestPrograms.buildDirectory }

    /// Samples as comparable lines; addresses (only in names of anonymous mappings) are masked.
    func normalized(_ profile: PprofReader) -> [String] {
        profile.samples.map { sample in
            let frames = sample.frames.map { $0.replacingOccurrences(of: "0x[0-9a-f]+", with: "0x…", options: .regularExpression) }
            return "\(sample.values) \(frames.joined(separator: " | "))"
        }.sorted()
    }

    func testGcoreAndDumpGiveTheSameProfileAsAttach() throws {
        guard PprofReader.isAvailable else { throw XCTSkip("go is not installed") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/gcore") else { throw XCTSkip("gdb's gcore is not installed") }
        let exe = try TestPrograms.binary("paths", .optimized)
        let program = try RunningProgram(exe)
        defer { program.stop() }
        let attached = scratch.appendingPathComponent("core-attach.pb.gz").path
        XCTAssertEqual(try Shell.swref(["attach", "\(program.pid)", "-o", attached]).status, 0)

        let gcorePrefix = scratch.appendingPathComponent("gcore").path
        let gcore = try Shell.run("/usr/bin/gcore", ["-o", gcorePrefix, "\(program.pid)"], timeout: 120)
        XCTAssertEqual(gcore.status, 0, gcore.stderr)
        let gcoreFile = "\(gcorePrefix).\(program.pid)"
        let dumpFile = scratch.appendingPathComponent("dump.core").path
        let dump = try Shell.swref(["dump", "\(program.pid)", "-o", dumpFile])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        XCTAssertTrue(["S", "R"].contains(program.state), "the target runs on after dump")

        let fromGcore = scratch.appendingPathComponent("core-gcore.pb.gz").path
        let fromDump = scratch.appendingPathComponent("core-dump.pb.gz").path
        let first = try Shell.swref(["core", exe, gcoreFile, "-o", fromGcore])
        XCTAssertEqual(first.status, 0, first.stderr)
        let second = try Shell.swref(["core", dumpFile, "-o", fromDump])   // EXE found through NT_FILE
        XCTAssertEqual(second.status, 0, second.stderr)

        let expected = normalized(try PprofReader(path: attached))
        XCTAssertGreaterThan(expected.count, 20)
        XCTAssertEqual(normalized(try PprofReader(path: fromGcore)), expected, "gcore core vs attach")
        XCTAssertEqual(normalized(try PprofReader(path: fromDump)), expected, "swref dump core vs attach")

        // gdb reads swref's core: both threads, the main one stopped in pause().
        let gdb = try Shell.run("/usr/bin/gdb", ["-batch", "-nx", "-ex", "info threads", "-ex", "bt 2", exe, dumpFile], timeout: 120)
        XCTAssertTrue(gdb.stdout.contains("LWP \(program.pid)"), gdb.stdout)
        let threadLines = gdb.stdout.split(separator: "\n").filter { $0.range(of: #"^\*?\s+\d+\s+Thread 0x"#, options: .regularExpression) != nil }
        XCTAssertEqual(threadLines.count, 2, gdb.stdout)
        XCTAssertTrue(gdb.stdout.contains("pause"), gdb.stdout)
        try? FileManager.default.removeItem(atPath: gcoreFile)
    }

    /// Writes cores of crashing programs into `directory` while `body` runs; nil when the pattern
    /// cannot be changed here.
    func withCorePattern(_ directory: String, _ body: () throws -> Void) throws -> Bool {
        let patternFile = "/proc/sys/kernel/core_pattern"
        guard let old = try? String(contentsOfFile: patternFile, encoding: .utf8) else { return false }
        do { try "\(directory)/core.%p".write(toFile: patternFile, atomically: false, encoding: .utf8) } catch { return false }
        defer { try? old.write(toFile: patternFile, atomically: false, encoding: .utf8) }
        try body()
        return true
    }

    func kernelCore(nodes: Int) throws -> (exe: String, core: String)? {
        let exe = try TestPrograms.binary("crash", .optimized)
        let directory = scratch.appendingPathComponent("kernel-cores-\(nodes)")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var coreFile: String? = nil
        let changed = try withCorePattern(directory.path) {
            let crash = try Shell.run("/bin/sh", ["-c", "ulimit -c unlimited; exec \(exe) \(nodes)"],
                                      environment: ["SWIFT_BACKTRACE": "enable=no"], timeout: 60)
            XCTAssertTrue(crash.stdout.contains("READY"))
            coreFile = try FileManager.default.contentsOfDirectory(atPath: directory.path).first.map { directory.appendingPathComponent($0).path }
        }
        guard changed, let coreFile else { return nil }
        return (exe, coreFile)
    }

    func testKernelCoreReadsMetadataFromFilesOnDisk() throws {
        guard let (exe, corePath) = try kernelCore(nodes: 777) else {
            throw XCTSkip("kernel.core_pattern cannot be set here, or no core was written: kernel cores not tested")
        }
        let core = try CoreFile(path: corePath, executable: exe)
        // The kernel left out most of the read-only file mappings …
        XCTAssertTrue(core.segments.contains { $0.fileSize < $0.end - $0.start && $0.flags & 2 == 0 })
        // … yet the types are named, through metadata read from the files.
        let census = HeapAnalysis(target: core).census
        XCTAssertEqual(census.row(named: "crash.Node")?.count, 777)
        XCTAssertEqual(census.row(named: "Swift._ContiguousArrayStorage<Swift.UInt8>")?.count, 777)
        let out = scratch.appendingPathComponent("kernel.pb.gz").path
        // The list is 777 deep: lift the depth cap so every node keeps its own frame.
        let run = try Shell.swref(["core", exe, corePath, "-o", out, "--max-depth", "2000"])
        XCTAssertEqual(run.status, 0, run.stderr)
        if PprofReader.isAvailable {
            let profile = try PprofReader(path: out)
            XCTAssertEqual(profile.samples.first { $0.frames == ["crash.head"] }?.values[0], 1)
            XCTAssertEqual(profile.samples.filter { $0.frames.first == "crash.head" && $0.frames.last == "next. (crash.Node)" }
                .reduce(0) { $0 + $1.values[0] }, 776)
        }
    }

    func testBadCoresGiveOneLineErrors() throws {
        let exe = try TestPrograms.binary("census", .optimized)
        let program = try RunningProgram(exe, ["10", "10"])
        let dumpFile = scratch.appendingPathComponent("bad-source.core").path
        XCTAssertEqual(try Shell.swref(["dump", "\(program.pid)", "--skip-read-only-files", "-o", dumpFile]).status, 0)
        program.stop()
        let data = try Data(contentsOf: URL(fileURLWithPath: dumpFile))

        func expectError(_ arguments: [String], _ text: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let result = try Shell.swref(arguments)
            XCTAssertEqual(result.status, 2, result.stderr, file: file, line: line)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr, file: file, line: line)
            XCTAssertTrue(result.stderr.contains(text), result.stderr, file: file, line: line)
        }
        let truncated = scratch.appendingPathComponent("truncated.core").path
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: truncated))
        try expectError(["core", truncated], "truncated core")
        try expectError(["core", try TestPrograms.binary("paths", .optimized), dumpFile], "does not match")
        let text = scratch.appendingPathComponent("not-elf.core").path
        try "not a core\n".write(toFile: text, atomically: true, encoding: .utf8)
        try expectError(["core", text], "not an ELF file")
        try expectError(["core", exe], "not a core file")

        // Program headers that no process could have: a segment past the user address space, two
        // that overlap (each would have the analysis scan terabytes of zeros, or read one byte twice).
        func withProgramHeaders(_ name: String, _ change: (inout Data, [Int]) -> Void) throws -> String {
            var bytes = data
            let phoff = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) })
            let phentsize = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 54, as: UInt16.self) })
            let phnum = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 56, as: UInt16.self) })
            let loads = (0..<phnum).map { phoff + $0 * phentsize }
                .filter { offset in bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) } == 1 }
            change(&bytes, loads)
            let path = scratch.appendingPathComponent(name).path
            try bytes.write(to: URL(fileURLWithPath: path))
            return path
        }
        func store(_ value: UInt64, _ bytes: inout Data, at offset: Int) {
            bytes.withUnsafeMutableBytes { $0.storeBytes(of: value, toByteOffset: offset, as: UInt64.self) }
        }
        let huge = try withProgramHeaders("huge-segment.core") { bytes, loads in
            store(0x7000_0000_0000_0000, &bytes, at: loads[0] + 40) // p_memsz
        }
        try expectError(["core", exe, huge], "reaches beyond the user address space")
        let overlapping = try withProgramHeaders("overlapping.core") { bytes, loads in
            let first = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: loads[0] + 16, as: UInt64.self) } // p_vaddr
            store(first + 4096, &bytes, at: loads[1] + 16)
        }
        try expectError(["core", exe, overlapping], "overlap")

        // Missing libraries: the analysis goes on and says what was missing.
        let emptyRoot = scratch.appendingPathComponent("empty-sysroot").path
        try FileManager.default.createDirectory(atPath: emptyRoot, withIntermediateDirectories: true)
        let missing = try Shell.swref(["core", "--sysroot", emptyRoot, exe, dumpFile, "-o", scratch.appendingPathComponent("missing.pb.gz").path])
        XCTAssertEqual(missing.status, 0, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("could not be read"), missing.stderr)
        XCTAssertTrue(missing.stderr.contains("\(emptyRoot)/"), missing.stderr)
    }

    /// `swref core ./exe core`: a relative EXE gives the same census as an absolute one (it once
    /// dropped every Swift type: only absolute paths were taken for file mappings).
    func testRelativeExecutablePathReadsSwiftTypes() throws {
        let exe = try TestPrograms.binary("census", .optimized)
        let program = try RunningProgram(exe, ["50", "10"])
        defer { program.stop() }
        let core = scratch.appendingPathComponent("relative.core").path
        XCTAssertEqual(try Shell.swref(["dump", "\(program.pid)", "-o", core]).status, 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try TestPrograms.swrefExecutable())
        process.currentDirectoryURL = URL(fileURLWithPath: exe).deletingLastPathComponent()
        process.arguments = ["core", "./" + URL(fileURLWithPath: exe).lastPathComponent, core, "--format", "text", "--limit", "50"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertTrue(text.contains("census.Node"), text)
        let absolute = try Shell.swref(["core", exe, core, "--format", "text", "--limit", "50"])
        XCTAssertEqual(text, absolute.stdout, "relative and absolute EXE give the same census")
    }

    /// A sysroot whose libswiftCore.so is another library: the file's build id differs from the
    /// one the core mapped, so it is named and not used (it once gave 1240 invented leaks, silently).
    func testSwappedLibraryInSysrootIsNamedAndNotTrusted() throws {
        let exe = try TestPrograms.binary("census", .optimized)
        let program = try RunningProgram(exe, ["50", "10"])
        let core = scratch.appendingPathComponent("swapped.core").path
        XCTAssertEqual(try Shell.swref(["dump", "\(program.pid)", "--skip-read-only-files", "-o", core]).status, 0)
        // Read to the end: /proc files have no size, and a read by size can stop at the first page.
        let maps = String(decoding: FileHandle(forReadingAtPath: "/proc/\(program.pid)/maps")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        program.stop()
        let sysroot = scratch.appendingPathComponent("swapped-root")
        try? FileManager.default.removeItem(at: sysroot)
        var swapped = ""
        for path in Set(maps.split(separator: "\n").compactMap { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(5).first }
            .map(String.init).filter { $0.hasPrefix("/") }) {
            let target = sysroot.appendingPathComponent(String(path.dropFirst()))
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            var source = path
            if path.hasSuffix("/libswiftCore.so") {
                source = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("libswift_Concurrency.so").path
                swapped = target.path
            }
            try FileManager.default.createSymbolicLink(atPath: target.path, withDestinationPath: source)
        }
        XCTAssertFalse(swapped.isEmpty, "no libswiftCore.so mapped")
        let result = try Shell.swref(["core", "--sysroot", sysroot.path, core, "--format", "text"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("not the ones the target mapped") && result.stdout.contains("libswiftCore.so"), result.stdout)
    }

    /// A core read on another machine: the program and its libraries only under `--sysroot`, the
    /// program's own path gone from the host. Every reader of the images' files goes through the
    /// sysroot — DWARF, the unwinder and the reflection library once opened the target's path on
    /// the host, and field paths turned into `$sub_objects$`.
    func testNonEmptySysrootGivesTheSameProfile() throws {
        let built = try TestPrograms.binary("census", .debug)
        let moved = scratch.appendingPathComponent("relocated-\(getpid())")
        try? FileManager.default.removeItem(at: moved)
        try FileManager.default.createDirectory(at: moved, withIntermediateDirectories: true)
        let exe = moved.appendingPathComponent("census").path
        try FileManager.default.copyItem(atPath: built, toPath: exe)
        let program = try RunningProgram(exe, ["200", "20"])
        let core = scratch.appendingPathComponent("relocated.core").path
        // Read-only pages left out: the reflection metadata must come from the files.
        XCTAssertEqual(try Shell.swref(["dump", "\(program.pid)", "--skip-read-only-files", "-o", core]).status, 0)
        let maps = String(decoding: FileHandle(forReadingAtPath: "/proc/\(program.pid)/maps")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        program.stop()
        let baseline = scratch.appendingPathComponent("relocated-base.pb.gz").path
        let first = try Shell.swref(["core", core, "-o", baseline])
        XCTAssertEqual(first.status, 0, first.stderr)

        let sysroot = scratch.appendingPathComponent("relocated-root")
        try? FileManager.default.removeItem(at: sysroot)
        for path in Set(maps.split(separator: "\n").compactMap { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(5).first }
            .map(String.init).filter { $0.hasPrefix("/") }) {
            let target = sysroot.appendingPathComponent(String(path.dropFirst()))
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            if path == exe {
                try FileManager.default.moveItem(atPath: exe, toPath: target.path)  // gone from the host
            } else {
                try FileManager.default.createSymbolicLink(atPath: target.path, withDestinationPath: path)
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: exe))
        let relocated = scratch.appendingPathComponent("relocated-root.pb.gz").path
        let second = try Shell.swref(["core", "--sysroot", sysroot.path, core, "-o", relocated])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertFalse(second.stderr.contains("could not be read"), second.stderr)
        guard PprofReader.isAvailable else { return }
        func frames(_ path: String) throws -> Set<String> { Set(try PprofReader(path: path).samples.flatMap(\.frames)) }
        let expected = try frames(baseline)
        let got = try frames(relocated)
        XCTAssertTrue(expected.contains { $0.contains("next. (census.Node)") }, "\(expected.sorted())")
        XCTAssertEqual(got, expected, "the profile under the sysroot differs from the one on the machine itself")

        // `stacks` and `inspect` read a core too, through the same sysroot.
        let stacks = try Shell.swref(["stacks", "--core", "--sysroot", sysroot.path, core])
        XCTAssertEqual(stacks.status, 0, stacks.stderr)
        XCTAssertTrue(stacks.stdout.contains("thread 1 (tid ") && stacks.stdout.contains("main"), stacks.stdout)
        let why = try Shell.swref(["why", "--core", "--sysroot", sysroot.path, core, "census.Node"])
        let address = try XCTUnwrap(why.stdout.split(separator: "\n").dropFirst().first?.split(separator: " ")
            .first { $0.hasPrefix("0x") }.map(String.init), why.stdout + why.stderr)
        let inspect = try Shell.swref(["inspect", "--core", "--sysroot", sysroot.path, core, address])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.hasPrefix(address + ": census.Node"), inspect.stdout)
    }

    /// One damaged chunk header in the main heap (a size changed, as heap corruption does): the
    /// walk skips the damage and goes on, says the heap was read in part, and the census keeps
    /// the rest (it once dropped the whole heap and `leaks` said all clear).
    func testDamagedChunkIsSkippedNotTheWholeHeap() throws {
        let (exe, core, address) = try DamagedCores.census(named: "damaged.core")
        try DamagedCores.growChunkHeader(of: address, inCore: core)
        let read = try Shell.swref(["core", exe, core, "--format", "text", "--limit", "40"])
        XCTAssertEqual(read.status, 0, read.stderr)
        XCTAssertTrue(read.stdout.contains("heap: glibc malloc (partial"), read.stdout)
        XCTAssertTrue(read.stdout.contains("bad size; skipped"), read.stdout)
        let nodes = read.stdout.split(separator: "\n").first { $0.hasSuffix(" census.Node") }
            .flatMap { Int($0.split(separator: " ").first ?? "") } ?? 0
        XCTAssertGreaterThanOrEqual(nodes, 990, "the rest of the heap is read: \(read.stdout)")
    }

    /// Truncations and flipped bytes in headers and notes of a real core: swref answers with a
    /// profile or a one-line error, never a crash or a hang.
    func testMutatedCoresNeverCrashOrHang() throws {
        let exe = try TestPrograms.binary("census", .optimized)
        let program = try RunningProgram(exe, ["50", "10"])
        let source = scratch.appendingPathComponent("fuzz-source.core").path
        XCTAssertEqual(try Shell.swref(["dump", "\(program.pid)", "--skip-read-only-files", "-o", source]).status, 0)
        program.stop()
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
        let phoff = Int(original.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) })
        let phnum = Int(original.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 56, as: UInt16.self) })
        let notesOffset = Int(original.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: phoff + 8, as: UInt64.self) })
        let notesSize = Int(original.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: phoff + 32, as: UInt64.self) })

        var rng = SplitMix(seed: 0x5eed)
        let mutated = scratch.appendingPathComponent("fuzz.core").path
        var outcomes: [Int32: Int] = [:]
        for round in 0..<24 {
            var bytes = original
            switch round % 4 {
            case 0:
                bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
            case 1:
                for _ in 0..<4 { bytes[Int(rng.next() % 64)] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            case 2:
                for _ in 0..<8 { bytes[phoff + Int(rng.next() % UInt64(phnum * 56))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            default:
                for _ in 0..<16 { bytes[notesOffset + Int(rng.next() % UInt64(notesSize))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            }
            try Data(bytes).write(to: URL(fileURLWithPath: mutated))
            let result = try Shell.swref(["core", exe, mutated, "--format", "text"], timeout: 30)
            XCTAssertFalse(result.timedOut, "round \(round) hung")
            XCTAssertFalse(result.signaled, "round \(round) crashed: \(result.stderr)")
            // A trap is reported by swref's crash handler with exit 2: a crash all the same.
            XCTAssertFalse(result.stderr.contains("internal error"), "round \(round) crashed: \(result.stderr)")
            // 125: the heap could not be read (a damaged core is never read as an empty, clean heap).
            XCTAssertTrue(result.status == 0 || result.status == 2 || (result.status == 125 && result.stderr.contains("the heap could not be read")),
                          "round \(round): exit \(result.status) \(result.stderr)")
            if result.status == 2 { XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr) }
            outcomes[result.status, default: 0] += 1
        }
        print("mutated cores: \(outcomes) (exit status: rounds)")

        // Values at the limits, each of which once trapped: an NT_FILE entry spanning the whole
        // address space with a page offset of 2^64−1; fs_base near 2^64; an empty note segment
        // whose offset is 2^63.
        func put(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt64) {
            withUnsafeBytes(of: value.littleEndian) { for (i, byte) in $0.enumerated() { bytes[offset + i] = byte } }
        }
        let found = DamagedCores.notes(in: original)
        var limits: [(String, [UInt8])] = []
        if let file = found.first(where: { $0.type == 0x4649_4c45 }) {
            var bytes = original
            put(&bytes, file.desc + 16, 0); put(&bytes, file.desc + 24, .max); put(&bytes, file.desc + 32, .max)
            limits.append(("NT_FILE at the limits", bytes))
        }
        if let status = found.first(where: { $0.type == 1 }) {
            var bytes = original
            put(&bytes, status.desc + 112 + 21 * 8, .max - 0x100)
            limits.append(("fs_base near 2^64", bytes))
        }
        var empty = original
        put(&empty, phoff + 8, 1 << 63); put(&empty, phoff + 32, 0)
        limits.append(("empty note segment at 2^63", empty))
        for (name, bytes) in limits {
            try Data(bytes).write(to: URL(fileURLWithPath: mutated))
            let result = try Shell.swref(["core", exe, mutated, "--format", "text"], timeout: 30)
            XCTAssertFalse(result.timedOut || result.signaled || result.stderr.contains("internal error"), "\(name): \(result.stderr)")
            XCTAssertTrue([0, 2, 125].contains(result.status), "\(name): exit \(result.status) \(result.stderr)")
        }
    }
}

/// A small deterministic generator, so a failing mutation can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
