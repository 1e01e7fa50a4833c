import SwrefImages
import SwrefRuntimes
import SwrefSupport

/// Interned strings with dense ids: frame names and field paths are stored once.
public struct StringTable {
    public private(set) var strings: [String] = [""]
    private var ids: [String: UInt32] = ["": 0]

    public init() {}

    public mutating func intern(_ string: String) -> UInt32 {
        if let id = ids[string] { return id }
        let id = UInt32(strings.count)
        strings.append(string)
        ids[string] = id
        return id
    }

    public subscript(id: UInt32) -> String { strings[Int(id)] }
}
