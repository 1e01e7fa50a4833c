/// The libraries of the Swift runtime and its core libraries (concurrency, Dispatch, Foundation,
/// ICU, the blocks runtime, …): their writable sections are `runtime` roots, apart from the
/// program's own data.
public enum RuntimeLibraries {
    /// File name prefixes (`libswiftCore.so` also matches `libswiftCore.so.6`).
    public static let names = ["libswiftCore.so", "libswift_Concurrency.so", "libswiftDispatch.so", "libdispatch.so",
                                "libFoundation.so", "libFoundationEssentials.so", "libFoundationInternationalization.so",
                                "libBlocksRuntime.so", "lib_FoundationICU.so", "libswiftSynchronization.so",
                                "libswift_StringProcessing.so", "libswift_RegexParser.so", "libswiftGlibc.so"]

    /// Whether an image (by file name) is one of them.
    public static func contains(_ imageName: String) -> Bool {
        names.contains { imageName.hasPrefix($0) }
    }
}
