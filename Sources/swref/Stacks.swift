import ArgumentParser
import SwrefKit

extension Swref {
    struct Stacks: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every thread's stack as swref unwinds it (the frames stack roots are named by)."
        )

        @Argument(help: ArgumentHelp("PID, or with --core: [EXE] CORE.", valueName: "target"))
        var arguments: [String]

        @OptionGroup var targetOptions: TargetOptions

        func run() throws {
            try runReporting {
                let (snapshot, _) = try openTarget(core: targetOptions.core, arguments: arguments,
                                                   sysroot: targetOptions.sysroot, capture: targetOptions.capture)
                let images = ImageList(memoryMap: snapshot.memoryMap, source: snapshot, files: snapshot.files)
                let symbolizer = Symbolizer(images: images)
                let frames = StackUnwinder.unwind(threads: snapshot.threads, images: images, source: snapshot)
                for (number, thread) in snapshot.threads.sorted(by: { $0.tid < $1.tid }).enumerated() {
                    print("thread \(number + 1) (tid \(thread.tid))")
                    for frame in frames[thread.tid] ?? [] {
                        let pc = frame.isActivation ? frame.pc : frame.pc &- 1
                        print("  0x\(String(frame.pc, radix: 16)) sp=0x\(String(frame.sp, radix: 16)) \(symbolizer.name(of: pc))")
                    }
                }
            }
        }
    }
}
