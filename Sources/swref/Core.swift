import ArgumentParser
import Glibc
import SwrefKit

extension Swref {
    struct Core: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Report who holds the heap of a process from its ELF core file.",
            discussion: """
            Reads cores written by gcore, systemd-coredump, the kernel or `swref dump`. EXE is found \
            through the core's NT_FILE note when left out. Memory the core left out (a kernel core keeps \
            only the first page of read-only file mappings) is read from the mapped files; use --sysroot \
            for a core from another machine.
            """
        )

        @Argument(help: ArgumentHelp("[EXE] CORE: the program (optional) and its core file.", valueName: "files"))
        var files: [String]

        @Option(help: "Directory that stands for / when opening the files the core names.")
        var sysroot: String = ""

        @OptionGroup var outputOptions: OutputOptions
        @OptionGroup var analysisOptions: AnalysisOptions
        @OptionGroup var budget: BudgetOptions

        func validate() throws {
            guard (1...2).contains(files.count) else { throw ValidationError("give CORE, or EXE and CORE") }
        }

        func run() throws {
            try runReporting {
                if outputOptions.format == .pprof { try FileAccess.checkWritable(outputOptions.output) }
                let progress = ProgressReporter()
                let (core, exe) = try openCore(files, sysroot: sysroot)
                try budget.checkCore(core, path: files.last!)
                let analysis = analyse(core, progress: progress)
                try report(analysis, summary: "read core of PID \(core.pid) (\(core.commandName))",
                           output: outputOptions, analysisOptions: analysisOptions, progress: progress,
                           mainBinary: exe ?? core.executablePath)
            }
        }
    }
}

/// Opens `[EXE] CORE` and checks that EXE is the program the core was taken of.
func openCore(_ files: [String], sysroot: String) throws -> (CoreFile, String?) {
    let corePath = files.last!
    // Absolute: the core's mapping of the executable takes this path, and only absolute paths
    // are file mappings (a relative EXE once dropped every Swift type and global name).
    let exe = files.count == 2 ? absolutePath(files[0]) : nil
    let core = try CoreFile(path: corePath, executable: exe, sysroot: sysroot)
    if let exe {
        let file = try ElfFile(path: exe)
        guard file.type != 4 else { throw SwrefError.invalidInput("\(exe) is a core file, not the program: give EXE CORE, or CORE alone") }
        guard let phdr = core.auxv[3], let mapping = core.memoryMap.regions.first(where: { $0.contains(phdr) }) else {
            return (core, exe)
        }
        let start = core.memoryMap.regions.first { $0.path == mapping.path && $0.fileOffset == 0 }?.start ?? mapping.start
        if let inCore = core.buildID(ofImageAt: start), let onDisk = file.buildID, inCore != onDisk {
            throw SwrefError.invalidInput("\(exe) does not match \(corePath): build id \(hex(onDisk)) on disk, \(hex(inCore)) in the core")
        }
        if let inCore = core.buildID(ofImageAt: start), file.buildID == nil {
            throw SwrefError.invalidInput("\(exe) does not match \(corePath): it has no build id, the core's program has \(hex(inCore))")
        }
        if core.buildID(ofImageAt: start) == nil, let header = core.readFromCore(start, count: 64),
           let disk = ProcFS.readPrefix(exe, count: 64), header != disk {
            throw SwrefError.invalidInput("\(exe) does not match \(corePath): its ELF header differs from the one the core mapped")
        }
    }
    return (core, exe)
}

func absolutePath(_ path: String) -> String {
    guard !path.hasPrefix("/"), let resolved = realpath(path, nil) else { return path }
    defer { free(resolved) }
    return String(cString: resolved)
}

private func hex(_ bytes: [UInt8]) -> String { bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }
