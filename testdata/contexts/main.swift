// Closure contexts that share a name but not a layout: each wrapper captures one `() -> ()`, so
// both are named `box<() -> ()>`, but the generic wrapper's context starts with its binding (T's
// metadata) and the capture comes one word later. Every `Held` is reachable from `wrapped`.
// Usage: contexts N ; prints "READY N" then waits.
import Glibc

final class Held {
    let id: Int
    init(id: Int) { self.id = id }
}

@inline(never) func wrap(_ body: @escaping () -> Void) -> () -> Void {
    { body() }
}

// Not specialised at -O: a specialised closure has no binding, and the same layout as `wrap`'s.
@_semantics("optimize.sil.specialize.generic.never")
@inline(never) func wrapGeneric<T>(_ type: T.Type, _ body: @escaping () -> Void) -> () -> Void {
    { if T.self == Never.self { print("never") }; body() }
}

let count = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1])! : 10
var wrapped: [() -> Void] = []
for i in 0..<count {
    // Interleaved, so that whichever context the analysis meets first, the other kind follows.
    let held = Held(id: i)
    // One class capture: the context of `body` is `held` itself.
    let body = { if held.id < 0 { print(held.id) } }
    wrapped.append(i % 2 == 0 ? wrap(body) : wrapGeneric(Int.self, body))
}
print("READY \(count)")
fflush(stdout)
while true { pause() }
