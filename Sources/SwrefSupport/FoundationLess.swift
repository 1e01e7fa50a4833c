/// What swref would take from Foundation, which it does not link: substring search, replacing,
/// trimming, and a bounds-checked subscript.
extension String {
    public func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty, contains(target) else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

extension String {
    public func range(of target: String) -> Range<String.Index>? { self[...].range(of: target) }
}

extension Substring {
    public func range(of target: String) -> Range<Substring.Index>? {
        guard let first = target.first else { return nil }
        var index = startIndex
        while let found = self[index...].firstIndex(of: first) {
            if self[found...].hasPrefix(target) { return found..<self.index(found, offsetBy: target.count) }
            index = self.index(after: found)
        }
        return nil
    }
}

extension StringProtocol {
    public func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var sub = self[...]
        while let first = sub.first, chars.contains(first) { sub = sub.dropFirst() }
        while let last = sub.last, chars.contains(last) { sub = sub.dropLast() }
        return String(sub)
    }
}

extension Array {
    public subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
