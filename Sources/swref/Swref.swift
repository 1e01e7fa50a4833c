import ArgumentParser

@main
struct Swref: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swref",
        abstract: "Heap reference analyzer for Swift processes on Linux.",
        discussion: """
        Attach to a running Swift process, read its heap, and write what holds memory as a \
        gzipped pprof profile. View it with: go tool pprof -http=: swref.out
        """,
        version: "0.1.0",
        subcommands: [Attach.self, Core.self, Dump.self, Leaks.self, Run.self, Diff.self, Check.self, Top.self, Why.self, Inspect.self, Stacks.self, Serve.self, Watch.self]
    )
}
