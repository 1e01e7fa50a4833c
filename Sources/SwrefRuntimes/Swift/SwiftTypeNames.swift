import SwrefImages
import SwrefMemory
import SwrefSupport

/// Type names as the program has them, the same in every run.
public enum SwiftTypeNames {
    /// How a frame names a type: stdlib storage as the collection the user wrote, no `Swift.`.
    public static func display(_ type: String) -> String {
        var name = type
        for (storage, replacement) in [("Swift._ContiguousArrayStorage<", "["), ("Swift._DictionaryStorage<", "Dictionary<"),
                                       ("Swift._SetStorage<", "Set<")] where name.hasPrefix(storage) {
            name = replacement + name.dropFirst(storage.count)
            if replacement == "[" { name = String(name.dropLast()) + "]" }
        }
        if name == "Swift.__StringStorage" { name = "String" }
        return name.replacingAll("Swift.", with: "")
    }

    /// The function a closure's code pointer names, less the thunks the compiler wraps it in
    /// (`partial apply for closure #1 in f()` → `closure #1 in f()`).
    public static func closureFunction(_ symbol: String) -> String {
        var name = symbol
        for prefix in ["partial apply forwarder for ", "partial apply for ", "thunk for ", "reabstraction thunk helper from "] where name.hasPrefix(prefix) {
            name = String(name.dropFirst(prefix.count))
        }
        return name
    }

    /// A type nested in a generic one is bound with the parent's arguments and a list of its own,
    /// which the demangler prints even when it is empty: `app.List<Swift.Int>.Node<>`. The program
    /// calls it `app.List<Swift.Int>.Node`; no type name has `<>` otherwise.
    public static func withoutEmptyArguments(_ name: String) -> String {
        name.contains("<>") ? name.replacingAll("<>", with: "") : name
    }

    /// A private type whose discriminator the reflection library could not read is printed with
    /// its context's address — `NIOCore.(BackingStorage in $55f9fb4861b8)` — which moves with ASLR
    /// and breaks `diff` and `check` between runs. The address goes: `NIOCore.BackingStorage`. A
    /// type local to a function is printed in its anonymous context's address —
    /// `app.(unknown context at $5592a0c1d2e0).Scratch` — which becomes `app.(local).Scratch`.
    public static func stable(_ name: String) -> String {
        guard name.contains(" in $") || name.contains("(unknown context at $") else { return name }
        var result = ""
        var rest = Substring(name)
        while let open = rest.firstIndex(of: "(") {
            result += rest[..<open]
            let inner = rest[rest.index(after: open)...]
            let anonymous = "unknown context at $"
            // `(unknown context at $hex)`: a local type's context.
            if inner.hasPrefix(anonymous), let close = inner.firstIndex(of: ")"),
               inner[inner.index(inner.startIndex, offsetBy: anonymous.count)..<close].allSatisfy(\.isHexDigit) {
                result += "(local)"
                rest = inner[inner.index(after: close)...]
            // `(Name in $hex)`: keep Name.
            } else if let marker = inner.range(of: " in $"), let close = inner[marker.upperBound...].firstIndex(of: ")"),
               !inner[..<marker.lowerBound].contains("("), !inner[..<marker.lowerBound].contains(")"),
               inner[marker.upperBound..<close].allSatisfy(\.isHexDigit) {
                result += inner[..<marker.lowerBound]
                rest = inner[inner.index(after: close)...]
            } else {
                result += "("
                rest = inner
            }
        }
        return result + rest
    }
}
