import Foundation
import XCTest

/// Build flavours a test program is compiled in, as the issues ask: debug, optimised, stripped.
enum BuildVariant: String, CaseIterable {
    case debug      // -Onone -g
    case optimized  // -O -g
    case stripped   // -O, then strip

    var flags: [String] {
        switch self {
        case .debug: return ["-Onone", "-g"]
        case .optimized: return ["-O", "-g"]
        case .stripped: return ["-O"]
        }
    }
}

/// Compiles the programs under `testdata/` with swiftc, once per (program, variant) per test run.
enum TestPrograms {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let testdata = packageRoot.appendingPathComponent("testdata")
    /// A 16 MiB tmpfs mounted at `name` in the build directory: a filesystem that fills. Skips the
    /// test where it cannot be mounted (not root). The caller unmounts it (`unmount`).
    static func smallFilesystem(_ name: String) throws -> String {
        guard getuid() == 0 else { throw XCTSkip("mounting a small tmpfs needs root") }
        let path = buildDirectory.appendingPathComponent(name).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let mounted = try Shell.run("/bin/mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", path])
        guard mounted.status == 0 else { throw XCTSkip("cannot mount a tmpfs here: \(mounted.stderr)") }
        return path
    }

    static func unmount(_ path: String) { _ = try? Shell.run("/bin/umount", [path]) }

    static let buildDirectory: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swref-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Cores and profiles add up to a few hundred megabytes: remove them when the run ends.
        atexit { try? FileManager.default.removeItem(at: TestPrograms.buildDirectory) }
        return dir
    }()
    private static var built: [String: String] = [:]
    private static let lock = NSLock()

    /// The path of `testdata/NAME/main.swift` compiled for `variant`.
    static func binary(_ name: String, _ variant: BuildVariant) throws -> String {
        let key = "\(name)-\(variant.rawValue)"
        return try compile(name, key: key, flags: variant.flags, header: testdata.appendingPathComponent("mallinfo.h").path) { output in
            guard variant == .stripped else { return }
            let strip = try Shell.run("/usr/bin/env", ["strip", output])
            guard strip.status == 0 else { throw TestFailure("strip failed: \(strip.stderr)") }
        }
    }

    /// `testdata/NAME/*.swift` compiled with `-O`, `flags` and NAME's own bridging header, as `key`:
    /// the allocator tests build one program several ways (jemalloc linked, static, …).
    static func binary(_ name: String, key: String, flags: [String], header: String) throws -> String {
        try compile(name, key: key, flags: ["-O"] + flags, header: testdata.appendingPathComponent(name).appendingPathComponent(header).path)
    }

    /// Compiles `testdata/NAME/*.swift` once per key per test run; `after` finishes the binary.
    private static func compile(_ name: String, key: String, flags: [String], header: String,
                                after: (String) throws -> Void = { _ in }) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let path = built[key] { return path }
        let output = buildDirectory.appendingPathComponent(key).path
        let directory = testdata.appendingPathComponent(name)
        let sources = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".swift") }.sorted().map { directory.appendingPathComponent($0).path }
        let args = flags + ["-module-name", name, "-import-objc-header", header] + sources + ["-o", output]
        let result = try Shell.run("/usr/bin/env", ["swiftc"] + args)
        guard result.status == 0 else { throw TestFailure("swiftc failed for \(key):\n\(result.stderr)") }
        try after(output)
        built[key] = output
        return output
    }

    /// A C file of `testdata/NAME` compiled into a shared library (a preloaded allocator).
    static func sharedLibrary(_ name: String, _ file: String) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        let key = "\(name)-\(file).so"
        if let path = built[key] { return path }
        let output = buildDirectory.appendingPathComponent(key).path
        let result = try Shell.run("/usr/bin/env", ["cc", "-O2", "-shared", "-fPIC",
                                                    testdata.appendingPathComponent(name).appendingPathComponent(file).path, "-o", output])
        guard result.status == 0 else { throw TestFailure("cc failed for \(key):\n\(result.stderr)") }
        built[key] = output
        return output
    }

    /// The swref executable built by `swift build` (the README's test command builds it first).
    static func swrefExecutable() throws -> String {
        // A build in another scratch directory (`swift test --scratch-path .build-dev`) names its own.
        if let path = ProcessInfo.processInfo.environment["SWREF_TEST_EXECUTABLE"] { return path }
        let candidates = [".build/debug/swref", ".build/release/swref", ".build/x86_64-unknown-linux-gnu/debug/swref"]
        for candidate in candidates {
            let path = packageRoot.appendingPathComponent(candidate).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw TestFailure("swref executable not found under .build: run `swift build` before `swift test`")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A test program started for real: it prints a line starting with READY when its heap is built.
final class RunningProgram {
    let process = Process()
    let readyLine: String
    /// Everything the program printed before its READY line.
    let outputBeforeReady: String
    private let stdout = Pipe()

    var pid: Int32 { process.processIdentifier }

    /// The numbers after READY: by convention malloc's in-use figures (uordblks, hblkhd).
    var readyNumbers: [Int] { readyLine.split(separator: " ").dropFirst().compactMap { Int($0) } }
    var mallocInUse: Int { readyNumbers.count >= 2 ? readyNumbers[0] + readyNumbers[1] : 0 }

    init(_ path: String, _ arguments: [String] = [], environment: [String: String]? = nil, timeout: TimeInterval = 60) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        try process.run()
        let handle = stdout.fileHandleForReading
        var buffer = Data()
        let deadline = Date().addingTimeInterval(timeout)
        var line: String? = nil
        while line == nil && Date() < deadline {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            let text = String(decoding: buffer, as: UTF8.self)
            line = text.split(separator: "\n").first { $0.hasPrefix("READY") }.map(String.init)
        }
        guard let line else {
            process.terminate()
            throw TestFailure("\(path) did not print READY")
        }
        readyLine = line
        let text = String(decoding: buffer, as: UTF8.self)
        outputBeforeReady = String(text[..<text.range(of: line)!.lowerBound])
    }

    /// State letter from /proc/PID/stat: R, S, t, Z …
    var state: String {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return "?" }
        return String(stat[stat.index(close, offsetBy: 2)])
    }

    var tracerPid: String {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        return status.split(separator: "\n").first { $0.hasPrefix("TracerPid:") }?
            .split(separator: "\t").last.map(String.init) ?? "?"
    }

    func stop() {
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}

enum Shell {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        /// Killed by a signal (a crash, or the timeout).
        var signaled = false
        var timedOut = false
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                    timeout: TimeInterval? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        final class Flag: @unchecked Sendable { var value = false }
        let timedOut = Flag()
        if let timeout {
            let pid = process.processIdentifier
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
                if process.isRunning { timedOut.value = true; kill(pid, SIGKILL) }
            }
        }
        // Read both pipes concurrently so neither fills up and blocks the child.
        final class Collected: @unchecked Sendable { var data = Data() }
        let errData = Collected()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData.data, as: UTF8.self),
                      signaled: process.terminationReason == .uncaughtSignal, timedOut: timedOut.value)
    }

    /// Runs the swref executable.
    static func swref(_ arguments: [String], environment: [String: String]? = nil, timeout: TimeInterval? = 120) throws -> Result {
        try run(TestPrograms.swrefExecutable(), arguments, environment: environment, timeout: timeout)
    }
}
