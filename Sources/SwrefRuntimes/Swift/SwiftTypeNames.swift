import SwrefImages
import SwrefMemory

import SwrefSupport

/// Type names as the program has them, the same in every run.
package enum SwiftTypeNames {
    /// A private type whose discriminator the reflection library could not read is printed with
    /// its context's address — `NIOCore.(BackingStorage in $55f9fb4861b8)` — which moves with ASLR
    /// and breaks `diff` and `check` between runs. The address goes: `NIOCore.BackingStorage`.
    package static func stable(_ name: String) -> String {
        guard name.contains(" in $") else { return name }
        var result = ""
        var rest = Substring(name)
        while let open = rest.firstIndex(of: "(") {
            result += rest[..<open]
            let inner = rest[rest.index(after: open)...]
            // `(Name in $hex)`: keep Name.
            if let marker = inner.range(of: " in $"), let close = inner[marker.upperBound...].firstIndex(of: ")"),
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
